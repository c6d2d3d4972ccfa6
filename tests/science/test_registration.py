"""Registration of the reference from matched stars: the offset vote, the affine fit, and the
difference of a misregistered pair."""

import dataclasses

import numpy as np
import pytest
from tests.science.diff_fakes import make_frame, star_field, tan_wcs

from rapid.science.background import subtract_background
from rapid.science.config import DifferenceConfig, RegistrationConfig
from rapid.science.difference import difference_images
from rapid.science.gainmatch import gain_match
from rapid.science.psf import gaussian_psf
from rapid.science.registration import common_offset, fit_registration


def test_common_offset_found_among_unrelated_sources():
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 2000, (300, 2))
    # 200 of the 300 reappear 6.3, -4.1 pixels away with 0.05-pixel centroid noise; the rest
    # of the second catalog is unrelated
    other = np.vstack([xy[:200] - [6.3, -4.1] + rng.normal(0, 0.05, (200, 2)),
                       rng.uniform(0, 2000, (100, 2))])
    dx, dy = common_offset(xy, other, 16.0)
    assert dx == pytest.approx(6.3, abs=0.02) and dy == pytest.approx(-4.1, abs=0.02)
    assert common_offset(xy, rng.uniform(0, 2000, (300, 2)), 16.0) is None
    assert common_offset(xy, other, 5.0) is None  # beyond the search radius


def test_affine_fit_recovers_a_rotation_and_judges_significance():
    rng = np.random.default_rng(2)
    shape = (2000, 3000)
    x = rng.uniform(0, 3000, 200)
    y = rng.uniform(0, 2000, 200)
    # 0.01 degree about (1000, 700) plus a shift; 0.03-pixel centroid noise and 10 blunders
    th = np.radians(0.01)
    dx = 0.2 + (x - 1000) * (np.cos(th) - 1) - (y - 700) * np.sin(th)
    dy = -0.1 + (x - 1000) * np.sin(th) + (y - 700) * (np.cos(th) - 1)
    ndx = dx + rng.normal(0, 0.03, 200)
    ndy = dy + rng.normal(0, 0.03, 200)
    ndx[:10] += 3.0
    fit = fit_registration(x, y, ndx, ndy, shape)
    assert 182 <= fit.nstars <= 190  # the 10 blunders out, few good stars with them
    px, py = fit.offsets(np.array([0.0, 2999.0]), np.array([1999.0, 0.0]))
    u, v = np.array([-1000.0, 1999.0]), np.array([1299.0, -700.0])  # about (1000, 700)
    ex = 0.2 + u * (np.cos(th) - 1) - v * np.sin(th)
    assert np.allclose(px, ex, atol=0.01)
    assert fit.sigma[0] == pytest.approx(0.03, rel=0.2)
    assert fit.significant(shape, min_shift=0.05, nsigma=5)
    assert fit.largest(shape) == pytest.approx(np.max(np.hypot(*fit.offsets(
        np.array([0.0, 2999.0, 0.0, 2999.0]), np.array([0.0, 0.0, 1999.0, 1999.0])))))
    # the same stars without any misregistration: nothing to correct
    still = fit_registration(x, y, rng.normal(0, 0.03, 200), rng.normal(0, 0.03, 200), shape)
    assert not still.significant(shape, min_shift=0.05, nsigma=5)
    # few stars fit a shift only
    few = fit_registration(x[:5], y[:5], dx[:5], dy[:5], shape)
    assert few.cx[1] == few.cx[2] == 0.0 and few.nstars == 5
    # two stars that agree fit a shift, known as well as they agree; two that disagree by a
    # pixel (one mismatched) fit one too uncertain to apply; one star fits none
    sx, sy = 1.8 + rng.normal(0, 0.03, 2), 0.4 + rng.normal(0, 0.03, 2)
    two = fit_registration(x[:2], y[:2], sx, sy, shape)
    assert two.nstars == 2 and two.cx[0] == pytest.approx(np.mean(sx))
    assert two.significant(shape, min_shift=0.05, nsigma=5)
    split = fit_registration(x[:2], y[:2], sx + [0.5, -0.5], sy, shape)
    assert not split.significant(shape, min_shift=0.05, nsigma=5)
    assert fit_registration(x[:1], y[:1], dx[:1], dy[:1], shape) is None


def test_gain_match_finds_stars_beyond_the_match_radius():
    rng = np.random.default_rng(3)
    shape = (256, 256)
    x, y, f = star_field(rng, shape, 60, flux_range=(5e3, 5e4))
    sci = make_frame(rng, shape=shape, fwhm=2.5, sigma=5.0, stars=list(zip(x, y, f)))
    ref = make_frame(rng, shape=shape, fwhm=2.5, sigma=3.0, stars=list(zip(x - 4.2, y + 2.7, f)))
    (sci, rs), (ref, rr) = subtract_background(sci), subtract_background(ref)
    gm = gain_match(sci, ref, sci_rms=rs, ref_rms=rr)
    assert gm.method == "stars" and gm.nmatched >= 30
    assert gm.dx_median == pytest.approx(4.2, abs=0.05)
    assert gm.dy_median == pytest.approx(-2.7, abs=0.05)
    assert gm.star_x.shape == gm.star_dx.shape and gm.star_x.size >= 30
    assert gain_match(sci, ref, sci_rms=rs, ref_rms=rr, max_offset=0).method != "stars"


def test_offset_psf_is_not_a_misregistration():
    # the science PSF model carries the same 0.3-pixel offset as its stars: the images are
    # registered as far as ZOGY is concerned
    rng = np.random.default_rng(4)
    shape = (256, 256)
    x, y, f = star_field(rng, shape, 60, flux_range=(5e3, 5e4))
    sci = make_frame(rng, shape=shape, fwhm=2.5, sigma=5.0, stars=list(zip(x + 0.3, y, f)))
    ref = make_frame(rng, shape=shape, fwhm=2.5, sigma=3.0, stars=list(zip(x, y, f)))
    psf = gaussian_psf(2.5, size=25)
    from scipy.ndimage import shift
    sci = dataclasses.replace(sci, psf=shift(psf, (0.0, 0.3), order=3))
    (sci, rs), (ref, rr) = subtract_background(sci), subtract_background(ref)
    gm = gain_match(sci, ref, sci_rms=rs, ref_rms=rr)
    assert abs(gm.dx_median) < 0.05 and abs(gm.dy_median) < 0.05
    plain = gain_match(dataclasses.replace(sci, psf=psf), ref, sci_rms=rs, ref_rms=rr)
    assert plain.dx_median == pytest.approx(0.3, abs=0.05)


def _misregistered_pair(rot_deg, shift):
    rng = np.random.default_rng(5)
    shape = (512, 512)
    c = (shape[0] - 1) / 2
    x, y, f = star_field(rng, shape, 300, flux_range=(2e3, 3e5))
    th = np.radians(rot_deg)
    rx = c + (x - c) * np.cos(th) - (y - c) * np.sin(th) + shift[0]
    ry = c + (x - c) * np.sin(th) + (y - c) * np.cos(th) + shift[1]
    # transients 3 pixels from bright stars, where a dipole or the astrometric term hides them
    bright = np.argsort(-f)[:12]
    transients = [(x[k] + 3.0, y[k] + 1.0, 4000.0) for k in bright]
    sci = make_frame(rng, shape=shape, fwhm=3.0, sigma=10.0,
                     stars=list(zip(x, y, f)) + transients)
    ref = make_frame(rng, shape=shape, fwhm=2.6, sigma=5.0, stars=list(zip(rx, ry, f)))
    return sci, ref, transients


def _found(result, transients):
    c = result.candidates
    return sum(bool(np.any((np.abs(c["x"] - a) < 1.5) & (np.abs(c["y"] - b) < 1.5)
                           & (c["sign"] > 0))) for a, b, _ in transients)


def test_misregistered_reference_is_corrected_and_transients_near_stars_found():
    sci, ref, transients = _misregistered_pair(0.05, (-0.4, 0.2))
    r = difference_images(sci, ref)
    assert r.meta["register_nstars"] >= 100
    # science minus reference at the centre: the reference's stars sit 0.4 px right, 0.2 low
    assert r.meta["register_dx"] == pytest.approx(0.4, abs=0.03)
    assert r.meta["register_dy"] == pytest.approx(-0.2, abs=0.03)
    assert r.meta["register_max"] == pytest.approx(0.45 + 0.05 * np.pi / 180 * 362, abs=0.1)
    assert r.meta["dxrmsfin"] < 0.05 and r.meta["dyrmsfin"] < 0.05
    assert _found(r, transients) >= 11
    assert len(r.candidates) <= len(transients) + 3
    off = difference_images(sci, ref, config=DifferenceConfig(
        registration=RegistrationConfig(correct=False)))
    assert off.meta["register_max"] == 0.0 and off.meta["dxrmsfin"] > 0.2
    assert _found(off, transients) <= 4


def test_registered_pair_is_left_alone():
    sci, ref, transients = _misregistered_pair(0.0, (0.0, 0.0))
    r = difference_images(sci, ref)
    assert r.meta["register_max"] == 0.0 and r.meta["register_nstars"] == 0
    assert _found(r, transients) >= 11


def test_few_stars_still_register_a_misregistered_pair():
    # four stars, too few for a flux ratio, and a reference whose WCS is 1.2 pixels off: the
    # stars' positions still register it, rather than leaving each star a dipole
    rng = np.random.default_rng(6)
    shape = (192, 192)
    stars = [(40.3, 50.2, 4e4), (150.7, 40.6, 3e4), (60.1, 150.4, 5e4), (140.5, 140.8, 2.5e4)]
    transient = (96.2, 97.4, 3000.0)
    sci = make_frame(rng, shape=shape, fwhm=3.0, sigma=5.0, stars=stars + [transient])
    ref = make_frame(rng, shape=shape, fwhm=2.6, sigma=3.0, stars=stars,
                     wcs=tan_wcs(shape, crpix_shift=(1.0, -0.7)))
    r = difference_images(sci, ref)
    assert r.meta["gainmatch_method"] == "unity" and r.meta["register_nstars"] == 4
    assert r.meta["register_dx"] == pytest.approx(1.0, abs=0.1)
    assert r.meta["register_dy"] == pytest.approx(-0.7, abs=0.1)
    c = r.candidates
    assert len(c) == 1 and c["sign"][0] == 1
    assert abs(c["x"][0] - transient[0]) < 0.5 and abs(c["y"][0] - transient[1]) < 0.5
