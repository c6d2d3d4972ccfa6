"""Bad pixels: filled with their good neighbours' mean, found, and grown by one pixel."""

import numpy as np
import pytest

from rapid.science.badpixels import fill_bad_pixels, true_pixels


def _neighbour_mean(data, bad, size=5):
    """The good pixels' mean in the size x size box, edges repeated (the oracle)."""
    half = size // 2
    padded = np.pad(np.where(bad, 0.0, data), half, mode="edge")
    good = np.pad((~bad).astype(float), half, mode="edge")
    ny, nx = data.shape
    num = sum(padded[dy:dy + ny, dx:dx + nx] for dy in range(size) for dx in range(size))
    den = sum(good[dy:dy + ny, dx:dx + nx] for dy in range(size) for dx in range(size))
    return num / np.where(den > 0, den, np.nan)


@pytest.mark.parametrize("share", [0.002, 0.05])  # the gathering and the filtering path
def test_bad_pixels_take_their_good_neighbours_mean(share):
    rng = np.random.default_rng(7)
    data = rng.normal(10.0, 2.0, (120, 90)).astype(np.float32)
    bad = rng.random(data.shape) < share
    bad[0, 0] = bad[-1, 5] = True  # at the edges
    data[bad] = np.nan
    out = fill_bad_pixels(data, bad)
    want = _neighbour_mean(data, bad)
    assert np.isnan(data[bad]).all()  # not overwritten unless asked
    np.testing.assert_allclose(out[bad], want[bad], rtol=1e-5)
    assert np.array_equal(out[~bad], data[~bad])


def test_fill_in_place_and_a_pixel_without_good_neighbours():
    data = np.full((40, 40), 3.0, dtype=np.float32)
    data[:20] = 1.0
    bad = np.zeros(data.shape, dtype=bool)
    bad[28:36, 28:36] = True  # the centre of the square is more than 2 pixels from a good one
    out = fill_bad_pixels(data, bad, overwrite=True)
    assert out is data
    assert out[32, 32] == pytest.approx(np.median(data[~bad]))  # the typical value
    assert out[28, 28] == pytest.approx(3.0)
    # another type is never overwritten
    data64 = data.astype(np.float64)
    assert fill_bad_pixels(data64.astype(np.float32), bad, overwrite=True).dtype == np.float32
    assert fill_bad_pixels(data64, bad, overwrite=True) is data64


def test_true_pixels_are_numpys_nonzero():
    rng = np.random.default_rng(3)
    for share in (0.001, 0.1):
        bad = rng.random((77, 61)) < share
        bad[0, :3] = bad[-1, -1] = True
        rows, cols = true_pixels(bad)
        want_rows, want_cols = np.nonzero(bad)
        assert np.array_equal(rows, want_rows) and np.array_equal(cols, want_cols)
