"""Candidates among the spots a bright star's PSF-model error leaves, held to the noise there."""

import numpy as np
import pytest
from astropy.table import Table

from rapid.science.psf import gaussian_psf
from rapid.science.star_residuals import MIN_LEVEL, concentration, residual_levels
from tests.science.diff_fakes import add_star

SHAPE = (200, 200)
FWHM = 2.0
STAR = (100.0, 100.0)


def _scorr(seed, spots=True):
    """Unit noise, and (with ``spots``) spots of Scorr 6-8 on 8% of the ring 6-12 pixels
    about the star."""
    rng = np.random.default_rng(seed)
    s = rng.normal(0.0, 1.0, SHAPE)
    if spots:
        yy, xx = np.mgrid[0:SHAPE[0], 0:SHAPE[1]]
        ring = np.flatnonzero(((np.hypot(xx - STAR[0], yy - STAR[1]) >= 6)
                               & (np.hypot(xx - STAR[0], yy - STAR[1]) <= 12)).ravel())
        hit = rng.choice(ring, int(0.08 * ring.size), replace=False)
        s.ravel()[hit] = rng.choice([-1, 1], hit.size) * rng.uniform(6, 8, hit.size)
    return s


def _image(extended=False):
    img = np.zeros(SHAPE)
    if extended:  # a galaxy: the same light spread over a disc ten pixels across
        yy, xx = np.mgrid[0:SHAPE[0], 0:SHAPE[1]]
        img += 1e5 * np.exp(-np.hypot(xx - STAR[0], yy - STAR[1]) / 4.0) / (2 * np.pi * 16)
    else:
        add_star(img, *STAR, 1e5, FWHM)
    return img


def _levels(scorr, image, flux=100.0, at=(109.0, 100.0)):
    table = Table({"x": [at[0], 30.0], "y": [at[1], 30.0], "flux": [flux, flux]})
    sources = (np.array([STAR[0], 30.5]), np.array([STAR[1], 30.5]), np.array([1e5, 1e5]))
    return residual_levels(table, scorr, np.zeros(SHAPE, bool), sources, fwhm=FWHM,
                           image=image, psf=gaussian_psf(FWHM, size=25))


def test_a_candidate_among_a_star_s_spots_is_held_to_their_level():
    levels = _levels(_scorr(1), _image())
    # the spots' level, over the 95th percentile of plain noise; the candidate far from the
    # star (beside another, spotless one) keeps 1
    assert levels[0] > 2.0
    assert levels[1] == 1.0


def test_plain_noise_about_a_star_changes_nothing():
    for seed in range(5):
        assert np.all(_levels(_scorr(seed, spots=False), _image()) == 1.0)
    # the level computed there scatters well below MIN_LEVEL
    assert MIN_LEVEL >= 1.2


def test_only_far_brighter_point_sources_count():
    scorr = _scorr(2)
    # a transient a hundredth of the star's flux is not among its spots
    assert _levels(scorr, _image(), flux=1e3)[0] == 1.0
    # a galaxy's residual is left to the flux-noise term
    assert _levels(scorr, _image(extended=True))[0] == 1.0
    # within the star's core (1.5 FWHM) the flux-noise term weighs it already
    assert _levels(scorr, _image(), at=(102.0, 100.0))[0] == 1.0


def test_concentration_tells_a_star_from_a_galaxy():
    star = concentration(_image(), *STAR, FWHM)
    psf = gaussian_psf(FWHM, size=25)
    assert star == pytest.approx(concentration(psf, 12, 12, FWHM), rel=0.05)
    assert concentration(_image(extended=True), *STAR, FWHM) < 0.5 * star
    assert np.isnan(concentration(_image(), 2.0, 2.0, FWHM))  # off the image
