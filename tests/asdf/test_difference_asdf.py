"""Roman L2 ASDF epochs of one pointing go through the science steps: a reference coadd of the
three earlier epochs, then ZOGY against the last, which finds the transient and little else."""

from __future__ import annotations

import numpy as np
import pytest

from rapid.io import read_frame
from rapid.science.image import Frame
from tests.asdf.conftest import TRANSIENT_MAG, TRANSIENT_XY

REFERENCE_ZERO_POINT = 17.0


@pytest.fixture(scope="module")
def difference(roman_survey):
    from rapid.science.difference import difference_images
    from rapid.science.reference import build_reference

    frames = [read_frame(path) for path in roman_survey.paths]
    sci = frames[-1]
    ra0, dec0 = roman_survey.cutout(99.5, 99.5)
    built = build_reference(frames[:-1], ra0=float(ra0), dec0=float(dec0), size=260,
                            zero_point=REFERENCE_ZERO_POINT)
    ref = Frame(data=built.frame.data, wcs=built.frame.wcs, psf=built.frame.psf,
                unc=built.frame.unc, mask=built.coverage < 2,
                meta={**built.frame.meta, "zptmag": REFERENCE_ZERO_POINT})
    return sci, built, difference_images(sci, ref)


@pytest.mark.slow
def test_reference_uses_the_three_earlier_epochs(difference):
    _, built, _ = difference
    assert built.nframes == 3
    assert int(np.median(built.coverage[built.coverage > 0])) == 3


@pytest.mark.slow
def test_transient_is_the_brightest_candidate(difference):
    sci, _, result = difference
    cands = result.candidates
    positive = cands[cands["sign"] == 1]
    assert len(positive) >= 1
    best = positive[np.argmax(positive["snr"])]
    assert np.hypot(best["x"] - TRANSIENT_XY[0], best["y"] - TRANSIENT_XY[1]) < 1.0
    mag = sci.meta["zptmag"] - 2.5 * np.log10(best["flux"])
    # The PSF estimated from the stars on a 25-pixel stamp misses ~6% of the light in Roman's
    # diffraction wings (the aperture correction measured on the stars repairs the stack's
    # too broad core, within that stamp): 0.06 magnitude faint.
    assert result.meta["apcorr_sci"] > 1.01
    assert mag == pytest.approx(TRANSIENT_MAG + 0.06, abs=0.04)
    # The 40 steady stars subtract away: few other candidates of either sign.
    others = np.hypot(cands["x"] - TRANSIENT_XY[0], cands["y"] - TRANSIENT_XY[1]) > 3
    assert int(others.sum()) <= 3


@pytest.mark.slow
def test_gain_match_recovers_the_zero_point_difference(difference):
    sci, _, result = difference
    # The reference is at ZP 17, the science at its own ZP: the flux ratio is 10^(0.4 dZP).
    expected = 10 ** (0.4 * (sci.meta["zptmag"] - REFERENCE_ZERO_POINT))
    assert result.meta["scalefacref"] == pytest.approx(expected, rel=0.05)
