import numpy as np
import pytest
from tests.science.diff_fakes import make_frame, star_field

from rapid.science.psf import (estimate_psf, fit_psf_fwhm, gaussian_psf, pad_psf, recentre_psf,
                               resize_psf)


def test_gaussian_psf_fwhm_and_normalisation():
    p = gaussian_psf(3.0, size=25)
    assert p.shape == (25, 25) and p.sum() == pytest.approx(1.0)
    assert fit_psf_fwhm(p) == pytest.approx(3.0, rel=0.05)
    assert np.unravel_index(p.argmax(), p.shape) == (12, 12)


def test_pad_puts_centre_at_origin_and_resize_keeps_centre():
    p = gaussian_psf(2.0, size=15)
    big = pad_psf(p, (64, 70))
    assert big.shape == (64, 70)
    assert np.unravel_index(big.argmax(), big.shape) == (0, 0)
    assert big.sum() == pytest.approx(1.0)
    assert big[0, 1] == pytest.approx(big[0, -1])
    r = resize_psf(p, 31)
    assert r.shape == (31, 31) and r[15, 15] == pytest.approx(p[7, 7] / p.sum())
    with pytest.raises(ValueError, match="size"):
        resize_psf(p, 30)


def test_recentre_moves_centroid_to_central_pixel():
    from scipy import ndimage

    p = ndimage.shift(gaussian_psf(3.0, size=25), (0.4, -0.3), order=3)
    c = recentre_psf(p)
    cy, cx = ndimage.center_of_mass(c)
    assert abs(cy - 12) < 0.01 and abs(cx - 12) < 0.01


def test_estimate_psf_from_stars_matches_truth():
    rng = np.random.default_rng(4)
    shape = (256, 256)
    x, y, f = star_field(rng, shape, 25, flux_range=(2e4, 1e5), edge=20)
    frame = make_frame(rng, shape=shape, fwhm=3.0, sigma=5.0, stars=list(zip(x, y, f)),
                       with_psf=False)
    psf = estimate_psf(frame, size=25)
    assert psf.shape == (25, 25) and psf.sum() == pytest.approx(1.0)
    assert fit_psf_fwhm(psf) == pytest.approx(3.0, rel=0.08)
    assert np.abs(psf - gaussian_psf(3.0, size=25)).max() < 0.1 * psf.max()


def _sources_on_a_grid(seed, side, step, nsources, place):
    """A frame of noise (sigma 5) with ``nsources`` sources at shuffled nodes of a grid
    ``step`` pixels apart, each drawn by ``place(img, k, x, y, rng)`` for the k-th source."""
    rng = np.random.default_rng(seed)
    pos = [(x, y) for x in range(step // 2, side - step // 2, step)
           for y in range(step // 2, side - step // 2, step)]
    rng.shuffle(pos)
    img = rng.normal(0.0, 5.0, (side, side))
    for k, (x, y) in enumerate(pos[:nsources]):
        place(img, k, x + rng.uniform(-0.5, 0.5), y + rng.uniform(-0.5, 0.5), rng)
    frame = make_frame(rng, shape=(side, side), sigma=0.0, with_psf=False)
    frame.data[:] = img
    return frame


def test_galaxies_and_cosmic_rays_among_bright_sources_stay_out_of_the_psf():
    # a high-latitude field: 5 stars (FWHM 3), 7 brighter galaxies (round, FWHM 7) and 3
    # cosmic rays; a median stack of them all is a galaxy's width
    from tests.science.diff_fakes import add_star

    def place(img, k, x, y, rng):
        if k < 5:
            add_star(img, x, y, rng.uniform(3e4, 6e4), 3.0)
        elif k < 12:
            add_star(img, x, y, rng.uniform(6e4, 1.2e5), 7.0, size=41)
        else:
            img[int(y), int(x)] += 2e4

    frame = _sources_on_a_grid(6, 320, 60, 15, place)
    assert fit_psf_fwhm(estimate_psf(frame, size=25)) == pytest.approx(3.0, rel=0.08)


def test_a_few_stars_among_many_galaxies_set_the_psf():
    """At high latitude bright galaxies far outnumber the stars, and many share a size: 12
    stars (FWHM 3) among 100 galaxies (FWHM 4-12), 20 of them compact ellipticals (a
    star-like core in a broad halo). The stars are the smallest sources sharing one size."""
    from tests.science.diff_fakes import add_star

    def place(img, k, x, y, rng):
        if k < 12:
            add_star(img, x, y, rng.uniform(3e4, 6e4), 3.0)
        elif k < 32:
            add_star(img, x, y, rng.uniform(1e4, 2e4), 3.0)
            add_star(img, x, y, rng.uniform(4e4, 8e4), rng.uniform(7.0, 10.0), size=41)
        else:
            fwhm = float(np.exp(rng.uniform(np.log(4.0), np.log(12.0))))
            add_star(img, x, y, rng.uniform(5e4, 2e5), fwhm, size=61)

    frame = _sources_on_a_grid(8, 512, 40, 112, place)
    assert fit_psf_fwhm(estimate_psf(frame, size=25)) == pytest.approx(3.0, rel=0.08)


def test_point_like_tells_stars_from_galaxies():
    from rapid.science.psf import point_like
    from tests.science.diff_fakes import add_star

    img = np.random.default_rng(9).normal(0.0, 1.0, (120, 120))
    add_star(img, 30.3, 40.6, 5e3, 3.0)
    add_star(img, 80.1, 60.2, 5e3, 6.0, size=41)       # a galaxy twice the PSF's width
    add_star(img, 40.7, 90.4, 2e3, 3.0)                # a compact elliptical: a star's core
    add_star(img, 40.7, 90.4, 6e3, 9.0, size=41)       # in a broad halo
    near = point_like(img, np.zeros(img.shape, bool), [30.3, 80.1, 40.7], [40.6, 60.2, 90.4],
                      gaussian_psf(3.0))
    assert near.tolist() == [True, False, False]


def test_estimate_psf_without_stars_raises():
    rng = np.random.default_rng(5)
    frame = make_frame(rng, shape=(128, 128), with_psf=False)
    with pytest.raises(ValueError):
        estimate_psf(frame)
