"""Fill values (zero-filled borders, chip gaps, dead columns, saturated plateaus) are masked."""

import numpy as np
import pytest

from rapid.io.fits_frame import read_fits_frame, write_fits_image
from rapid.science.badpixels import plateau_mask
from tests.science.conftest import _make_wcs


def _squares_covering(shape, y0, y1, x0, x1, hole, size=5):
    """Union of the size x size squares inside [y0, y1) x [x0, x1) that avoid ``hole``."""
    out = np.zeros(shape, bool)
    for i in range(y0, y1 - size + 1):
        for j in range(x0, x1 - size + 1):
            if not (i <= hole[0] < i + size and j <= hole[1] < j + size):
                out[i:i + size, j:j + size] = True
    return out


def test_fill_regions_runs_and_squares_are_found_exactly():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(300, 400)).astype(np.float32)
    a[:50, :80] = 0.0              # a coadd's empty corner
    a[100:104, 100:200] = 7.0      # a 4-row band: rows of 100 equal values
    a[200:210, 300:305] = 65535.0  # a saturated plateau
    a[150:160, 10:20] = np.nan     # NaN is bad already and never counts
    a[250:260, 250:260] = 3.0
    a[252, 252] = 4.0              # one pixel breaks the squares through it
    a[:, 350] = 0.0                # a dead column
    a[290, 5:29] = 1.5             # a run of 24: one short
    expected = np.zeros(a.shape, bool)
    expected[:50, :80] = True
    expected[100:104, 100:200] = True
    expected[200:210, 300:305] = True
    expected[:, 350] = True
    expected |= _squares_covering(a.shape, 250, 260, 250, 260, hole=(252, 252))
    got = plateau_mask(a)
    assert np.array_equal(got, expected)
    assert not got[250:253, 250:253].all()  # the corner next to the odd pixel stays


@pytest.mark.parametrize("where", ["right", "bottom", "corner"])
def test_fills_at_the_image_border(where):
    a = np.random.default_rng(4).normal(size=(60, 80)).astype(np.float32)
    region = {"right": np.s_[:, 79], "bottom": np.s_[59, 10:50], "corner": np.s_[55:, 75:]}[where]
    a[region] = 2.0
    expected = np.zeros(a.shape, bool)
    expected[region] = True
    assert np.array_equal(plateau_mask(a), expected)


def test_noise_and_integer_noise_have_no_plateau():
    rng = np.random.default_rng(5)
    assert not plateau_mask(rng.normal(size=(500, 500)).astype(np.float32)).any()
    # integer counts with a few DN of noise repeat values often, but not 25 times in a row
    counts = rng.poisson(20.0, size=(500, 500)).astype(np.int16)
    assert not plateau_mask(counts).any()


def test_fill_in_integer_data_with_equal_neighbours_everywhere():
    # low counts repeat values next to each other tens of thousands of times: the search
    # covers the image as one box rather than piece by piece, and finds the same fill
    counts = np.random.default_rng(6).poisson(2.0, size=(400, 400)).astype(np.int16)
    counts[300:320, 40:70] = -1
    expected = np.zeros(counts.shape, bool)
    expected[300:320, 40:70] = True
    assert np.count_nonzero(counts[:, 1:] == counts[:, :-1]) > 20000
    assert np.array_equal(plateau_mask(counts), expected)


def test_bad_arguments():
    with pytest.raises(ValueError, match="2-D"):
        plateau_mask(np.zeros(10))
    with pytest.raises(ValueError, match=">= 2"):
        plateau_mask(np.zeros((10, 10)), size=1)


def test_reader_masks_a_zero_filled_border(tmp_path):
    rng = np.random.default_rng(6)
    data = (1000.0 + rng.normal(0, 10, (120, 100))).astype(np.float32)
    data[:, :30] = 0.0
    write_fits_image(tmp_path / "img.fits", data, _make_wcs(10.0, 20.0, data.shape))
    frame = read_fits_frame(tmp_path / "img.fits")
    assert frame.mask[:, :30].all() and not frame.mask[:, 30:].any()
    assert np.isnan(frame.data[:, :30]).all() and np.isfinite(frame.data[:, 30:]).all()
