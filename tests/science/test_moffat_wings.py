"""A star-stack PSF with a fitted Moffat's wings."""

import dataclasses

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from tests.science.ground_pair import _moffat as ground_moffat
from tests.science.ground_pair import _sampled, write_ground_pair

from rapid.io.fits_frame import read_fits_frame
from rapid.science.config import DifferenceConfig, PsfConfig
from rapid.science.difference import difference_images
from rapid.science.moffat_wings import (fit_moffat, moffat_stamp, moffat_within_noise,
                                        with_moffat_wings)
from rapid.science.psf import fit_psf_fwhm, stack_noise


def _moffat(size, fwhm, beta, e=0.0, pa=0.0):
    """A pixel-integrated elliptical Moffat (the ground-based pair's), sum 1."""
    m = _sampled(ground_moffat(fwhm, beta, e, pa), 0.0, 0.0, size // 2, sub=5)
    return m / m.sum()


def test_an_elliptical_moffat_is_fitted_back():
    true = _moffat(41, 4.2, 2.5, e=0.1, pa=0.5)
    model, params = fit_moffat(true)
    assert params[6] == pytest.approx(2.5, rel=0.05)
    assert np.abs(model - true).max() < 0.01 * true.max()
    assert fit_psf_fwhm(model) == pytest.approx(fit_psf_fwhm(true), rel=0.01)
    # the profile itself, off centre
    shifted = moffat_stamp([1.0, 0.3, -0.2, -2.0, -2.0, 0.0, 3.0], 21)
    assert np.unravel_index(np.argmax(shifted), shifted.shape) == (10, 10)
    assert shifted[10, 11] > shifted[10, 9] and shifted[9, 10] > shifted[11, 10]


def test_a_noisy_stack_of_few_stars_keeps_its_wings():
    # the median of three noisy stars: weights taken from the noisy stack would favour the
    # pixels its noise pushed low and fit the wings too faint
    true = _moffat(41, 4.2, 2.5)
    rng = np.random.default_rng(3)
    betas, outer = [], []
    r = np.hypot(*(np.indices(true.shape) - 20))
    for _ in range(6):
        stamps = [true * f + rng.normal(0.0, 8.0, true.shape) for f in (2e4, 3e4, 5e4)]
        stack = np.median([s / s.sum() for s in stamps], axis=0)
        model, params = fit_moffat(stack)
        betas.append(params[6])
        outer.append(model[r > 10].sum() / true[r > 10].sum())
    assert np.mean(betas) == pytest.approx(2.5, rel=0.1)
    assert np.mean(outer) == pytest.approx(1.0, abs=0.15)


def test_lumpy_wings_are_smoothed_and_the_core_stays():
    true = _moffat(41, 4.5, 2.5)
    # a clean stack is left as it was
    assert np.abs(with_moffat_wings(true) - true).max() < 0.01 * true.max()
    # a stack of few stars: neighbours' light and noise in the wings
    rng = np.random.default_rng(1)
    stack = true + rng.normal(0, 3e-5, true.shape)
    for y, x in ((8, 30), (33, 12), (25, 36)):
        stack[y - 1:y + 2, x - 1:x + 2] += 4e-4
    stack /= stack.sum()
    out = with_moffat_wings(stack)
    assert out.sum() == pytest.approx(1.0)
    r = np.hypot(*(np.indices(true.shape) - 20))
    fwhm = fit_psf_fwhm(stack)
    outer = r > 2.5 * fwhm
    assert np.abs(out - true)[outer].max() < 0.2 * np.abs(stack - true)[outer].max()
    assert abs(out[outer].sum() / true[outer].sum() - 1) < 0.15
    # within the blend, the stack's own shape
    inner = r < 1.5 * fwhm
    ratio = out[inner] / stack[inner]
    assert ratio.max() / ratio.min() == pytest.approx(1.0, abs=1e-9)


def test_a_stamp_no_moffat_can_fit_is_kept():
    # a Gaussian: the steepest Moffat stands in for its wings, where there is next to no light
    yy, xx = np.indices((31, 31)) - 15
    gauss = np.exp(-(xx**2 + yy**2) / (2 * 1.5**2))
    gauss /= gauss.sum()
    assert np.abs(with_moffat_wings(gauss) - gauss).max() < 0.01 * gauss.max()
    flat = np.ones((21, 21))
    assert fit_moffat(np.zeros((21, 21))) is None
    assert fit_moffat(np.ones((20, 20))) is None
    out = with_moffat_wings(flat)
    assert out.shape == flat.shape and out.sum() == pytest.approx(1.0)


def _cutout(d, y0, x0, ny, nx):
    with fits.open(d / "sci.fits") as h:
        data, header = h[0].data, h[0].header
    cut_header = WCS(header)[y0:y0 + ny, x0:x0 + nx].to_header()
    for key in ("GAIN", "SATURATE", "BUNIT"):
        cut_header[key] = header[key]
    fits.writeto(d / "cut.fits", data[y0:y0 + ny, x0:x0 + nx], cut_header, overwrite=True)
    return read_fits_frame(d / "cut.fits")


def test_a_small_cutout_is_differenced_without_rings_around_its_stars(tmp_path):
    # a 256x256 cutout of the ground-based pair: its stack's wings come out too faint, and
    # every bright star of the reference left candidates a few PSF widths out
    truth = write_ground_pair(tmp_path, seed=3)
    sci, ref = _cutout(tmp_path, 300, 300, 256, 256), read_fits_frame(tmp_path / "ref.fits")
    counts = {}
    for width in (0.0, 2.5):
        config = DifferenceConfig(psf=dataclasses.replace(PsfConfig(),
                                                          moffat_wings_from_fwhm=width))
        c = difference_images(sci, ref, config=config).candidates
        x, y = np.asarray(c["x"]) + 300, np.asarray(c["y"]) + 300
        real = ((np.hypot(x[:, None] - truth.tx, y[:, None] - truth.ty).min(axis=1) < 2)
                | (np.hypot(x[:, None] - truth.vx, y[:, None] - truth.vy).min(axis=1) < 2))
        counts[width] = (int((~real).sum()), int(real.sum()))
    assert counts[0.0][0] >= 5
    assert counts[2.5][0] <= 1
    assert counts[2.5][1] >= counts[0.0][1]


def _noisy_stamps(true, fluxes, sigma, rng):
    return np.array([(s := true * f + rng.normal(0.0, sigma, true.shape)) / s.sum()
                     for f in fluxes])


def test_stack_noise_is_the_median_stacks_own():
    # 20 stamps with white noise: the median of n has variance (pi / 2) sigma^2 / n per pixel
    true = _moffat(25, 4.2, 2.5)
    rng = np.random.default_rng(8)
    stamps = _noisy_stamps(true, np.full(20, 1e4), 5.0, rng)
    expected = np.pi / 2 * (5.0 / 1e4) ** 2 / 20
    assert stack_noise(stamps) == pytest.approx(expected, rel=0.25)
    assert np.isnan(stack_noise(stamps[:1]))


def test_a_few_stars_give_the_moffat_whole_and_many_keep_their_stack():
    true = _moffat(61, 4.2, 2.5, e=0.1, pa=0.5)
    narrow = true[18:43, 18:43] / true[18:43, 18:43].sum()
    rng = np.random.default_rng(4)
    # five stars at S/N 40-200: their stack is off the truth by several per cent in its core,
    # the Moffat fitted to it, carried out to 41 pixels, by much less
    few = _noisy_stamps(narrow, [3e4, 1.2e4, 8e3, 7e3, 6e3], 8.0, rng)
    smooth = moffat_within_noise(few, 41)
    assert smooth is not None and smooth.shape == (41, 41)
    assert smooth.sum() == pytest.approx(1.0)
    truth41 = true[10:51, 10:51] / true[10:51, 10:51].sum()
    stack = np.pad(np.median(few, axis=0), 8)

    def error(psf):
        return np.sqrt(np.sum((psf / psf.sum() - truth41) ** 2) / np.sum(truth41**2))

    assert error(smooth) < 0.5 * error(stack)
    # the Moffat is centred on its stamp, as the stars were
    assert np.unravel_index(np.argmax(smooth), smooth.shape) == (20, 20)
    # fifty bright stars of a PSF that is no Moffat (a Gaussian core on a broad halo): the
    # stack tells the two apart and is kept
    yy, xx = np.indices((25, 25)) - 12
    r2 = xx**2 + yy**2
    odd = np.exp(-r2 / (2 * 1.6**2)) + 0.02 * np.exp(-r2 / (2 * 6.0**2))
    many = _noisy_stamps(odd / odd.sum(), np.full(50, 3e5), 8.0, rng)
    assert moffat_within_noise(many, 41) is None
    # too few stamps for two halves and the minimum
    assert moffat_within_noise(few[:2], 41) is None
    with pytest.raises(ValueError):
        moffat_within_noise(few, 40)


def _few_source_field():
    """A star (FWHM 3), a brighter and wider galaxy (FWHM 7) and a hot pixel, as found."""
    from rapid.science.psf import find_psf_stars
    from tests.science.diff_fakes import add_star, make_frame

    rng = np.random.default_rng(9)
    frame = make_frame(rng, shape=(160, 160), fwhm=3.0, sigma=5.0,
                       stars=[(40.3, 45.6, 2e5)], with_psf=False)
    data = frame.data.astype(np.float64)
    add_star(data, 110.2, 100.7, 4e5, 7.0, size=41)
    data[130, 30] += 5e4
    return find_psf_stars(dataclasses.replace(frame, data=data.astype(np.float32)),
                          min_snr=20.0)


def test_few_source_psf_takes_the_narrowest_source_that_is_no_hot_pixel():
    from rapid.science.moffat_wings import few_source_psf

    psf = few_source_psf(_few_source_field(), 25, span_fwhm=8.0, max_size=61)
    assert psf is not None and psf.shape == (25, 25) and psf.sum() == pytest.approx(1.0)
    assert fit_psf_fwhm(psf) == pytest.approx(3.0, abs=0.3)


def test_few_source_psf_is_the_sources_gaussian_where_no_moffat_converges(monkeypatch):
    import rapid.science.moffat_wings as mw

    stars = _few_source_field()
    monkeypatch.setattr(mw, "fit_moffat", lambda stamp: None)
    psf = mw.few_source_psf(stars, 25, span_fwhm=8.0, max_size=61)
    assert psf.shape[0] >= 25 and fit_psf_fwhm(psf) == pytest.approx(3.0, abs=0.3)
    # a Gaussian: its light beyond 2 FWHM is nil, where a Moffat's is not
    h = psf.shape[0] // 2
    r = np.hypot(*np.mgrid[-h:h + 1, -h:h + 1])
    assert psf[r > 6].sum() < 1e-3
