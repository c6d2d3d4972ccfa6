"""Aperture correction of difference-image PSF fluxes, measured on the image's stars."""

import numpy as np
import pytest
from scipy.spatial import cKDTree

from rapid.science.aperture_correction import (combine_ratios, point_source_locus,
                                               stamp_total, star_flux_ratios)
from rapid.science.config import DifferenceConfig, PhotometryConfig
from rapid.science.difference import difference_images
from rapid.science.photometry import measure_candidates
from rapid.science.psf import gaussian_psf
from tests.science.diff_fakes import add_star, make_frame, star_field

IDENTITY = np.ones((1, 1))


def _fit(img, unc, pd, rows, fine):
    return measure_candidates(img, unc, pd, rows, aperture_radii=(), max_shift=1.0,
                              psf_fine=fine)


def _star_image(seed, fwhm=2.5, shape=(400, 400), nstars=80, sigma=5.0, fluxes=False):
    rng = np.random.default_rng(seed)
    x, y, f = star_field(rng, shape, nstars=nstars, flux_range=(5e3, 1e5), edge=20)
    img = np.zeros(shape)
    for xs, ys, fs in zip(x, y, f):
        add_star(img, xs, ys, fs, fwhm)
    var = sigma**2 + img  # gain 1
    img = img + rng.normal(0.0, 1.0, shape) * np.sqrt(var)
    return (img, var, x, y, f) if fluxes else (img, var, x, y)


@pytest.mark.parametrize("fwhm", [1.5, 2.5, 4.0])
def test_stamp_total_passes_over_faint_neighbours_in_the_rings(fwhm):
    """The star's light counted over a 25-pixel stamp: exact alone; with three faint
    neighbours, each holding 3% of its light, nearly so, where the plain sum takes in 9%; and
    a background left under it is measured at the stamp's edge and taken off."""
    rng = np.random.default_rng(int(fwhm * 10))
    dx, dy = rng.uniform(-0.5, 0.5, 2)
    star = np.zeros((25, 25))
    add_star(star, 12 + dx, 12 + dy, 1e4, fwhm)
    model = gaussian_psf(fwhm, size=25)
    ones = np.ones_like(star)
    for psf in (None, model):
        total, error, level = stamp_total(star, ones, dx, dy, 1.5 * fwhm, psf)
        assert total == pytest.approx(star.sum(), rel=0.005) and abs(level) < 1e-3
        total, _, level = stamp_total(star + 7.0, ones, dx, dy, 1.5 * fwhm, psf)
        assert total == pytest.approx(star.sum(), rel=0.005)
        assert level == pytest.approx(7.0, abs=0.05)
    yy, xx = np.mgrid[-12:13, -12:13]
    core = int(np.sum(np.hypot(xx - dx, yy - dy) <= 1.5 * fwhm))
    frame = 625 - 17 * 17
    assert error == pytest.approx(np.sqrt(core + np.pi / 2 * (625 - core)
                                          + np.pi / 2 * 625**2 / frame))
    crowded = star.copy()
    for angle in rng.uniform(0, 2 * np.pi, 3):
        r = rng.uniform(2 * fwhm, 11)
        add_star(crowded, 12 + dx + r * np.cos(angle), 12 + dy + r * np.sin(angle), 300.0, fwhm)
    assert crowded.sum() / star.sum() > 1.08
    total, _, _ = stamp_total(crowded, ones, dx, dy, 1.5 * fwhm, model)
    assert total / star.sum() == pytest.approx(1.0, abs=0.03)


def test_stamp_total_counts_the_diffraction_spikes_its_model_holds():
    """Spikes fill a small arc of each ring, as a neighbour does: the model says they are the
    star's. Without it they would be passed over."""
    star = np.zeros((25, 25))
    add_star(star, 12.0, 12.0, 9e3, 1.5)
    spikes = np.zeros((25, 25))
    spikes[12, :] = spikes[:, 12] = 1.0
    spikes[12, 12] = 0.0
    star += 1e3 * spikes / spikes.sum()  # 10% of the light in four spikes
    ones = np.ones_like(star)
    with_model, _, _ = stamp_total(star, ones, 0.0, 0.0, 2.25, star / star.sum())
    assert with_model == pytest.approx(1e4, rel=0.002)
    round_rings, _, _ = stamp_total(star, ones, 0.0, 0.0, 2.25)
    assert round_rings < 0.95e4


def test_star_ratios_predict_the_flux_bias_of_a_wrong_psf():
    img, var, x, y = _star_image(1)
    bad = np.zeros(img.shape, dtype=bool)

    def correction(model):
        r, e = star_flux_ratios(img, var, bad, x, y, stamp=25, kernel=IDENTITY, pd=model,
                                pd_fine=None, measure=_fit)
        assert r.size == 60  # the most precise of the 80
        return combine_ratios(r, e)

    # the true PSF: nothing to correct
    right = correction(gaussian_psf(2.5, size=25))
    assert right.factor == pytest.approx(1.0, abs=0.005)
    # a model 20% too wide fits every point source high by the same factor: noiseless
    # sources at random sub-pixel positions, fitted with it, say how much
    wide = gaussian_psf(3.0, size=25)
    rng = np.random.default_rng(5)
    canvas = np.zeros((200, 200))
    px, py = 20 + 40 * (np.arange(16) % 4) + rng.uniform(0, 1, 16), \
        20 + 40 * (np.arange(16) // 4) + rng.uniform(0, 1, 16)
    for xs, ys in zip(px, py):
        add_star(canvas, xs, ys, 1000.0, 2.5)
    from astropy.table import Table
    fitted = _fit(canvas, np.full(canvas.shape, 1e-6), wide,
                  Table({"x": px, "y": py, "sign": np.ones(16, np.int16)}), None)["flux"]
    bias = float(np.mean(fitted)) / 1000.0
    assert bias > 1.1
    measured = correction(wide)
    assert measured.factor == pytest.approx(bias, abs=0.01)
    assert measured.error < 0.005 and measured.nstars >= 30


def test_stars_with_a_neighbour_in_their_stamp_are_left_out():
    """In a crowded field most stamps hold a neighbour whose light is in the stamp's sum and not
    in the star's fit: those stars would make the correction, not the PSF."""
    img, var, x, y, f = _star_image(3, shape=(300, 300), nstars=150, fluxes=True)
    bad = np.zeros(img.shape, dtype=bool)
    model = gaussian_psf(2.5, size=25)
    kw = dict(stamp=25, kernel=IDENTITY, pd=model, pd_fine=None, measure=_fit)
    crowded, _ = star_flux_ratios(img, var, bad, x, y, **kw)
    # 150 stars on 300 x 300: most stamps hold another; the rings' medians pass over most of
    # them, but a neighbour within the core or filling a ring is counted
    assert np.mean(crowded) < 0.97 and np.sum(crowded < 0.95) >= 10
    # the detections passed as neighbours hold each star itself, as detected in both images
    # (left alone), the others, and faint sources (under 1% of the star) that may stay near it
    faint = np.full(len(x), 0.005 * f.min())
    found = (np.concatenate([x, x + 0.4, x + 6.0]), np.concatenate([y, y - 0.3, y]),
             np.concatenate([f, f, faint]))
    r, e = star_flux_ratios(img, var, bad, x, y, neighbours=found, **kw)
    reach = 25 // 2 + 3 * 2.5  # the stamp and three FWHM
    alone = sum(np.sum((np.abs(x - a) <= reach) & (np.abs(y - b) <= reach)
                       & (f > 0.01 * g)) == 1 for a, b, g in zip(x, y, f))
    assert 5 <= r.size <= alone < 40
    assert np.all(np.abs(r - 1.0) < 5 * e)
    assert combine_ratios(r, e).factor == pytest.approx(1.0, abs=0.01)


def test_combined_ratio_clips_what_is_not_a_star():
    rng = np.random.default_rng(2)
    ratio = rng.normal(1.04, 0.01, 30)
    error = np.full(30, 0.01)
    # compact galaxies: their fits hold less of their light, with errors as small as the stars'
    ratio[:4] = 0.85
    c = combine_ratios(ratio, error)
    assert c.factor == pytest.approx(1.04, abs=0.006)
    assert c.nstars == 26
    assert combine_ratios(ratio[:4], error[:4]) is None  # fewer than 5


def test_galaxies_outnumbering_the_stars_do_not_set_the_correction():
    """Every loss of a fit lowers a ratio: the stars are the group at the top, however few."""
    rng = np.random.default_rng(4)
    stars = rng.normal(1.04, 0.01, 6)
    # bright galaxies: many, spread, each more precise than any star
    galaxies = np.array([0.27, 0.30, 0.39, 0.39, 0.41, 0.45, 0.58, 0.66, 0.80])
    ratio = np.concatenate([galaxies, stars])
    error = np.concatenate([np.full(9, 0.005), np.full(6, 0.015)])
    c = combine_ratios(ratio, error)
    assert c.nstars == 6
    assert c.factor == pytest.approx(float(np.mean(stars)), abs=1e-9)
    # within EXTENDED_DEFICIT of the top group a galaxy is not told from the stars (clipping
    # may still drop it); below it, it is
    point = point_source_locus(np.append(ratio, [0.96, 0.90]), np.append(error, [0.005] * 2))
    assert point.sum() == 7 and point[-2] and not point[-1]
    # with a sixth of them stars, the top quarter is galaxies: no correction rather than theirs
    assert combine_ratios(np.concatenate([galaxies, galaxies[-3:], stars[:3]]),
                          np.concatenate([np.full(12, 0.005), np.full(3, 0.015)])) is None


def _undersampled_pair(seed, with_psf):
    shape = (400, 400)
    rng = np.random.default_rng(seed)
    xs, ys, fs = star_field(rng, shape, nstars=90, flux_range=(3000.0, 60000.0), edge=20)
    tx, ty = rng.uniform(30, shape[1] - 30, 40), rng.uniform(30, shape[0] - 30, 40)
    stars = list(zip(xs, ys, fs))
    transients = list(zip(tx, ty, np.full(40, 1500.0)))
    sci = make_frame(rng, shape=shape, fwhm=1.3, sigma=5.0, stars=stars + transients,
                     with_psf=with_psf)
    ref = make_frame(rng, shape=shape, fwhm=1.4, sigma=2.5, stars=stars, with_psf=with_psf)
    return sci, ref, tx, ty


def _transient_flux_ratio(result, tx, ty):
    c = result.candidates[result.candidates["sign"] > 0]
    d, j = cKDTree(np.column_stack([c["x"], c["y"]])).query(np.column_stack([tx, ty]))
    found = d < 1.5
    assert found.sum() >= 38
    return float(np.median(np.asarray(c["flux"])[j[found]] / 1500.0))


def test_difference_corrects_fluxes_measured_with_an_estimated_psf():
    sci, ref, tx, ty = _undersampled_pair(3, with_psf=False)
    off = DifferenceConfig(photometry=PhotometryConfig(aperture_correction=False))
    plain = difference_images(sci, ref, config=off)
    corrected = difference_images(sci, ref)
    # a stacked undersampled PSF comes out too wide: fluxes > 3% high; corrected within 2%
    assert plain.meta["sci_psf_source"] == "estimated"
    assert _transient_flux_ratio(plain, tx, ty) > 1.03
    assert _transient_flux_ratio(corrected, tx, ty) == pytest.approx(1.0, abs=0.02)
    assert corrected.meta["apcorr_sci"] > 1.02 and np.isnan(plain.meta["apcorr_sci"])
    assert np.allclose(plain.candidates["snr"], corrected.candidates["snr"], rtol=1e-5)


def test_psf_files_define_the_flux_scale_unless_interpolated_undersampled():
    from dataclasses import replace

    from tests.science.test_phases import undersampled

    sci, ref, tx, ty = _undersampled_pair(3, with_psf=True)
    off = DifferenceConfig(photometry=PhotometryConfig(aperture_correction=False))
    # FWHM 1.3 at pixel centres only: the fits interpolate it between them, and the stars
    # measure what that does to every source
    plain = difference_images(sci, ref, config=off)
    corrected = difference_images(sci, ref)
    assert np.isfinite(corrected.meta["apcorr_sci"]) and np.isnan(plain.meta["apcorr_sci"])
    assert corrected.meta["apcorr_sci"] != pytest.approx(1.0, abs=1e-6)
    assert _transient_flux_ratio(corrected, tx, ty) == pytest.approx(1.0, abs=0.015)
    assert _transient_flux_ratio(plain, tx, ty) == pytest.approx(1.0, abs=0.015)
    # with its finer sampling the file's PSF is exact between pixel centres and sets the scale
    native, fine = undersampled(1.3 / 2.3548200450309493, half=12)
    sci = replace(sci, psf=native, psf_fine=fine)
    result = difference_images(sci, ref)
    assert np.isnan(result.meta["apcorr_sci"]) and np.isnan(result.meta["apcorr_ref"])
    assert np.allclose(result.candidates["flux"],
                       difference_images(sci, ref, config=off).candidates["flux"], rtol=1e-5)
