"""Resampling onto larger pixels integrates over them: noise averaged, PSF and data alike."""

import numpy as np
import pytest

from rapid.science.difference import difference_images
from rapid.science.image import Frame
from rapid.science.pixel_integration import integration_covariance
from rapid.science.resample import resample_frame
from tests.science.diff_fakes import add_star, make_frame, tan_wcs

SCALE = 0.11  # arcsec per destination pixel
FINE = 3      # source pixels per destination pixel along each axis


def _rotation(deg):
    t = np.radians(deg)
    return np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])


def test_blur_is_the_destination_pixel_less_the_source_pixel():
    # grids of one pixel size, in any orientation, mirrored or not: nothing to integrate
    for a in (np.eye(2), _rotation(37.0), _rotation(90.0) @ np.diag([1.0, -1.0]),
              1.03 * _rotation(10.0)):
        assert integration_covariance(a) is None
    # three source pixels per destination pixel: (9 - 1) / 12 along every axis, any rotation
    for a in (3 * np.eye(2), 3 * _rotation(25.0)):
        assert np.allclose(integration_covariance(a), np.eye(2) * 8 / 12, atol=1e-12)
    # larger along y only; along x the source pixels are the larger ones (no blur there)
    assert np.allclose(integration_covariance(np.diag([3.0, 0.5])), np.diag([8 / 12, 0.0]))


def _fine_to_coarse(shape=(96, 96)):
    """Source WCS with FINE x finer pixels covering the destination grid's sky."""
    fine_shape = (shape[0] * FINE, shape[1] * FINE)
    return tan_wcs(fine_shape, scale_arcsec=SCALE / FINE), fine_shape, tan_wcs(shape), shape


def test_finer_source_pixels_are_averaged_not_sampled():
    src_wcs, src_shape, dst_wcs, dst_shape = _fine_to_coarse()
    rng = np.random.default_rng(3)
    noise = rng.normal(0.0, 1.0, src_shape).astype(np.float32)
    out = resample_frame(Frame(data=noise, wcs=src_wcs, unc=np.ones(src_shape, np.float32)),
                         dst_wcs, dst_shape)
    # a destination pixel holds the flux of the nine source pixels it covers: per source pixel,
    # sampling would keep a standard deviation of 1 (every destination centre falls on a source
    # pixel's); averaging nine pixels gives 1/3 (a Gaussian of the same second moments 0.35)
    inner = out.data[8:-8, 8:-8] / FINE**2
    assert 0.30 < inner.std() < 0.40
    # the uncertainty said with it is the integrated one (interpolation's own smoothing of
    # the noise is left out, as for any resampling)
    assert np.median(out.unc[8:-8, 8:-8]) / FINE**2 == pytest.approx(inner.std(), rel=0.12)


def test_integrated_star_keeps_its_flux_and_matches_the_resampled_psf():
    src_wcs, src_shape, dst_wcs, dst_shape = _fine_to_coarse()
    fwhm = 2.0 * FINE  # a 2-pixel star on the destination grid
    img = np.zeros(src_shape)
    # at the source pixel that maps to destination pixel (48, 48)'s centre
    add_star(img, 48 * FINE + 1, 48 * FINE + 1, 1e4, fwhm, size=61)
    psf = np.zeros((61, 61))
    add_star(psf, 30, 30, 1.0, fwhm, size=61)
    out = resample_frame(Frame(data=img.astype(np.float32), wcs=src_wcs, psf=psf),
                         dst_wcs, dst_shape)
    assert out.data.sum() == pytest.approx(1e4, rel=2e-3)
    star = out.data[48 - 7:48 + 8, 48 - 7:48 + 8]
    c = out.psf.shape[0] // 2
    model = out.psf[c - 7:c + 8, c - 7:c + 8]
    star, model = star / star.sum(), model / model.sum()
    assert np.abs(star - model).max() < 0.01 * model.max()
    # integrated over the larger pixels: wider than the sampled star (FWHM 2 pixels)
    sigma2 = (star * (np.arange(15) - 7.0)[None, :] ** 2).sum()
    assert sigma2 == pytest.approx((2.0 / 2.3548) ** 2 + 1 / 12 - 1 / (12 * FINE**2), rel=0.03)


def test_bad_source_pixel_spoils_only_the_pixels_it_feeds():
    src_wcs, src_shape, dst_wcs, dst_shape = _fine_to_coarse()
    data = np.ones(src_shape, np.float32)
    data[150, 150] = np.nan  # inside destination pixel (50, 50)
    out = resample_frame(Frame(data=data, wcs=src_wcs), dst_wcs, dst_shape)
    assert out.mask[50, 50]
    assert 1 <= out.mask.sum() <= 9
    # each destination pixel holds the nine source pixels' flux
    assert np.allclose(out.data[~out.mask], FINE**2, atol=1e-4)


def test_reference_with_finer_pixels_is_differenced_at_its_integrated_noise():
    rng = np.random.default_rng(12)
    shape = (128, 128)
    src_wcs, src_shape, dst_wcs, _ = _fine_to_coarse(shape)
    xy = rng.uniform(12, 116, (25, 2))
    flux = np.exp(rng.uniform(np.log(3e3), np.log(3e4), 25))
    stars = [(x, y, f) for (x, y), f in zip(xy, flux)]
    sci = make_frame(rng, shape=shape, fwhm=2.5, sigma=6.0, wcs=dst_wcs,
                     stars=stars + [(70.3, 50.6, 2500.0)], with_psf=False, with_unc=False)
    # the same stars on pixels three times finer, noise 2 per pixel: a sum over a science
    # pixel's nine is as noisy as the science pixel (6)
    fine = [(FINE * x + 1, FINE * y + 1, f) for x, y, f in stars]
    ref = make_frame(rng, shape=src_shape, fwhm=2.5 * FINE, sigma=2.0, wcs=src_wcs,
                     stars=fine, with_psf=False, with_unc=False)
    result = difference_images(sci, ref)
    c = result.candidates
    assert len(c) == 1 and c["sign"][0] == 1
    assert abs(c["x"][0] - 70.3) < 0.3 and abs(c["y"][0] - 50.6) < 0.3
    # both PSFs come from 25 stars on 128x128 pixels, too few for the aperture correction: the
    # flux carries their error (pulls scatter by 2 over noise draws), which flux_err does not
    assert abs(c["flux"][0] - 2500.0) < 0.05 * 2500.0 + 3 * c["flux_err"][0]
    # a science pixel of the reference holds the flux of nine source pixels, with their summed
    # noise (three times a source pixel's 2.0), not nine times one pixel's
    assert result.meta["ref_bkg_rms"] == pytest.approx(FINE * 2.0, rel=0.1)


def test_reference_coadd_integrates_frames_with_finer_pixels():
    """The coadd's resampler prepares its frames as the difference's does: noise averaged,
    the stated uncertainty with it, flux kept, and the coadd's PSF blurred like its stars."""
    from rapid.science.reference import build_reference, tile_grid_wcs

    size = 96
    # the star on a grid pixel's centre, where the coadd's PSF is centred
    sra, sdec = tile_grid_wcs(150.0, 2.0, size=size, scale_arcsec=SCALE).all_pix2world(
        [50.0], [46.0], 0)
    fine_shape = (size * FINE, size * FINE)
    fwhm = 2.0 * FINE
    psf = np.zeros((61, 61))
    add_star(psf, 30, 30, 1.0, fwhm, size=61)
    rng = np.random.default_rng(7)
    frames = []
    for k in range(3):
        # frames a little off the grid and each other, as dithers are
        w = tan_wcs(fine_shape, ra=150.0 + k * 1e-5, dec=2.0 - k * 1e-5,
                    scale_arcsec=SCALE / FINE)
        img = rng.normal(0.0, 1.0, fine_shape)
        x, y = w.all_world2pix(sra, sdec, 0)
        add_star(img, float(x[0]), float(y[0]), 1e4, fwhm, size=61)
        frames.append(Frame(data=img.astype(np.float32), wcs=w, psf=psf,
                            unc=np.ones(fine_shape, np.float32), meta={"zptmag": 17.0}))
    ref = build_reference(frames, ra0=150.0, dec0=2.0, size=size, scale_arcsec=SCALE,
                          crop=False, block_rows=32)
    x, y = ref.frame.wcs.all_world2pix(sra, sdec, 0)
    ix, iy = int(round(float(x[0]))), int(round(float(y[0])))
    assert abs(x[0] - ix) < 1e-6 and abs(y[0] - iy) < 1e-6
    star = ref.frame.data[iy - 7:iy + 8, ix - 7:ix + 8].astype(np.float64)
    # nine source pixels to a grid pixel, whose value holds their flux: the star's is kept
    assert star.sum() == pytest.approx(1e4, rel=0.02)
    # per source pixel, the noise of three frames, each averaged over nine pixels:
    # 1/3/sqrt(3) = 0.19 (sampled: 0.58)
    sky = ref.frame.data / FINE**2
    sky[iy - 12:iy + 13, ix - 12:ix + 13] = np.nan
    inner = sky[8:-8, 8:-8]
    assert 0.15 < np.nanstd(inner) < 0.25
    assert np.nanmedian(ref.frame.unc[8:-8, 8:-8]) / FINE**2 == pytest.approx(np.nanstd(inner),
                                                                               rel=0.15)
    c = ref.frame.psf.shape[0] // 2
    model = ref.frame.psf[c - 7:c + 8, c - 7:c + 8]
    star, model = star / star.sum(), model / model.sum()
    assert np.abs(star - model).max() < 0.03 * model.max()
