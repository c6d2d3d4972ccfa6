"""The compiled sampling kernel against scipy's interpolation and the numpy footprint test."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from rapid.science.badpixels import BAD_THRESHOLD, bad_footprint_map
from rapid.science.sampling import footprint_touches, interpolation_coefficients, sample_block


def _touches_oracle(bad, ys, xs, *, order):
    """The footprint test written plainly in numpy: bilinear weights of the grown bad map."""
    badmap = bad_footprint_map(bad, order)
    ny, nx = badmap.shape
    fy, fx = np.floor(ys), np.floor(xs)
    iy0 = np.clip(fy.astype(int), 0, ny - 1)
    ix0 = np.clip(fx.astype(int), 0, nx - 1)
    iy1, ix1 = np.minimum(iy0 + 1, ny - 1), np.minimum(ix0 + 1, nx - 1)
    wy, wx = ys - fy, xs - fx
    y0, y1 = wy < 1 - BAD_THRESHOLD, wy > BAD_THRESHOLD
    x0, x1 = wx < 1 - BAD_THRESHOLD, wx > BAD_THRESHOLD
    return ((badmap[iy0, ix0] & y0 & x0) | (badmap[iy0, ix1] & y0 & x1)
            | (badmap[iy1, ix0] & y1 & x0) | (badmap[iy1, ix1] & y1 & x1))


@pytest.fixture
def field():
    rng = np.random.default_rng(3)
    img = rng.normal(size=(60, 50)).astype(np.float32)
    ys, xs = np.meshgrid(np.linspace(-0.5, 59.5, 70), np.linspace(-0.5, 49.5, 64),
                         indexing="ij")
    # a rotation keeps the positions off the pixel grid
    th = 0.3
    yr = 30 + np.cos(th) * (ys - 30) - np.sin(th) * (xs - 25)
    xr = 25 + np.sin(th) * (ys - 30) + np.cos(th) * (xs - 25)
    return img, yr, xr


@pytest.mark.parametrize("order", [0, 1, 3])
def test_values_equal_map_coordinates_inside(field, order):
    img, ys, xs = field
    coeffs = (ndimage.spline_filter(img, order=3, mode="mirror", output=np.float32)
              if order == 3 else img)
    values, sigma, sat = sample_block(coeffs, ys, xs, order=order, src_shape=img.shape)
    inside = (ys >= -1e-3) & (ys <= 59 + 1e-3) & (xs >= -1e-3) & (xs <= 49 + 1e-3)
    ref = ndimage.map_coordinates(coeffs, [ys[inside], xs[inside]], order=order, mode="mirror",
                                  prefilter=False)
    assert np.isnan(values[~inside]).all() and (~inside).sum() > 100
    np.testing.assert_allclose(values[inside], ref, atol=2e-5)
    assert np.isnan(sigma).all() and sat is None


def test_bad_footprint_nearest_uncertainty_saturation_and_window(field):
    img, ys, xs = field
    bad = np.zeros(img.shape, bool)
    bad[20, 20] = bad[40, 10] = True
    sat = np.zeros(img.shape, bool)
    sat[30, 30] = True
    unc = np.arange(img.size, dtype=np.float32).reshape(img.shape) + 1
    coeffs = ndimage.spline_filter(img, order=3, mode="mirror", output=np.float32)
    values, sigma, touched = sample_block(coeffs, ys, xs, order=3, src_shape=img.shape,
                                          badmap=bad_footprint_map(bad, 3), unc=unc,
                                          satmap=sat)
    inside = (ys >= -1e-3) & (ys <= 59 + 1e-3) & (xs >= -1e-3) & (xs <= 49 + 1e-3)
    hits = _touches_oracle(bad, np.clip(ys, 0, 59), np.clip(xs, 0, 49), order=3) & inside
    assert hits.sum() > 10
    assert np.array_equal(np.isnan(values), ~inside | hits)
    ok = ~np.isnan(values)
    iy = np.clip(np.floor(ys + 0.5).astype(int), 0, 59)
    ix = np.clip(np.floor(xs + 0.5).astype(int), 0, 49)
    assert np.array_equal(sigma[ok], unc[iy, ix][ok])
    sat_hits = _touches_oracle(sat, np.clip(ys, 0, 59), np.clip(xs, 0, 49), order=1) & inside
    assert sat_hits.sum() > 0 and np.array_equal(touched, sat_hits)
    # the same samples from a window of the source, given its origin
    win = (slice(10, 60), slice(5, 50))
    wvalues, _, _ = sample_block(img[win], ys, xs, order=1, src_shape=img.shape,
                                 origin=(10, 5))
    full, _, _ = sample_block(img, ys, xs, order=1, src_shape=img.shape)
    deep = inside & (ys > 11) & (xs > 6)
    np.testing.assert_allclose(wvalues[deep], full[deep], atol=1e-6)


def test_rejects_unsupported_order_and_mismatched_maps(field):
    img, ys, xs = field
    with pytest.raises(ValueError, match="order"):
        sample_block(img, ys, xs, order=5, src_shape=img.shape)
    with pytest.raises(ValueError, match="badmap"):
        sample_block(img, ys, xs, order=1, src_shape=img.shape, badmap=np.zeros((3, 3), bool))


def test_footprint_touches_is_the_kernels_test(field):
    _, ys, xs = field
    bad = np.zeros((60, 50), bool)
    bad[20, 20] = bad[40, 10] = True
    y, x = np.clip(ys, 0, 59), np.clip(xs, 0, 49)
    assert np.array_equal(footprint_touches(bad, y, x, order=3),
                          _touches_oracle(bad, y, x, order=3))


@pytest.mark.parametrize("shape", [(1, 6), (6, 1), (2, 2), (3, 50), (45, 43), (130, 70)])
def test_interpolation_coefficients_are_scipys_spline_filter(shape):
    rng = np.random.default_rng(sum(shape))
    img = (rng.normal(size=shape) * 30 + 100).astype(np.float32)
    expected = ndimage.spline_filter(img, order=3, mode="mirror", output=np.float32)
    got = interpolation_coefficients(img, 3)
    assert got.dtype == np.float32 and got.flags.c_contiguous
    np.testing.assert_allclose(got, expected, rtol=0, atol=2e-7 * np.abs(expected).max())
    assert not np.shares_memory(got, img)
    # in place when allowed; orders 0 and 1 interpolate the image itself
    work = img.copy()
    assert interpolation_coefficients(work, 3, overwrite=True) is work
    np.testing.assert_array_equal(work, got)
    np.testing.assert_array_equal(interpolation_coefficients(img.astype(np.float64), 1), img)
