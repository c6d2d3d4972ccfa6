import numpy as np
import pytest
from tests.science.diff_fakes import make_frame

from rapid.science.background import subtract_background


def test_removes_smooth_gradient_and_reports_noise():
    rng = np.random.default_rng(0)
    f = make_frame(rng, shape=(160, 160), sigma=5.0, stars=[(80, 80, 5e4), (40, 120, 2e4)])
    yy, xx = np.mgrid[:160, :160]
    f.data[...] += (100.0 + 0.2 * xx + 0.1 * yy).astype(np.float32)
    out, rms = subtract_background(f, box=32)
    assert out.data.dtype == np.float32
    far = np.ones((160, 160), bool)
    far[60:100, 60:100] = False
    far[100:140, 20:60] = False
    assert abs(np.median(out.data[far])) < 0.5
    assert np.median(rms) == pytest.approx(5.0, rel=0.1)
    assert out.meta["bkg_rms"] == pytest.approx(5.0, rel=0.1)


def test_bad_pixels_stay_nan_and_do_not_bias():
    rng = np.random.default_rng(1)
    f = make_frame(rng, shape=(128, 128), sigma=3.0)
    f.data[10:20, 10:20] = np.nan
    f.mask = np.zeros((128, 128), bool)
    f.mask[50:60, 50:60] = True
    f.data[50:60, 50:60] = 1e6
    out, _ = subtract_background(f, box=32)
    assert np.isnan(out.data[10:20, 10:20]).all()
    assert np.isnan(out.data[50:60, 50:60]).all()
    assert abs(np.nanmedian(out.data)) < 0.3


def test_rejects_bad_arguments():
    rng = np.random.default_rng(2)
    f = make_frame(rng, shape=(64, 64))
    with pytest.raises(ValueError, match="box"):
        subtract_background(f, box=2)
    with pytest.raises(ValueError, match="frame"):
        subtract_background(f.data)
