import dataclasses

import numpy as np
import pytest
from tests.science.diff_fakes import make_frame, star_field

from rapid.science.background import subtract_background
from rapid.science.gainmatch import gain_match
from rapid.science.psf import gaussian_psf

SHAPE = (192, 192)


def _pair(seed, *, scale=1.0, shift=(0.0, 0.0), fwhm_ref=2.5, nstars=40, **kw):
    rng = np.random.default_rng(seed)
    x, y, f = star_field(rng, SHAPE, nstars, flux_range=(5e3, 5e4))
    sci = make_frame(rng, shape=SHAPE, fwhm=2.5, sigma=5.0, stars=list(zip(x, y, f)),
                     scale=scale, **kw)
    ref = make_frame(rng, shape=SHAPE, fwhm=fwhm_ref, sigma=3.0,
                     stars=list(zip(x - shift[0], y - shift[1], f)), **kw)
    (sci, rs), (ref, rr) = subtract_background(sci), subtract_background(ref)
    return sci, ref, rs, rr


def test_flux_ratio_recovered_within_two_percent_with_different_psfs():
    sci, ref, rs, rr = _pair(10, scale=1.37, fwhm_ref=3.5)
    gm = gain_match(sci, ref, sci_rms=rs, ref_rms=rr)
    assert gm.method == "stars" and not gm.flagged
    assert gm.nmatched >= 15
    assert gm.flux_ratio == pytest.approx(1.37, rel=0.02)
    assert 0 < gm.flux_ratio_err < 0.02


def test_residual_offset_measured():
    sci, ref, rs, rr = _pair(11, shift=(0.4, -0.25))
    gm = gain_match(sci, ref, sci_rms=rs, ref_rms=rr)
    assert gm.dx_median == pytest.approx(0.4, abs=0.05)
    assert gm.dy_median == pytest.approx(-0.25, abs=0.05)
    assert gm.dx_rms == pytest.approx(0.4, abs=0.07)
    assert gm.flux_ratio == pytest.approx(1.0, rel=0.02)


def test_no_stars_falls_back_to_zero_points_then_unity():
    rng = np.random.default_rng(12)
    sci, _ = subtract_background(make_frame(rng, shape=SHAPE, zptmag=26.0))
    ref, _ = subtract_background(make_frame(rng, shape=SHAPE, zptmag=25.0))
    gm = gain_match(sci, ref)
    assert gm.method == "zptmag" and gm.flagged and gm.nmatched == 0
    assert gm.flux_ratio == pytest.approx(10 ** 0.4)
    assert np.isnan(gm.flux_ratio_err)
    sci.meta.pop("zptmag")
    gm = gain_match(sci, ref)
    assert gm.method == "unity" and gm.flux_ratio == 1.0


def test_few_stars_give_no_ratio_but_their_offsets():
    # four stars: too few for a ratio, enough to say where the reference's lie
    sci, ref, rs, rr = _pair(14, shift=(0.6, -0.4), nstars=4)
    gm = gain_match(sci, ref, sci_rms=rs, ref_rms=rr)
    assert gm.method == "unity" and gm.flux_ratio == 1.0
    assert gm.star_x.size == 4 and gm.star_dx.size == 4
    assert gm.dx_median == pytest.approx(0.6, abs=0.1)
    assert gm.dy_median == pytest.approx(-0.4, abs=0.1)


def test_saturated_stars_are_not_used():
    sci, ref, rs, rr = _pair(13, scale=1.2, saturation=2000.0)
    gm = gain_match(sci, ref, sci_rms=rs, ref_rms=rr)
    # clipped (saturated) stars would pull the ratio towards 1
    if gm.method == "stars":
        assert gm.flux_ratio == pytest.approx(1.2, rel=0.03)


def test_shape_mismatch_is_rejected():
    rng = np.random.default_rng(14)
    a = make_frame(rng, shape=(64, 64))
    b = make_frame(rng, shape=(64, 80))
    with pytest.raises(ValueError, match="resample"):
        gain_match(a, b)


def test_without_psfs_the_ratio_comes_from_apertures():
    sci, ref, rs, rr = _pair(14, scale=0.8)
    sci, ref = (dataclasses.replace(f, psf=None) for f in (sci, ref))
    gm = gain_match(sci, ref, sci_rms=rs, ref_rms=rr)
    assert gm.method == "stars" and gm.nmatched >= 15
    assert gm.flux_ratio == pytest.approx(0.8, rel=0.02)


def test_a_field_of_unblended_stars_keeps_aperture_fluxes_when_a_psf_model_is_wrong():
    # the science PSF model twice too wide, as a handful of stars on a cutout can make it: the
    # images brought to one PSF would then differ in profile, apertures of twice the FWHM
    # hardly care
    sci, ref, rs, rr = _pair(15, scale=1.3)
    sci = dataclasses.replace(sci, psf=gaussian_psf(5.0))
    gm = gain_match(sci, ref, sci_rms=rs, ref_rms=rr)
    assert gm.method == "stars" and gm.nmatched >= 15
    assert gm.flux_ratio == pytest.approx(1.3, rel=0.02)



def test_a_deblended_star_counts_unless_its_neighbours_are_bright():
    # sep flags as deblended every star a deep image's isophotes join to a faint neighbour;
    # what biases an aperture flux is the neighbours' light, 1% of the star's or more
    from rapid.science.gainmatch import _unblended

    xy = np.array([[50.0, 50.0], [54.0, 50.0], [120.0, 80.0], [126.0, 80.0], [20.0, 150.0],
                   [170.0, 20.0]])
    flux = np.array([1e5, 300.0, 1e5, 5e3, 1e5, 1e5])
    merged = np.array([1, 1, 1, 1, 0, 2], dtype=np.int16)  # 2: truncated at the image edge
    aperture = np.array([0, 0, 0, 0, 16, 0])  # 16: the aperture leaves the image
    ok = _unblended(xy, flux, aperture, merged, reach=7.5)
    assert ok.tolist() == [True, False, False, False, False, False]
