"""The difference-image S/N: optimal PSF-fit flux uncertainty from D_unc and the difference PSF."""

from __future__ import annotations

import numpy as np
import pytest

from rapid.evaluation.diffsnr import difference_snr, psf_flux_sigma


def _gaussian(size=15, sigma=1.5):
    r = np.arange(size) - size // 2
    p = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma**2))
    return p / p.sum()


def test_uniform_variance_gives_sqrt_v_over_sum_p_squared():
    v = 2.5
    p = _gaussian()
    unc = np.full((64, 64), np.sqrt(v))
    sigma = psf_flux_sigma(unc, 3.0 * p, [30.0, 20.3], [31.0, 40.6])  # normalised to sum 1
    assert sigma == pytest.approx(np.full(2, np.sqrt(v / np.sum(p**2))), rel=1e-12)
    snr = difference_snr([-40.0, 40.0], unc, p, [30.0, 20.3], [31.0, 40.6])
    assert snr == pytest.approx(40.0 / np.sqrt(v / np.sum(p**2)), rel=1e-12)


def test_variance_is_weighted_pixel_by_pixel():
    p = np.zeros((3, 3))
    p[1, 1], p[1, 2] = 0.75, 0.25
    unc = np.ones((10, 10))
    unc[4, 6] = 2.0  # under the PSF's right-hand pixel when centred on (x=5, y=4)
    expected = 1 / np.sqrt(0.75**2 / 1.0 + 0.25**2 / 4.0)
    assert psf_flux_sigma(unc, p, 5, 4)[0] == pytest.approx(expected)


def test_a_masked_pixel_under_the_psf_excludes_the_transient():
    p = _gaussian()
    unc = np.ones((64, 64))
    unc[31, 30] = np.nan  # next to the peak at (x=30, y=31)
    sigma = psf_flux_sigma(unc, p, [30.0, 10.0], [31.0, 10.0])
    assert np.isnan(sigma[0])
    assert sigma[1] == pytest.approx(np.sqrt(1 / np.sum(p**2)))


def test_a_masked_pixel_in_the_far_wing_is_left_out_of_the_sum_only():
    p = _gaussian(sigma=1.0)
    unc = np.ones((64, 64))
    unc[31, 30 + 7] = np.nan  # 7 pixels off: P there is ~1e-11 of the peak
    sigma = psf_flux_sigma(unc, p, 30.0, 31.0)[0]
    keep = np.ones_like(p, bool)
    keep[7, 14] = False
    assert sigma == pytest.approx(1 / np.sqrt(np.sum(p[keep] ** 2)), rel=1e-12)


def test_core_off_the_image_excludes_and_wing_off_the_image_does_not():
    p = _gaussian(size=11, sigma=1.0)
    unc = np.ones((32, 32))
    assert np.isnan(psf_flux_sigma(unc, p, 0.0, 16.0)[0])
    assert np.isfinite(psf_flux_sigma(unc, p, 4.0, 16.0)[0])  # only the wing (x < 0) is off


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="psf"):
        psf_flux_sigma(np.ones((8, 8)), np.ones((4, 4)), 3, 3)
    with pytest.raises(ValueError, match="core_fraction"):
        psf_flux_sigma(np.ones((8, 8)), np.ones((3, 3)), 3, 3, core_fraction=0)
    with pytest.raises(ValueError, match="unc"):
        psf_flux_sigma(np.ones(8), np.ones((3, 3)), 3, 3)


def _pixel_gaussian(offsets, sigma):
    """Pixel-integrated 1-D Gaussian of a source at 0, on pixels centred at ``offsets``."""
    from scipy.special import ndtr

    return ndtr((offsets + 0.5) / sigma) - ndtr((offsets - 0.5) / sigma)


def test_an_undersampled_source_off_a_pixel_centre_has_a_lower_snr_with_a_fine_psf():
    from rapid.science.image import FinePsf

    sigma, half, factor = 0.45, 7, 4  # FWHM 1.06 px: undersampled
    native_1d = _pixel_gaussian(np.arange(-half, half + 1.0), sigma)
    native = np.outer(native_1d, native_1d)
    fine_1d = _pixel_gaussian(np.arange(-half * factor, half * factor + 1) / factor, sigma)
    fine = FinePsf.normalised(np.outer(fine_1d, fine_1d), factor)
    unc = np.ones((40, 40))
    x, y = np.array([20.0, 20.5, 12.25]), np.array([20.0, 20.5, 30.0])
    got = psf_flux_sigma(unc, native, x, y, fine=fine)
    # the exact profile of each source, integrated over the pixels of the window around it
    expected = []
    for xk, yk in zip(x, y):
        px = _pixel_gaussian(np.arange(-half, half + 1.0) - (xk - np.floor(xk + 0.5)), sigma)
        py = _pixel_gaussian(np.arange(-half, half + 1.0) - (yk - np.floor(yk + 0.5)), sigma)
        p = np.outer(py, px)
        p /= p.sum()
        expected.append(1.0 / np.sqrt(np.sum(p**2)))
    assert got == pytest.approx(expected, rel=0.01)
    # a source on a pixel corner spreads over four pixels: its S/N is well below a centred one
    assert got[1] / got[0] > 1.15
    centred = psf_flux_sigma(unc, native, x, y)
    assert centred == pytest.approx(np.full(3, centred[0]), rel=1e-12)
    snr = difference_snr(10.0 * got[1], unc, native, x[1], y[1], fine=fine)
    assert snr == pytest.approx([10.0], rel=1e-9)
