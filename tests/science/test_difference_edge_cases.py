"""Clear outcomes for awkward inputs: no stars, a reference covering part of the image."""

import numpy as np
import pytest
from tests.science.diff_fakes import make_frame, star_field, tan_wcs

from rapid.science.cautions import difference_cautions
from rapid.science.difference import difference_images

SHAPE = (160, 160)


def test_images_without_stars_give_a_difference_and_no_candidates():
    rng = np.random.default_rng(70)
    sci = make_frame(rng, shape=SHAPE, sigma=8.0, with_psf=False)
    ref = make_frame(rng, shape=SHAPE, sigma=4.0, with_psf=False)
    r = difference_images(sci, ref)
    assert r.meta["sci_psf_source"] == "fallback" and r.meta["ref_psf_source"] == "fallback"
    assert r.meta["nmatched"] < 5  # nothing to gain-match: flux ratio from zero points
    assert 0.9 < r.meta["scorrstd"] < 1.1
    assert len(r.candidates) <= 1
    assert np.isfinite(r.diff.data).mean() > 0.9
    # the user is told that both PSFs and the flux scale are guesses
    notes = difference_cautions(r.meta)
    assert len(notes) == 3 and sum("a Gaussian of FWHM" in n for n in notes) == 2
    assert notes[2].startswith("0 stars bright enough in both images for a flux ratio")
    assert "flux scale is taken to equal" in notes[2]


def test_image_too_sparse_for_its_psf_takes_the_other_images():
    """A science image whose stars are too faint to estimate its PSF takes the (resampled)
    reference's, not a default width: the transient's flux comes out right."""
    rng = np.random.default_rng(72)
    x, y, f = star_field(rng, SHAPE, 25, flux_range=(1500.0, 3000.0))
    transient = (80.3, 90.6, 40000.0)
    sci = make_frame(rng, shape=SHAPE, fwhm=3.0, sigma=40.0,
                     stars=list(zip(x, y, f)) + [transient], with_psf=False)
    ref = make_frame(rng, shape=SHAPE, fwhm=3.0, sigma=2.0, stars=list(zip(x, y, f)),
                     with_psf=False)
    r = difference_images(sci, ref)
    assert (r.meta["sci_psf_source"], r.meta["ref_psf_source"]) == ("reference", "estimated")
    assert abs(r.meta["sci_fwhm"] - 3.0) < 0.15
    [found] = r.candidates[r.candidates["sign"] == 1]
    assert abs(found["flux"] - transient[2]) < 3 * found["flux_err"]
    assert any("the reference image's PSF" in n for n in difference_cautions(r.meta))


def test_a_cutout_with_two_stars_measures_its_psf_on_them():
    """Two stars on a small ground-based cutout are too few for a stack, and no other image
    has more: a Moffat fitted to one of them sets the PSF, where the default 2-pixel Gaussian
    put the transient's flux at a quarter of the truth."""
    from dataclasses import replace

    from rapid.science.config import DifferenceConfig

    rng = np.random.default_rng(73)
    stars = [(45.2, 50.7, 3e5), (115.6, 120.3, 2e5)]
    transient = (80.4, 85.3, 3e3)
    sci = make_frame(rng, shape=SHAPE, fwhm=4.5, sigma=10.0, stars=stars + [transient],
                     with_psf=False)
    ref = make_frame(rng, shape=SHAPE, fwhm=3.5, sigma=5.0, stars=stars, with_psf=False)
    r = difference_images(sci, ref)
    assert (r.meta["sci_psf_source"], r.meta["ref_psf_source"]) == ("few sources",) * 2
    assert abs(r.meta["sci_fwhm"] - 4.5) < 0.5 and abs(r.meta["ref_fwhm"] - 3.5) < 0.4
    found = r.candidates[r.candidates["sign"] == 1]
    best = found[np.argmax(found["snr"])]
    assert np.hypot(best["x"] - transient[0], best["y"] - transient[1]) < 0.5
    assert best["flux"] == pytest.approx(transient[2], rel=0.1)
    assert sum("a profile of FWHM" in n for n in difference_cautions(r.meta)) == 2
    default = DifferenceConfig()
    guess = difference_images(sci, ref, config=replace(
        default, psf=replace(default.psf, few_source_snr=0.0)))
    assert guess.meta["sci_psf_source"] == "fallback"
    found = guess.candidates[guess.candidates["sign"] == 1]
    assert found["flux"][np.argmax(found["snr"])] < 0.6 * transient[2]


def test_reference_covering_half_the_image_masks_the_rest_and_finds_the_transient():
    rng = np.random.default_rng(71)
    sci_wcs = tan_wcs(SHAPE)
    # the reference's pixel 0 sits at science x = 80: it covers the right half only
    ref_wcs = tan_wcs(SHAPE, crpix_shift=(-80.0, 0.0))
    x, y, f = star_field(rng, SHAPE, 30, flux_range=(3e3, 3e4))
    ra, dec = sci_wcs.all_pix2world(x, y, 0)
    rx, ry = ref_wcs.all_world2pix(ra, dec, 0)
    transient = (120.4, 60.7, 5000.0)
    sci = make_frame(rng, shape=SHAPE, sigma=8.0, wcs=sci_wcs,
                     stars=list(zip(x, y, f)) + [transient])
    inside = (rx > -5) & (rx < SHAPE[1] + 5)
    ref = make_frame(rng, shape=SHAPE, sigma=4.0, wcs=ref_wcs,
                     stars=list(zip(rx[inside], ry[inside], f[inside])))
    r = difference_images(sci, ref)
    masked = r.diff.mask
    assert masked[:, :70].all()  # no reference there
    assert not masked[:, 100:150].all()
    pos = r.candidates[r.candidates["sign"] == 1]
    assert len(pos) >= 1
    assert np.hypot(pos["x"][0] - transient[0], pos["y"][0] - transient[1]) < 0.5
    assert (np.asarray(r.candidates["x"]) > 75).all()


def test_zero_points_stand_in_for_the_ratio_across_pixel_sizes():
    # three stars, too few for a flux ratio, on a reference of larger pixels (0.13" against
    # 0.11"): equal zero points mean equal fluxes, and only a resampling that keeps the
    # reference's fluxes (not its surface brightness, 1.4 times more per science pixel here)
    # leaves the stars out of the difference
    rng = np.random.default_rng(8)
    shape = (160, 160)
    sci_wcs, ref_wcs = tan_wcs(shape), tan_wcs(shape, scale_arcsec=0.13)
    stars = [(40.3, 50.2, 6e4), (120.7, 40.6, 5e4), (60.1, 120.4, 8e4)]
    transient = (100.2, 97.4, 4000.0)
    ra, dec = sci_wcs.all_pix2world([s[0] for s in stars], [s[1] for s in stars], 0)
    rx, ry = ref_wcs.all_world2pix(ra, dec, 0)
    sci = make_frame(rng, shape=shape, fwhm=3.0, sigma=5.0, stars=stars + [transient],
                     zptmag=25.0)
    ref = make_frame(rng, shape=shape, fwhm=2.6, sigma=3.0, wcs=ref_wcs, zptmag=25.0,
                     stars=[(x, y, s[2]) for x, y, s in zip(rx, ry, stars)])
    r = difference_images(sci, ref)
    assert r.meta["gainmatch_method"] == "zptmag" and r.meta["scalefacref"] == 1.0
    for x, y, f in stars:  # each star subtracted to a per cent or two (not 40%)
        ix, iy = int(round(x)), int(round(y))
        assert abs(np.sum(r.diff.data[iy - 6:iy + 7, ix - 6:ix + 7])) < 0.02 * f
    c = r.candidates
    assert len(c) == 1 and c["sign"][0] == 1
    assert abs(c["x"][0] - transient[0]) < 0.5 and abs(c["y"][0] - transient[1]) < 0.5
    assert abs(c["flux"][0] / transient[2] - 1) < 0.1
