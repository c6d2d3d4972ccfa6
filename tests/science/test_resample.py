"""Resampling onto another WCS grid: mapping accuracy, shifts, flux, bad pixels, PSF."""

import numpy as np
import pytest

from rapid.science.image import Frame
from rapid.science.resample import (
    CoarsePixelMap,
    interpolation_variance_factor,
    local_jacobian,
    pixel_map,
    resample,
    resample_frame,
    transform_psf,
)
from rapid.science.sampling import interpolation_coefficients, sample_block, sample_mapped

RA, DEC = 150.0, 2.2


def _centroid(img, x, y, r=6):
    ny, nx = img.shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    sel = (np.hypot(xx - x, yy - y) <= r) & np.isfinite(img)
    w = img[sel]
    return (w * xx[sel]).sum() / w.sum(), (w * yy[sel]).sum() / w.sum()


def _shifted(wcs, dx, dy):
    """The same sky grid with pixel (x, y) of ``wcs`` at (x + dx, y + dy)."""
    out = wcs.deepcopy()
    out.wcs.crpix = out.wcs.crpix + np.array([dx, dy])
    return out


def test_identity_wcs_returns_same_image(make_wcs, render_stars):
    shape = (96, 112)
    w = make_wcs(RA, DEC, shape, rot_deg=17.0, sip=True, sip_scale=30.0)
    rng = np.random.default_rng(3)
    img = (render_stars(shape, [40.3, 70.7], [50.2, 30.9], [300.0, 150.0], 1.3)
           + rng.normal(0, 1, shape)).astype(np.float32)
    out = resample(img, w, w, shape)
    assert out.dtype == np.float32
    assert np.max(np.abs(out[2:-2, 2:-2] - img[2:-2, 2:-2])) < 1e-5


def test_pure_shift_moves_centroid(make_wcs, render_stars):
    shape = (64, 64)
    w = make_wcs(RA, DEC, shape)
    x0, y0 = 30.4, 33.1
    img = render_stars(shape, [x0], [y0], [1000.0], 1.5).astype(np.float32)
    dst = _shifted(w, 3.25, -1.5)
    out = resample(img, w, dst, shape)
    cx, cy = _centroid(out, x0 + 3.25, y0 - 1.5)
    assert abs(cx - (x0 + 3.25)) < 0.01
    assert abs(cy - (y0 - 1.5)) < 0.01


@pytest.mark.parametrize("step", [32, 64])
def test_rotated_sip_mapping_matches_exact(make_wcs, step):
    # A Roman-sized SIP-distorted source seen from a north-up grid rotated by 30 degrees.
    src = make_wcs(RA, DEC, (4088, 4088), rot_deg=30.0, sip=True)
    dst_shape = (1200, 1000)
    dst = make_wcs(RA + 0.02, DEC - 0.03, dst_shape)
    ys, xs = pixel_map(src, dst, dst_shape, step=step)
    assert ys.shape == dst_shape and ys.dtype == np.float64
    rng = np.random.default_rng(0)
    iy = rng.integers(0, dst_shape[0], 4000)
    ix = rng.integers(0, dst_shape[1], 4000)
    ra, dec = dst.all_pix2world(ix.astype(float), iy.astype(float), 0)
    ex, ey = src.all_world2pix(ra, dec, 0, tolerance=1e-9, maxiter=50)
    # The distortion is real: the exact mapping is far from the undistorted one.
    ux, uy = src.wcs_world2pix(ra, dec, 0)
    assert np.max(np.hypot(ex - ux, ey - uy)) > 2.0
    err = np.hypot(ex - xs[iy, ix], ey - ys[iy, ix])
    assert err.max() < 0.01


def test_pixel_areas_follow_the_distortion(make_wcs):
    src = make_wcs(RA, DEC, (4088, 4088), rot_deg=30.0, sip=True)
    dst_shape = (1200, 1000)
    dst = make_wcs(RA + 0.02, DEC - 0.03, dst_shape, scale_arcsec=0.1)
    area = CoarsePixelMap(src, dst, dst_shape).area(0, dst_shape[0])
    assert area.shape == dst_shape and area.dtype == np.float32
    # the exact area at random pixels: the mapping's Jacobian by central differences
    rng = np.random.default_rng(5)
    iy = rng.integers(0, dst_shape[0], 300)
    ix = rng.integers(0, dst_shape[1], 300)
    h = 0.5
    px = np.concatenate([ix + h, ix - h, ix, ix]).astype(float)
    py = np.concatenate([iy, iy, iy + h, iy - h]).astype(float)
    sx, sy = src.all_world2pix(*dst.all_pix2world(px, py, 0), 0, tolerance=1e-10, maxiter=50)
    sx, sy = sx.reshape(4, -1), sy.reshape(4, -1)
    exact = np.abs((sx[0] - sx[1]) * (sy[2] - sy[3]) - (sx[2] - sx[3]) * (sy[0] - sy[1]))
    assert np.max(np.abs(area[iy, ix] / exact - 1)) < 1e-4
    # the distortion changes the pixels' area by half a per cent across the footprint
    assert exact.max() / exact.min() > 1.004


@pytest.mark.parametrize("dst_scale", [0.08, 0.15])
def test_resampled_frame_keeps_fluxes_on_pixels_of_another_size(make_wcs, render_stars,
                                                                 dst_scale):
    shape = (96, 96)
    src = make_wcs(RA, DEC, shape)
    dst = make_wcs(RA, DEC, shape, scale_arcsec=dst_scale, rot_deg=20.0)
    flux = 800.0
    img = render_stars(shape, [47.3], [45.6], [flux], 3.0).astype(np.float32)
    f = Frame(data=img, wcs=src, meta={"zptmag": 20.0, "saturation": 1000.0, "gain": 2.0})
    out = resample_frame(f, dst, shape)
    x, y = dst.all_world2pix(*src.all_pix2world([47.3], [45.6], 0), 0)
    yy, xx = np.mgrid[0:96, 0:96]
    ap = np.hypot(xx - x[0], yy - y[0]) <= 25
    # interpolated surface brightness would give the flux times the area ratio (0.53 or 1.86)
    assert np.nansum(out.data[ap]) == pytest.approx(flux, rel=0.01)
    area = (dst_scale / 0.11) ** 2
    assert out.meta["zptmag"] == 20.0
    assert out.meta["saturation"] == pytest.approx(1000.0 * area, rel=1e-3)
    assert out.meta["gain"] == 2.0  # electrons per unit: the same on either grid


@pytest.mark.parametrize("src_scale, src_side", [(0.055, 256), (0.22, 64)])
def test_source_noise_of_a_resampled_frame_holds_for_sums(make_wcs, src_scale, src_side):
    """A flat field of Poisson counts brought onto pixels twice as coarse or twice as fine:
    the variance of sums over a PSF-sized box is what the gain says of their light, within
    the interpolation's own effects (dividing the gain by the area put it 4 times too high
    on the coarse grid and 4 times too low on the fine one)."""
    rng = np.random.default_rng(3)
    gain, level, shape = 2.0, 500.0, (128, 128)
    data = (rng.poisson(level * gain, (src_side, src_side)) / gain).astype(np.float32)
    f = Frame(data=data, wcs=make_wcs(RA, DEC, (src_side, src_side), scale_arcsec=src_scale),
              meta={"gain": gain})
    out = resample_frame(f, _shifted(make_wcs(RA, DEC, shape), 0.3, 0.2), shape)
    d = out.data[16:112, 16:112]
    sums = d.reshape(12, 8, 12, 8).sum(axis=(1, 3))
    model = d.mean() / out.meta["gain"] * 64
    assert 0.6 < sums.var() / model < 1.8


def test_flux_of_isolated_star_conserved(make_wcs, render_stars):
    shape = (80, 80)
    src = make_wcs(RA, DEC, shape, rot_deg=23.0)
    dst = make_wcs(RA, DEC, shape, rot_deg=-11.0)
    flux = 500.0
    img = render_stars(shape, [41.3], [38.6], [flux], 1.4).astype(np.float32)
    out = resample(img, src, dst, shape)
    x, y = dst.all_world2pix(*src.all_pix2world([41.3], [38.6], 0), 0)
    yy, xx = np.mgrid[0:80, 0:80]
    ap = np.hypot(xx - x[0], yy - y[0]) <= 8
    assert abs(np.nansum(out[ap]) / flux - 1) < 0.01


@pytest.mark.parametrize("order,max_bad", [(1, 4), (3, 16)])
def test_nan_marks_only_its_neighbourhood(make_wcs, order, max_bad):
    shape = (50, 50)
    w = make_wcs(RA, DEC, shape)
    img = np.random.default_rng(1).normal(10, 1, shape).astype(np.float32)
    img[25, 20] = np.nan
    dst = _shifted(w, 0.3, 0.6)
    out = resample(img, w, dst, shape, order=order)
    interior = np.zeros(shape, bool)
    interior[3:-3, 3:-3] = True
    bad = np.argwhere(np.isnan(out) & interior)
    assert 1 <= len(bad) <= max_bad
    # Every flagged pixel lies within the interpolation footprint of the NaN (now at 25.6, 20.3).
    assert np.all(np.abs(bad[:, 0] - 25.6) < 2.6) and np.all(np.abs(bad[:, 1] - 20.3) < 2.6)
    # Neighbours just outside the footprint are unaffected by the NaN's fill value.
    clean = resample(np.where(np.isnan(img), 10.0, img), w, dst, shape, order=order)
    ok = np.isfinite(out) & interior
    assert np.max(np.abs(out[ok] - clean[ok])) < 0.15


def test_outside_source_is_fill(make_wcs):
    shape = (40, 40)
    w = make_wcs(RA, DEC, shape)
    dst = _shifted(w, 10.5, 0.0)
    out = resample(np.ones(shape, np.float32), w, dst, shape, fill=-1.0)
    assert np.all(out[:, :10] == -1.0)
    assert np.allclose(out[:, 11:-1], 1.0, atol=1e-6)


def test_resample_frame_rotates_psf_and_keeps_meta(make_wcs, gaussian_psf):
    shape = (64, 64)
    src = make_wcs(RA, DEC, shape, rot_deg=90.0)
    dst = make_wcs(RA, DEC, shape)
    psf = np.zeros((7, 7), np.float32)
    psf[3, 3], psf[3, 5] = 0.7, 0.3          # a lopsided PSF: weight to +x in the source
    data = np.ones(shape, np.float32)
    data[5, 5] = np.nan
    f = Frame(data=data, wcs=src, psf=psf, unc=np.full(shape, 2.0, np.float32),
              meta={"zptmag": 20.0})
    out = resample_frame(f, dst, shape)
    assert out.meta == {"zptmag": 20.0} and out.meta is not f.meta
    assert out.psf.sum() == pytest.approx(1.0, abs=1e-6)
    # +x in the source points along -y or +y on the north-up grid: the 0.3 moves to column 3.
    assert out.psf[3, 3] == pytest.approx(0.7) and out.psf[:, 3].sum() == pytest.approx(1.0)
    jac = local_jacobian(src, dst, (31.5, 31.5))
    assert np.allclose(np.abs(jac), [[0, 1], [1, 0]], atol=1e-6)
    assert out.mask.sum() >= 1 and np.all(np.isnan(out.data[out.mask]))
    assert np.allclose(out.unc[~out.mask], 2.0)


def test_transform_psf_small_rotation_keeps_sum_and_shape(gaussian_psf):
    psf = gaussian_psf(1.3, size=15)
    th = np.deg2rad(12.0)
    jac = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    out = transform_psf(psf, jac)
    assert out.sum() == pytest.approx(1.0, abs=1e-6)
    # A circular PSF is unchanged by rotation, up to the pixel integration's square footprint.
    assert np.max(np.abs(out - psf)) < 5e-3 * psf.max()


@pytest.mark.parametrize("rot_deg, dx, dy", [(0.0, 0.5, 0.5), (0.0, 0.27, -0.33), (37.0, 0.0, 0.0)])
def test_resampled_psf_has_the_interpolation_blur(make_wcs, render_stars, gaussian_psf,
                                                   rot_deg, dx, dy):
    """Stars put where the destination's pixel centres fall show the resampled PSF itself: an
    undersampled one (1.4 pixels FWHM) comes out wider than its grid mapping alone makes it,
    as the model with the interpolation's blur says."""
    sigma, shape = 1.4 / 2.3548, (256, 256)
    src = make_wcs(RA, DEC, shape)
    dst = _shifted(make_wcs(RA, DEC, shape, rot_deg=rot_deg), dx, dy)
    grid = np.arange(64, 193, 12.0)
    xd, yd = (v.ravel() for v in np.meshgrid(grid, grid))
    xs, ys = src.all_world2pix(*dst.all_pix2world(xd, yd, 0), 0)
    data = render_stars(shape, xs, ys, np.ones(xs.size), sigma).astype(np.float32)
    psf = gaussian_psf(sigma, size=25)
    out = resample_frame(Frame(data=data, wcs=src, psf=psf), dst, shape)
    # 11 x 11 pixels about each (the stars are 12 apart)
    seen = np.mean([out.data[y - 5:y + 6, x - 5:x + 6]
                    for x, y in zip(xd.astype(int), yd.astype(int))], axis=0)
    plain = transform_psf(psf, local_jacobian(src, dst, (127.5, 127.5)))[7:18, 7:18]
    model = out.psf[7:18, 7:18]
    assert out.psf.sum() == pytest.approx(1.0, abs=1e-6)
    assert model.max() < 0.95 * plain.max()
    assert abs(model.max() - seen.max()) < 0.5 * abs(plain.max() - seen.max())
    assert np.abs(model - seen).sum() < 0.9 * np.abs(plain - seen).sum()


def test_no_blur_where_the_mapping_reads_pixel_centres(make_wcs, gaussian_psf):
    shape = (64, 64)
    src = make_wcs(RA, DEC, shape)
    dst = _shifted(src, 3.0, -2.0)
    psf = gaussian_psf(1.4 / 2.3548, size=25)
    out = resample_frame(Frame(data=np.zeros(shape, np.float32), wcs=src, psf=psf), dst, shape)
    assert np.allclose(out.psf, psf, atol=1e-6)


def test_variance_factor_is_one_at_integer_and_lower_between():
    f = interpolation_variance_factor(np.array([3.0, 3.5]), np.array([7.0, 7.5]), order=3)
    assert f[0] == pytest.approx(1.0, abs=1e-6)
    assert 0.4 < f[1] < 0.8


def test_rejects_bad_arguments(make_wcs):
    w = make_wcs(RA, DEC, (10, 10))
    with pytest.raises(ValueError, match="order"):
        resample(np.zeros((10, 10)), w, w, (10, 10), order=2)
    with pytest.raises(ValueError, match="dst_shape"):
        pixel_map(w, w, (0, 10))
    with pytest.raises(ValueError, match="src_wcs"):
        pixel_map("nope", w, (10, 10))


def test_dst_offsets_shift_the_mapping_like_a_moved_grid(make_wcs, render_stars):
    # a correction (dx, dy) reads the source where destination pixel (x - dx, y - dy) maps:
    # the same as a destination grid moved by (dx, dy) pixels
    shape = (80, 72)
    w = make_wcs(RA, DEC, shape, rot_deg=25.0, sip=True, sip_scale=40.0)
    rng = np.random.default_rng(4)
    img = (render_stars(shape, [30.3, 50.8], [40.2, 20.6], [500.0, 300.0], 1.4)
           + rng.normal(0, 1, shape)).astype(np.float32)
    dst = make_wcs(RA, DEC, shape, rot_deg=-10.0)

    def offsets(x, y):
        return np.full_like(x, 0.35), np.full_like(y, -1.2)

    out = resample(img, w, dst, shape, dst_offsets=offsets)
    moved = resample(img, w, _shifted(dst, 0.35, -1.2), shape)
    unshifted = resample(img, w, dst, shape)
    both = np.isfinite(out) & np.isfinite(moved)
    assert both.sum() > 0.8 * out.size
    assert np.max(np.abs(out[both] - moved[both])) < 1e-3
    assert np.nanmax(np.abs(out - unshifted)) > 10.0


@pytest.mark.parametrize("dst_shape", [(300, 260), (1, 260), (300, 1)])
def test_mapped_rows_sample_what_the_coordinate_arrays_sample(make_wcs, dst_shape):
    """The splines the sampling loop evaluates are the mapping of block() and area(), the
    linear map of a single row or column included."""
    src = make_wcs(RA, DEC, (400, 380), rot_deg=30.0, sip=True, sip_scale=10.0)
    dst = make_wcs(RA + 0.001, DEC - 0.002, dst_shape, scale_arcsec=0.1)
    cmap = CoarsePixelMap(src, dst, dst_shape)
    rng = np.random.default_rng(4)
    img = rng.normal(size=(400, 380)).astype(np.float32)
    unc = rng.uniform(0.5, 2.0, size=(400, 380)).astype(np.float32)
    coeffs = interpolation_coefficients(img, 3)
    ny = dst_shape[0]
    ys, xs = cmap.block(0, ny)
    want, want_sigma, _ = sample_block(coeffs, ys, xs, order=3, src_shape=img.shape, unc=unc)
    area = cmap.area(0, ny)
    got, sigma, _, first, last = sample_mapped(coeffs, cmap.mapped_rows(0, ny), order=3,
                                               src_shape=img.shape, unc=unc)
    on = np.isfinite(want)
    assert on.any() and np.array_equal(np.isfinite(got), on)
    np.testing.assert_allclose(got[on], (want * area)[on], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(sigma[on], (want_sigma * area)[on], rtol=1e-5)
    for i in range(ny):
        cols = np.flatnonzero(on[i])
        assert (first[i], last[i]) == ((cols[0], cols[-1] + 1) if len(cols) else (0, 0))


def test_undefined_mapping_is_outside_in_mapped_rows(make_wcs):
    """Destination pixels the projection cannot bring onto the source (its far side) are
    outside, as block() makes them NaN."""
    src = make_wcs(RA + 60.0, DEC, (100, 100))
    # a grid 110 degrees wide, centred 60 degrees away: its far side is more than 90 degrees
    # from the source's tangent point
    dst_shape = (60, 60)
    dst = make_wcs(RA, DEC, dst_shape, scale_arcsec=3600.0 * 3.0)
    cmap = CoarsePixelMap(src, dst, dst_shape, step=8)
    ys, _ = cmap.block(0, 60)
    mapped = cmap.mapped_rows(0, 60)
    assert mapped.undefined is not None and mapped.undefined.any()
    assert np.array_equal(mapped.undefined, np.isnan(ys))
    coeffs = interpolation_coefficients(np.ones((100, 100), dtype=np.float32), 3)
    got = sample_mapped(coeffs, mapped, order=3, src_shape=(100, 100))[0]
    assert np.isnan(got[mapped.undefined]).all()
