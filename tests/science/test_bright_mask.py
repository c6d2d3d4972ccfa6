"""Mask growth around bad pixels and brightness-scaled halos around saturated stars."""

from __future__ import annotations

import numpy as np
import pytest

from rapid.science.bright_mask import (WING_POWER, halo_radius, mask_bright_halos, wing_at,
                                       wing_power, wing_profile)


def _psf(half: int = 12) -> np.ndarray:
    """A core plus r**-3 wings, like a diffraction-limited PSF, summing to 1."""
    yy, xx = np.mgrid[-half:half + 1, -half:half + 1]
    r = np.hypot(xx, yy)
    p = np.exp(-0.5 * (r / 0.8) ** 2) + 0.5 * (1.0 + r) ** -3
    return p / p.sum()


def _star(shape, cy, cx, flux, psf):
    """Noise-free image of a star, its profile extended beyond the stamp by the r**-3 law."""
    prof = wing_profile(psf)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    r = np.hypot(yy - cy, xx - cx)
    return flux * wing_at(prof, r)


def test_wing_profile_is_the_largest_value_per_ring():
    psf = _psf()
    prof = wing_profile(psf)
    assert len(prof) == 13
    assert prof[0] == pytest.approx(psf[12, 12])
    yy, xx = np.mgrid[-12:13, -12:13]
    assert prof[12] == pytest.approx(psf[np.rint(np.hypot(yy, xx)) == 12].max())
    assert prof[5] == pytest.approx(psf[np.rint(np.hypot(yy, xx)) == 5].max())
    # beyond the stamp the wing falls as r**-3 from the last ring
    assert wing_at(prof, np.array([24.0]))[0] == pytest.approx(prof[12] / 2**WING_POWER)


def test_halo_radius_inside_and_beyond_the_stamp():
    prof = wing_profile(_psf())
    # inside: the last ring where flux * profile exceeds sigma
    flux, sigma = 1e3, 1.0
    r = halo_radius(flux, prof, sigma)
    k = int(r - 0.5)
    assert flux * prof[k] > sigma >= flux * prof[k + 1]
    # beyond: edge * (flux * p_edge / sigma)**(1/3), and 10x the flux gives 10**(1/3) x the radius
    flux = 1e7
    r1 = halo_radius(flux, prof, sigma)
    assert r1 == pytest.approx(12 * (flux * prof[12] / sigma) ** (1 / 3))
    assert halo_radius(10 * flux, prof, sigma) / r1 == pytest.approx(10 ** (1 / 3))
    assert halo_radius(1e12, prof, sigma, max_radius=100.0) == 100.0
    assert halo_radius(0.0, prof, sigma) == 0.0


def test_faint_bad_pixel_grows_by_grow_only():
    bad = np.zeros((80, 80), bool)
    bad[40, 40] = True
    image = np.zeros(bad.shape)
    out = mask_bright_halos(bad, lambda w: image[w], grow=2, sigma=1.0, bright_snr=50.0,
                            profile=wing_profile(_psf()))
    # iterations=2 of the cross structure: a diamond of radius 2 (13 pixels)
    assert out.sum() == 13 and out[40, 42] and not out[41, 42]


@pytest.mark.parametrize("flux", [3e5, 3e6])
def test_saturated_star_gets_the_halo_of_its_fitted_flux(flux):
    psf = _psf()
    prof = wing_profile(psf)
    shape, cy, cx = (301, 301), 150.0, 150.0
    image = _star(shape, cy, cx, flux, psf)
    saturation = 2e4
    bad = image >= saturation
    assert bad.sum() > 1  # a saturated core
    image = np.where(bad, np.nan, image)
    sigma = 1.0
    out = mask_bright_halos(bad, lambda w: image[w], grow=2, sigma=sigma, bright_snr=50.0,
                            profile=prof)
    expected = halo_radius(flux, prof, sigma)
    assert expected > 12  # the halo reaches beyond the PSF stamp
    row = out[150, 150:]
    reach = int(np.flatnonzero(row)[-1])
    assert abs(reach - expected) <= 1.5
    # the residual flux * wing(r) left unmasked stays below the noise
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    r = np.hypot(yy - cy, xx - cx)
    assert np.all(flux * wing_at(prof, r[~out]) <= 1.05 * sigma)


def test_halo_of_a_star_at_the_image_edge():
    psf = _psf()
    image = _star((120, 120), 1.0, 1.0, 1e6, psf)
    bad = image >= 2e4
    out = mask_bright_halos(bad, lambda w: image[w], grow=1, sigma=1.0, bright_snr=50.0,
                            profile=wing_profile(psf))
    assert out[0, 30] and out.shape == (120, 120)
    assert not out[119, 119]


def _moffat_psf(fwhm: float, beta: float, half: int = 12) -> np.ndarray:
    alpha = fwhm / (2 * np.sqrt(2 ** (1 / beta) - 1))
    yy, xx = np.mgrid[-half:half + 1, -half:half + 1]
    p = (1 + (xx**2 + yy**2) / alpha**2) ** -beta
    return p / p.sum()


def test_wing_power_measured_on_the_stamp():
    # a diffraction-like wing keeps r**-3; a seeing-limited Moffat falls faster (r**-2beta far
    # out, ~4.3-5.2 within a 12-pixel stamp), and its halo is the smaller for it
    assert wing_power(wing_profile(_psf())) == WING_POWER
    moffat = wing_profile(_moffat_psf(4.2, 3.0))
    power = wing_power(moffat)
    assert 4.5 < power < 6.0
    flux, sigma = 1e8, 1.0
    assert halo_radius(flux, moffat, sigma, power=power) < 0.5 * halo_radius(flux, moffat, sigma)
    assert wing_power(np.array([1.0, 0.1, 0.0, 0.0, 0.0])) == WING_POWER  # nothing to fit


def test_dead_column_across_a_star_is_not_a_giant_saturated_star():
    # a dead column (masked) crosses an unsaturated star: the halo, if any, is the star's own,
    # centred on it, not a disc about the middle of the column
    psf = _moffat_psf(4.0, 2.5)
    shape = (400, 200)
    image = _star(shape, 300.0, 100.0, 2e5, psf)
    bad = np.zeros(shape, bool)
    bad[:, 100] = True
    out = mask_bright_halos(bad, lambda w: image[w], grow=1, sigma=1.0, bright_snr=50.0,
                            profile=wing_profile(psf))
    assert not out[200, 90] and not out[300, 60]  # far from the star, only the grown column
    radius = halo_radius(2e5, wing_profile(psf), 1.0, power=wing_power(wing_profile(psf)))
    assert out[300, 100 - int(radius) + 2] and not out[300, 100 - int(radius) - 3]


def test_stars_on_the_rim_of_a_large_masked_area_get_their_own_halos():
    # the right half has no reference (masked); two bright stars sit just inside its edge,
    # 300 pixels apart: each gets the halo of its own flux, and the covered half between and
    # beyond them stays unmasked (not one disc about the middle of the edge)
    psf = _moffat_psf(3.0, 2.5)
    prof = wing_profile(psf)
    shape, edge = (600, 500), 250
    flux = 3e5
    image = _star(shape, 150.0, edge - 3.0, flux, psf) + _star(shape, 450.0, edge - 3.0, flux, psf)
    bad = np.zeros(shape, bool)
    bad[:, edge:] = True
    out = mask_bright_halos(bad, lambda w: image[w], grow=1, sigma=1.0, bright_snr=50.0,
                            profile=prof)
    radius = halo_radius(flux, prof, 1.0, power=wing_power(prof))
    assert 10 < radius < 60
    for cy in (150, 450):
        assert out[cy, edge - 3 - int(radius) + 3]  # inside the star's halo
        assert not out[cy, edge - 3 - int(radius) - 4]  # beyond it
    assert not out[300, edge - 20] and not out[50, edge - 10]  # between and beyond the stars
    assert out[:, :edge].sum() < 2 * np.pi * radius**2 + 2 * shape[0]
