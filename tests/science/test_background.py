import numpy as np
import pytest
from tests.science.diff_fakes import add_star, make_frame, tan_wcs

from rapid.science.background import match_level, psf_matched_difference, subtract_background
from rapid.science.image import Frame
from rapid.science.psf import gaussian_psf


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


def test_match_level_puts_the_science_background_on_the_reference_s():
    shape, ratio = (384, 384), 0.5
    rng = np.random.default_rng(3)
    # stars too faint for the shallow science image's source mask, not for the deep reference's
    stars = np.zeros(shape)
    for x, y, f in zip(rng.uniform(0, shape[1], 1200), rng.uniform(0, shape[0], 1200),
                       rng.uniform(100.0, 400.0, 1200)):
        add_star(stars, x, y, f, 2.5)

    def frame(data):
        return Frame(data=data.astype(np.float32), wcs=tan_wcs(shape))

    sci = frame(stars + 200.0 + rng.normal(0, 10.0, shape))
    ref = frame(stars / ratio + 50.0 + rng.normal(0, 1.0, shape))
    (sci_b, _), (ref_b, _) = subtract_background(sci), subtract_background(ref)
    bad = np.zeros(shape, dtype=bool)
    bad[:20, :20] = True
    sci_b.data[bad] = np.nan
    before = float(np.nanmean(sci_b.data - ratio * ref_b.data))
    # the shallow image's background took in more of the faint stars' light
    assert before < -0.5
    psf = gaussian_psf(2.5, size=15)
    matched, level = match_level(sci_b, ref_b, ratio, bad, psf, psf, scale=32.0)
    after = float(np.nanmean(matched.data - ratio * ref_b.data))
    assert abs(after) < 0.1
    assert level.dtype == np.float32 and float(np.mean(level)) == pytest.approx(before, abs=0.1)
    assert np.isnan(matched.data[bad]).all() and matched is not sci_b
    with pytest.raises(ValueError, match="grid"):
        match_level(sci_b, ref_b, ratio, bad[1:], psf, psf)


def test_match_level_holds_in_a_crowded_field_of_two_psfs():
    # a star per 40 pixels: no pixel of either image is free of starlight, and the broad
    # science PSF puts more of it between the stars than the sharp reference's; the level the
    # two background estimates disagree by is found on the images brought to one PSF
    shape, ratio = (256, 256), 2.0
    rng = np.random.default_rng(4)
    n = 1600
    x, y = rng.uniform(-10, shape[1] + 10, n), rng.uniform(-10, shape[0] + 10, n)
    f = np.exp(rng.uniform(np.log(300.0), np.log(3e4), n))
    broad, sharp = np.zeros(shape), np.zeros(shape)
    for xi, yi, fi in zip(x, y, f):
        add_star(broad, xi, yi, fi, 4.5, size=31)
        add_star(sharp, xi, yi, fi, 2.5, size=31)

    def frame(data):
        return Frame(data=data.astype(np.float32), wcs=tan_wcs(shape))

    sci = frame(ratio * broad + 300.0 + rng.normal(0, 5.0, shape))
    ref = frame(sharp + rng.normal(0, 1.0, shape))
    (sci_b, _), (ref_b, _) = subtract_background(sci), subtract_background(ref)
    bad = np.zeros(shape, dtype=bool)
    psf_n, psf_r = gaussian_psf(4.5, size=31), gaussian_psf(2.5, size=31)
    inner = np.s_[40:-40, 40:-40]

    def offset(s):
        return float(np.median(psf_matched_difference(s.data, ref_b.data, ratio, bad, psf_n,
                                                      psf_r)[inner]))

    assert abs(offset(sci_b)) > 3.0  # the science sky, 300, is known to no better than this
    matched, level = match_level(sci_b, ref_b, ratio, bad, psf_n, psf_r, scale=32.0)
    assert abs(offset(matched)) < 0.3
    # the sky truly left in the science frame: its stars' light, less what it should hold
    assert float(np.median((matched.data - ratio * broad)[inner])) == pytest.approx(0.0, abs=0.6)
