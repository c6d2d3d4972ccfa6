"""The reference's building blocks: box statistics, the mesh background, grid splines, and the
resampled frames stored span by span."""

import numpy as np
import pytest
from scipy.interpolate import RectBivariateSpline

from rapid.science.coadd import MeshBackground, _median_inplace, plan_frame, resample_footprint
from rapid.science.grid_spline import GridSpline
from rapid.science.badpixels import bad_footprint_map, fill_bad_pixels
from rapid.science.reference import _span_mask, _store_frame, tile_grid_wcs
from rapid.science.sampling import interpolation_coefficients, sample_block
from tests.science.test_reference import DEC, RA, SIZE, _frames


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 10, 101, 1024])
def test_median_inplace_equals_numpy_with_ties(n):
    rng = np.random.default_rng(n)
    for trial in range(50):
        a = rng.normal(size=n)
        if trial % 2:
            a = np.round(a)  # many equal values
        work = np.concatenate([a, rng.normal(size=5)])  # only the first n count
        assert _median_inplace(work, n) == np.median(a)
        assert np.array_equal(np.sort(work[:n]), np.sort(a))  # reordered, nothing lost


def test_mesh_background_follows_a_gradient_through_stars_and_holes():
    rng = np.random.default_rng(5)
    ny, nx = 512, 640
    yy, xx = np.mgrid[0:ny, 0:nx]
    sky = 10.0 + 0.004 * xx - 0.003 * yy + 0.5 * np.sin(yy / 150.0)
    data = (sky + rng.normal(0, 1.0, (ny, nx))).astype(np.float32)
    # bright stars and cosmic rays the clipping must ignore, and a masked hole
    for y, x in rng.integers(20, [ny - 20, nx - 20], size=(150, 2)):
        data[y - 2:y + 3, x - 2:x + 3] += 200.0
    bad = np.zeros((ny, nx), dtype=bool)
    bad[100:220, 300:420] = True
    data[bad] = np.nan
    bg = MeshBackground(data, bad, box=64)
    back = bg.back(0, ny, 0, nx)
    assert back.dtype == np.float32 and back.shape == (ny, nx)
    err = (back - sky)[32:-32, 32:-32]
    # unclipped, the stars alone would raise the level by 2.3
    assert abs(np.mean(err)) < 0.05
    assert np.median(np.abs(err)) < 0.08 and np.abs(err).max() < 0.35
    assert np.median(bg.rms(0, ny, 0, nx)) == pytest.approx(1.0, rel=0.05)
    # a window of rows and columns is the same surface
    np.testing.assert_allclose(bg.back(100, 160, 50, 90), back[100:160, 50:90], atol=1e-5)


@pytest.mark.parametrize("level", [0.0, 1e4])
def test_grid_spline_equals_the_spline_it_stands_for(level):
    rng = np.random.default_rng(2)
    yc = np.array([0.0, 31.5, 63.5, 95.5, 120.0])
    xc = np.array([0.0, 40.0, 80.0, 120.0, 160.0, 199.0])
    values = level + rng.normal(size=(len(yc), len(xc)))
    spline = GridSpline(yc, xc, values)
    yv, xv = np.arange(0, 121, dtype=float), np.arange(0, 200, dtype=float)
    exact = RectBivariateSpline(yc, xc, values, kx=3, ky=3, s=0)(yv, xv)
    got64 = spline.rows(yv, spline.column_factor(xv))
    np.testing.assert_allclose(got64, exact, rtol=0, atol=1e-9 * max(level, 1))
    # float32 keeps the precision of the variations even on a large level
    got32 = spline.rows(yv, spline.column_factor(xv, np.float32))
    assert got32.dtype == np.float32
    assert np.abs(got32 - exact).max() < 1e-6 * level + 1e-5
    np.testing.assert_allclose(got32[:, ::7], exact[:, ::7], atol=2e-3 if level else 1e-5)


def _unpacked(blocks, width):
    """Full-width (values, weights) of resample_footprint's packed blocks."""
    values, weights = [], []
    for b in blocks:
        keep = _span_mask(b.first, b.last, width)
        v = np.full(keep.shape, np.nan, dtype=np.float32)
        w = np.zeros(keep.shape, dtype=np.float32)
        v[keep], w[keep] = b.values, b.weights
        values.append(v)
        weights.append(w)
    return np.concatenate(values), np.concatenate(weights)


def test_footprint_rows_equal_sampling_every_pixel(make_wcs, star_frame, star_field):
    """The spans mapped in the sampling loop give what mapping and sampling every pixel of the
    bounding box gives, and leave out only pixels without a weight."""
    frames, _ = _frames(make_wcs, star_frame, star_field, n=2)
    grid = tile_grid_wcs(RA, DEC, size=SIZE)
    plan = plan_frame(frames[1], 1, grid, (SIZE, SIZE), zero_point=17.0)  # rotated by 33 deg
    y0, y1, x0, x1 = plan.bbox
    values, weights = _unpacked(resample_footprint(plan, rows=100), x1 - x0)
    # every pixel of the box, mapped by the coordinate arrays and sampled one by one
    frame = plan.frame
    sy, sx = frame.shape
    clean = fill_bad_pixels((frame.data - plan.background.back(0, sy, 0, sx)) * plan.scale,
                            plan.bad)
    ys, xs = plan.cmap.block(0, y1 - y0)
    want, sigma, _ = sample_block(interpolation_coefficients(clean, 3), ys, xs, order=3,
                                  src_shape=(sy, sx), badmap=bad_footprint_map(plan.bad, 3),
                                  unc=(frame.unc * plan.scale).astype(np.float32))
    area = plan.cmap.area(0, y1 - y0)
    want *= area
    sigma *= area
    valid = sigma > 0
    assert valid.sum() > 0.4 * valid.size
    assert np.array_equal(weights > 0, valid)
    np.testing.assert_allclose(values[valid], want[valid], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(weights[valid], 1.0 / sigma[valid] ** 2, rtol=1e-5)
    # a rotated frame fills part of its bounding box: the packed spans hold far fewer pixels
    packed = sum(len(b.values) for b in resample_footprint(plan))
    assert valid.sum() <= packed < 0.85 * valid.size


def test_column_spans_hold_every_pixel_on_the_source(make_wcs, star_frame, star_field):
    frames, _ = _frames(make_wcs, star_frame, star_field, n=2)
    grid = tile_grid_wcs(RA, DEC, size=SIZE)
    plan = plan_frame(frames[1], 1, grid, (SIZE, SIZE), zero_point=17.0)
    y0, y1, x0, x1 = plan.bbox
    sy, sx = plan.frame.shape
    lo, hi = plan.cmap.column_spans((sy, sx), 0, y1 - y0)
    ys, xs = plan.cmap.block(0, y1 - y0)
    on = (ys >= 0) & (ys <= sy - 1) & (xs >= 0) & (xs <= sx - 1)
    cols = np.arange(x1 - x0)
    inside_span = (cols >= lo[:, None]) & (cols < hi[:, None])
    assert not (on & ~inside_span).any()
    # and not much more: a coarse cell (32 pixels) at each end of a row at most
    assert inside_span.sum() < on.sum() + 2 * 33 * (y1 - y0)


def test_stored_frame_reads_back_the_resampled_pixels(make_wcs, star_frame, star_field, tmp_path):
    frames, _ = _frames(make_wcs, star_frame, star_field, n=2)
    grid = tile_grid_wcs(RA, DEC, size=SIZE)
    plan = plan_frame(frames[1], 1, grid, (SIZE, SIZE), zero_point=17.0)  # rotated by 33 deg
    values, weights = _unpacked(resample_footprint(plan), plan.bbox[3] - plan.bbox[2])
    stored = _store_frame(plan, str(tmp_path), order=3,
                          saturated_grid=np.zeros((SIZE, SIZE), dtype=bool))
    # a rotated frame fills part of its bounding box: only the spans with data are written
    assert stored.offset[-1] < 0.85 * values.size
    assert stored.offset[-1] >= (weights > 0).sum()
    r0, r1 = 40, 97
    keep = stored.spans(r0, r1)
    got_v = np.full((r1 - r0, values.shape[1]), np.nan, dtype=np.float32)
    got_w = np.zeros((r1 - r0, values.shape[1]), dtype=np.float32)
    got_v[keep] = stored.read(stored.values, r0, r1)
    got_w[keep] = stored.read(stored.weights, r0, r1)
    assert np.array_equal(got_v, values[r0:r1], equal_nan=True)
    assert np.array_equal(got_w, weights[r0:r1])
