"""Reference coadds: photometry, noise, outlier rejection, coverage, cropping, refimmeta."""

import numpy as np
import pytest

from rapid.science.reference import (
    ReferenceImage,
    build_reference,
    reference_catalog,
    tile_grid_wcs,
)

RA, DEC = 150.0, 2.2
SHAPE = (160, 160)
SIGMA = 1.2            # PSF sigma in pixels
NOISE = 2.0            # per-pixel noise of every frame, in reference (zero point 17) units
SIZE = 300             # tile grid size of the tests
ROTS = [0.0, 33.0, 71.0, 152.0, 265.0]
ZPS = [16.6, 16.9, 17.0, 17.2, 17.5]
CR_XY = (60, 50)       # cosmic ray in frame 2, frame pixels (x, y)
TRANSIENT = (RA - 3.0 / 3600, DEC + 2.5 / 3600, 3000.0)   # a source seen only in frame 3


def _frames(make_wcs, star_frame, star_field, n=5):
    ra, dec, flux = star_field(30, RA, DEC, 7.0, flux_range=(300.0, 3000.0), seed=11)
    rng = np.random.default_rng(7)
    frames = []
    for i in range(n):
        dra, ddec = rng.uniform(-1.0, 1.0, 2) / 3600
        w = make_wcs(RA + dra, DEC + ddec, SHAPE, rot_deg=ROTS[i % 5], sip=True, sip_scale=20.0)
        scale = 10 ** (0.4 * (17.0 - ZPS[i % 5]))   # reference units per frame DN/s
        sra, sdec, sflux = ra, dec, flux
        if i == 3:
            sra, sdec, sflux = (np.append(ra, TRANSIENT[0]), np.append(dec, TRANSIENT[1]),
                                np.append(flux, TRANSIENT[2]))
        extra = None
        if i == 2:
            extra = np.zeros(SHAPE)
            extra[CR_XY[1], CR_XY[0]] = 400.0
            extra[CR_XY[1], CR_XY[0] + 1] = 250.0
        frames.append(star_frame(w, SHAPE, sra, sdec, sflux, sigma=SIGMA, noise=NOISE / scale,
                                 seed=100 + i, background=5.0, zptmag=ZPS[i % 5],
                                 mjdobs=60000.0 + 5 * i, extra=extra))
    return frames, (ra, dec, flux)


@pytest.fixture(scope="module")
def stack(make_wcs, star_frame, star_field, render_stars):
    frames, truth = _frames(make_wcs, star_frame, star_field)
    ref = build_reference(frames, ra0=RA, dec0=DEC, size=SIZE, block_rows=64)
    ra, dec, flux = truth
    x, y = ref.frame.wcs.all_world2pix(ra, dec, 0)
    model = render_stars(ref.frame.shape, x, y, flux, SIGMA)
    return frames, truth, ref, model


def _sky_to_ref(ref, ra, dec):
    x, y = ref.frame.wcs.all_world2pix(ra, dec, 0)
    return np.asarray(x), np.asarray(y)


def test_star_fluxes_match_truth(stack):
    _, (ra, dec, flux), ref, _ = stack
    x, y = _sky_to_ref(ref, ra, dec)
    yy, xx = np.mgrid[0:ref.frame.shape[0], 0:ref.frame.shape[1]]
    ratios, tol = [], []
    for xi, yi, fi in zip(x, y, flux):
        ap = np.hypot(xx - xi, yy - yi) <= 7
        if ref.coverage[ap].min() == 5:
            ratios.append(ref.frame.data[ap].sum() / fi)
            # 3 sigma of the aperture noise, plus 2% for resampling and background.
            tol.append(3 * np.sqrt(np.sum(ref.frame.unc[ap] ** 2)) / fi + 0.02)
    assert len(ratios) >= 10
    assert abs(np.mean(ratios) - 1) < 0.02
    assert np.all(np.abs(np.array(ratios) - 1) < np.array(tol))
    assert np.max(tol) < 0.15


def _star_free_full_coverage(ref, model):
    return (ref.coverage == 5) & (model < 0.02 * NOISE)


def test_noise_is_single_frame_noise_over_sqrt_n(stack):
    _, _, ref, model = stack
    resid = np.where(_star_free_full_coverage(ref, model), ref.frame.data - model, np.nan)
    # Sums over 6x6 boxes: resampling correlates neighbouring pixels but keeps such sums' noise.
    b = 6
    ny, nx = (s // b * b for s in resid.shape)
    sums = resid[:ny, :nx].reshape(ny // b, b, nx // b, b).sum(axis=(1, 3))
    sums = sums[np.isfinite(sums)]
    assert sums.size > 200
    assert np.std(sums) / b == pytest.approx(NOISE / np.sqrt(5), rel=0.15)
    # Per pixel the noise is lower but not by more than the cubic spline's smoothing allows.
    pix = np.nanstd(resid)
    assert 0.75 * NOISE / np.sqrt(5) < pix < 1.05 * NOISE / np.sqrt(5)


def test_uncertainty_map_matches_measured_rms(stack):
    _, _, ref, model = stack
    sel = _star_free_full_coverage(ref, model)
    unc = np.median(ref.frame.unc[sel])
    assert unc == pytest.approx(NOISE / np.sqrt(5), rel=0.02)
    assert np.std(ref.frame.data[sel] - model[sel]) == pytest.approx(unc, rel=0.2)
    assert np.all(np.isnan(ref.frame.unc[ref.coverage == 0]))


def test_cosmic_ray_and_transient_rejected(stack):
    frames, _, ref, model = stack
    cra, cdec = frames[2].wcs.all_pix2world([CR_XY[0] + 0.5], [CR_XY[1]], 0)
    spots = [_sky_to_ref(ref, cra, cdec), _sky_to_ref(ref, [TRANSIENT[0]], [TRANSIENT[1]])]
    for x, y in spots:
        iy, ix = int(np.round(y[0])), int(np.round(x[0]))
        win = (slice(iy - 1, iy + 2), slice(ix - 1, ix + 2))
        assert ref.coverage[win].min() >= 3
        dev = np.abs(ref.frame.data[win] - model[win]) / ref.frame.unc[win]
        assert dev.max() < 3.0
    assert ref.rejected > 0


def test_coverage_counts_frames_and_is_zero_outside(stack):
    frames, _, ref, _ = stack
    ny, nx = ref.frame.shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    ra, dec = ref.frame.wcs.all_pix2world(xx.ravel(), yy.ravel(), 0)
    expected = np.zeros(ny * nx, int)
    near_edge = np.zeros(ny * nx, bool)
    for f in frames:
        fx, fy = f.wcs.all_world2pix(ra, dec, 0)
        expected += (fx > 2) & (fx < SHAPE[1] - 3) & (fy > 2) & (fy < SHAPE[0] - 3)
        near_edge |= ((fx > -3) & (fx < SHAPE[1] + 2) & (fy > -3) & (fy < SHAPE[0] + 2)
                      & ~((fx > 2) & (fx < SHAPE[1] - 3) & (fy > 2) & (fy < SHAPE[0] - 3)))
    expected = expected.reshape(ny, nx)
    clear = ~near_edge.reshape(ny, nx)
    assert np.all(ref.coverage[clear & (expected == 0)] == 0)
    match = ref.coverage[clear] == expected[clear]
    assert match.mean() > 0.995       # the rest are rejected samples
    assert (ref.coverage == 5).sum() > 5000
    assert np.all(ref.frame.mask == (ref.coverage == 0))


def test_crop_keeps_the_grid(stack):
    frames, _, ref, _ = stack
    full = build_reference(frames[:3], ra0=RA, dec0=DEC, size=SIZE, crop=False, block_rows=128)
    crop = build_reference(frames[:3], ra0=RA, dec0=DEC, size=SIZE, crop=True, block_rows=128)
    assert full.frame.shape == (SIZE, SIZE)
    assert crop.frame.shape[0] < SIZE and crop.frame.shape[1] < SIZE
    x0, y0 = crop.meta["x0"], crop.meta["y0"]
    ra, dec = RA + 2.0 / 3600, DEC - 1.0 / 3600
    fx, fy = full.frame.wcs.all_world2pix(ra, dec, 0)
    cx, cy = crop.frame.wcs.all_world2pix(ra, dec, 0)
    assert fx - cx == pytest.approx(x0, abs=1e-9) and fy - cy == pytest.approx(y0, abs=1e-9)
    ny, nx = crop.frame.shape
    sub = full.frame.data[y0:y0 + ny, x0:x0 + nx]
    both = np.isfinite(sub) & np.isfinite(crop.frame.data)
    assert both.sum() > 0.5 * both.size
    assert np.max(np.abs(sub[both] - crop.frame.data[both])) < 1e-4
    assert np.all(np.isnan(np.delete(full.frame.data, np.s_[y0:y0 + ny], axis=0)))


def test_refimmeta_fields_are_sane(stack):
    _, (ra, dec, flux), ref, _ = stack
    m = ref.meta
    assert m["nframes"] == ref.nframes == 5
    assert (m["mjdobsmin"], m["mjdobsmax"]) == (60000.0, 60020.0)
    assert m["npixsat"] == 0
    assert m["npixnan"] == int(np.isnan(ref.frame.data).sum()) > 0
    assert abs(m["clmean"]) < 0.2 and 0.5 < m["clstddev"] < 1.5
    assert m["clnoutliers"] > 0
    assert m["gmin"] < m["gmedian"] < m["gmax"]
    assert 0 < m["cov5percent"] < 100 and m["medncov"] >= 3
    assert m["medpixunc"] == pytest.approx(NOISE / np.sqrt(5), rel=0.1)
    # Pixel-integrated Gaussian of sigma 1.2: FWHM 2.9 px, a little more after resampling.
    assert 2.7 < m["fwhmmin"] <= m["fwhmmed"] <= m["fwhmmax"] < 3.4
    assert 0.8 * len(flux) <= m["nsexcatsources"] <= 1.5 * len(flux)


def test_reference_psf_is_normalised_and_round(stack):
    _, _, ref, _ = stack
    psf = ref.frame.psf
    assert psf.sum() == pytest.approx(1.0, abs=1e-6)
    c = psf.shape[0] // 2
    assert np.unravel_index(np.argmax(psf), psf.shape) == (c, c)
    assert np.max(np.abs(psf - psf.T)) < 0.02 * psf.max()


def test_reference_catalog_positions_and_fluxes(stack):
    _, (ra, dec, flux), ref, _ = stack
    cat = reference_catalog(ref)
    assert cat.meta["cattype"] == 1
    assert set(cat.colnames) == {"x", "y", "ra", "dec", "flux", "flux_err", "fwhm", "flags"}
    cosd = np.cos(np.deg2rad(DEC))
    d = np.hypot((cat["ra"][:, None] - ra[None, :]) * cosd, cat["dec"][:, None] - dec[None, :])
    best = d.argmin(axis=0)
    close = d[best, np.arange(len(ra))] * 3600 < 0.05
    assert close.mean() > 0.8
    # Aperture of radius 3 px around a Gaussian of sigma ~1.25 px holds ~94% of the flux.
    ratio = np.asarray(cat["flux"])[best[close]] / flux[close]
    assert np.median(ratio) == pytest.approx(0.94, abs=0.04)


def test_three_frames_median_rule_rejects_cosmic_ray(make_wcs, star_frame, star_field,
                                                    render_stars):
    frames, (ra, dec, flux) = _frames(make_wcs, star_frame, star_field, n=3)
    ref = build_reference(frames, ra0=RA, dec0=DEC, size=SIZE, block_rows=64)
    model = render_stars(ref.frame.shape, *ref.frame.wcs.all_world2pix(ra, dec, 0), flux, SIGMA)
    assert ref.nframes == 3 and ref.meta["npixsat"] == 0
    cra, cdec = frames[2].wcs.all_pix2world([CR_XY[0]], [CR_XY[1]], 0)
    x, y = ref.frame.wcs.all_world2pix(cra, cdec, 0)
    iy, ix = int(np.round(y[0])), int(np.round(x[0]))
    assert ref.coverage[iy, ix] == 2          # the cosmic-ray sample is gone
    assert abs(ref.frame.data[iy, ix] - model[iy, ix]) < 3 * ref.frame.unc[iy, ix]


def test_saturated_pixels_are_counted_and_left_out(make_wcs, star_frame, star_field):
    frames, _ = _frames(make_wcs, star_frame, star_field, n=3)
    frames[0].meta["saturation"] = 150.0
    nsat = int((frames[0].data >= 150.0).sum())
    assert nsat > 0
    ref = build_reference(frames, ra0=RA, dec0=DEC, size=SIZE, block_rows=64)
    # Each saturated source pixel spoils the few output pixels its footprint reaches.
    assert nsat <= ref.meta["npixsat"] <= 6 * nsat
    iy, ix = np.unravel_index(np.argmax(np.where(frames[0].data >= 150, frames[0].data, 0)),
                              frames[0].shape)
    ra, dec = frames[0].wcs.all_pix2world([ix], [iy], 0)
    x, y = ref.frame.wcs.all_world2pix(ra, dec, 0)
    assert ref.coverage[int(np.round(y[0])), int(np.round(x[0]))] <= 2


def test_frame_count_limits(make_wcs, star_frame, star_field):
    frames, _ = _frames(make_wcs, star_frame, star_field, n=4)
    with pytest.raises(ValueError, match="frames"):
        build_reference(frames[:2], ra0=RA, dec0=DEC, size=SIZE)
    ref = build_reference(frames, ra0=RA, dec0=DEC, size=SIZE, max_frames=3, block_rows=128)
    assert isinstance(ref, ReferenceImage) and ref.nframes == 3
    far = make_wcs(RA + 1.0, DEC, SHAPE)
    moved = [frames[0], frames[1]] + [type(f)(data=f.data, wcs=far, meta=f.meta)
                                      for f in frames[2:]]
    with pytest.raises(ValueError, match="overlap"):
        build_reference(moved, ra0=RA, dec0=DEC, size=SIZE)


def test_tile_grid_wcs_is_north_up_east_left():
    w = tile_grid_wcs(11.067073, -43.80449)
    assert list(w.wcs.crpix) == [3500.5, 3500.5]
    ra, dec = w.all_pix2world([3499.5, 3500.5, 3499.5], [3499.5, 3499.5, 3500.5], 0)
    assert ra[0] == pytest.approx(11.067073) and dec[0] == pytest.approx(-43.80449)
    assert ra[1] < ra[0]                      # +x is west
    assert dec[2] > dec[0]                    # +y is north
    scale = (dec[2] - dec[0]) * 3600
    assert scale == pytest.approx(0.11, rel=1e-6)
    with pytest.raises(ValueError, match="dec0"):
        tile_grid_wcs(0.0, 95.0)
