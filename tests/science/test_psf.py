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


def test_galaxies_and_cosmic_rays_among_bright_sources_stay_out_of_the_psf():
    # a high-latitude field: 5 stars (FWHM 3), 7 brighter galaxies (round, FWHM 7) and 3
    # cosmic rays; a median stack of them all is a galaxy's width
    from tests.science.diff_fakes import add_star

    rng = np.random.default_rng(6)
    shape = (320, 320)
    pos = [(x, y) for x in range(30, 300, 60) for y in range(30, 300, 60)]
    rng.shuffle(pos)
    img = rng.normal(0.0, 5.0, shape)
    for k, (x, y) in enumerate(pos[:15]):
        x, y = x + rng.uniform(-0.5, 0.5), y + rng.uniform(-0.5, 0.5)
        if k < 5:
            add_star(img, x, y, rng.uniform(3e4, 6e4), 3.0)
        elif k < 12:
            add_star(img, x, y, rng.uniform(6e4, 1.2e5), 7.0, size=41)
        else:
            img[int(y), int(x)] += 2e4
    frame = make_frame(rng, shape=shape, sigma=0.0, with_psf=False)
    frame.data[:] = img
    psf = estimate_psf(frame, size=25)
    assert fit_psf_fwhm(psf) == pytest.approx(3.0, rel=0.08)


def test_estimate_psf_without_stars_raises():
    rng = np.random.default_rng(5)
    frame = make_frame(rng, shape=(128, 128), with_psf=False)
    with pytest.raises(ValueError):
        estimate_psf(frame)
