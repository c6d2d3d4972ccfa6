"""Cosmic rays and hot pixels (one bright pixel of one image) against real point sources."""

import dataclasses

import numpy as np
import pytest
from tests.science.diff_fakes import make_frame, star_field

from rapid.science.config import CosmicRayConfig, DetectConfig, DifferenceConfig
from rapid.science.difference import difference_images

SHAPE = (256, 256)
# L.A.Cosmic left out, so that the test of each detection sees the science image's rays
NO_LACOSMIC = CosmicRayConfig(min_fwhm=np.inf)


def _pair(fwhm, seed=8, unc_from_data=False):
    rng = np.random.default_rng(seed)
    x, y, f = star_field(rng, SHAPE, 40, flux_range=(5e3, 5e4))
    stars = list(zip(x, y, f))
    # a transient between pixel centres and a fading source, both S/N ~ 15-25
    sci = make_frame(rng, shape=SHAPE, fwhm=fwhm, sigma=8.0,
                     stars=stars + [(100.5, 140.5, 2500.0)])
    ref = make_frame(rng, shape=SHAPE, fwhm=fwhm * 0.9, sigma=3.0,
                     stars=stars + [(180.0, 60.0, 2500.0)])
    # cosmic rays: single pixels and two- and three-pixel tracks in the science image, a hot
    # pixel in the reference; each as significant in Scorr as the sources
    data = sci.data.copy()
    for px, py, amp in ((60, 200, 900.0), (200, 200, 700.0), (30, 100, 1500.0)):
        data[py, px] += amp
    data[120, 40] += 600.0
    data[120, 41] += 600.0
    # a three-pixel L, fainter: one pixel of it is too little of the ray to tell it apart
    for py, px, amp in ((160, 200, 300.0), (160, 201, 270.0), (161, 200, 350.0)):
        data[py, px] += amp
    rdata = ref.data.copy()
    rdata[50, 120] += 400.0
    unc, runc = sci.unc, ref.unc
    if unc_from_data:
        # as a noise model of the counts (or a ramp fit's ERR) makes it: the bright pixels'
        # own Poisson noise is in their uncertainty
        unc = np.sqrt(8.0**2 + np.clip(data, 0, None)).astype(np.float32)
        runc = np.sqrt(3.0**2 + np.clip(rdata, 0, None)).astype(np.float32)
    return (dataclasses.replace(sci, data=data, unc=unc),
            dataclasses.replace(ref, data=rdata, unc=runc))


def _at(table, x, y, sign):
    k = np.flatnonzero((np.hypot(np.asarray(table["x"]) - x, np.asarray(table["y"]) - y) < 1.5)
                       & (np.asarray(table["sign"]) == sign))
    return k


@pytest.mark.parametrize("fwhm, unc_from_data", [(3.0, False), (4.5, False), (3.0, True),
                                                (2.2, True)])
def test_bright_pixels_dropped_sources_kept_with_a_well_sampled_psf(fwhm, unc_from_data):
    sci, ref = _pair(fwhm, unc_from_data=unc_from_data)
    kept = difference_images(sci, ref, config=DifferenceConfig(cosmic_rays=NO_LACOSMIC))
    everything = difference_images(sci, ref, config=DifferenceConfig(
        cosmic_rays=NO_LACOSMIC, detect=DetectConfig(pixel_score_max=np.inf)))
    c, a = kept.candidates, everything.candidates
    for x, y, sign in ((100.5, 140.5, 1), (180.0, 60.0, -1)):
        assert len(_at(c, x, y, sign)) == 1
        assert c["pixel_score"][_at(c, x, y, sign)[0]] < 0
    for x, y, sign in ((60, 200, 1), (200, 200, 1), (30, 100, 1), (40.5, 120, 1),
                       (200.3, 160.3, 1), (120, 50, -1)):
        k = _at(a, x, y, sign)
        assert len(k) == 1, (x, y)  # detected ...
        assert a["pixel_score"][k[0]] > 3.0
        assert len(_at(c, x, y, sign)) == 0  # ... and dropped
    assert kept.meta["nartifacts"] == 6
    assert everything.meta["nartifacts"] == 0
    # by default, where the PSF is wide enough, L.A.Cosmic masks the science image's rays
    # first and the test drops the reference's hot pixel; the sources stay
    default = difference_images(sci, ref)
    assert (default.meta["ncosmic"] > 0) == (fwhm >= 2.5)
    d = default.candidates
    for x, y, sign in ((100.5, 140.5, 1), (180.0, 60.0, -1)):
        assert len(_at(d, x, y, sign)) == 1
    assert len(d) == 2


def test_undersampled_psf_keeps_real_sources():
    # FWHM 1.3 pixels: a point source and a bright pixel look alike, and no source may be lost
    sci, ref = _pair(1.3, seed=9)
    c = difference_images(sci, ref).candidates
    for x, y, sign in ((100.5, 140.5, 1), (180.0, 60.0, -1)):
        assert len(_at(c, x, y, sign)) == 1


@pytest.mark.parametrize("fwhm", [1.3, 2.2])
def test_bright_transients_kept_with_an_estimated_psf(fwhm):
    # the score weighs with the background variance, so a bright source's PSF-model error is
    # measured against the sky noise: it must still look like a source, not a pixel
    rng = np.random.default_rng(5)
    x, y, f = star_field(rng, SHAPE, 60, flux_range=(5e3, 2e5))
    stars = list(zip(x, y, f))
    bright = [(70.3, 180.6, 3e4), (150.5, 90.2, 1e5), (200.8, 200.4, 3e5)]
    sci = make_frame(rng, shape=SHAPE, fwhm=fwhm, sigma=8.0, stars=stars + bright,
                     with_psf=False)
    ref = make_frame(rng, shape=SHAPE, fwhm=fwhm * 0.9, sigma=3.0, stars=stars, with_psf=False)
    c = difference_images(sci, ref).candidates
    for bx, by, _ in bright:
        k = _at(c, bx, by, 1)
        assert len(k) == 1, (bx, by)
        assert c["pixel_score"][k[0]] < 0
