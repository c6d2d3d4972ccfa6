"""The detection threshold applies to the Scorr peak; the minimum area to the analysis level."""

import numpy as np
import pytest
from tests.science.diff_fakes import add_star

from rapid.science.detect import detect_candidates
from rapid.science.psf import gaussian_psf
from rapid.science.zogy import zogy

SHAPE = (128, 128)
SIGMA = 1.2  # a compact PSF (FWHM 2.8 px)


def _faint_pair(seed):
    """Two point sources whose Scorr peaks lie between 12 and 16 on a compact PSF."""
    rng = np.random.default_rng(seed)
    N = rng.normal(0, 5.0, SHAPE)
    R = rng.normal(0, 5.0, SHAPE)
    add_star(N, 40.3, 50.6, 240.0, SIGMA)
    add_star(N, 90.2, 80.7, 240.0, SIGMA)
    p = gaussian_psf(SIGMA)
    return zogy(N, R, p, p, sigma_n=5.0, sigma_r=5.0)


def test_faint_undersampled_sources_pass_minimum_area_at_the_analysis_level():
    z = _faint_pair(7)
    peaks = [z.Scorr[45:56, 35:46].max(), z.Scorr[76:86, 85:96].max()]
    assert all(12 < p < 16 for p in peaks)
    found = detect_candidates(z.Scorr, z.D, np.sqrt(z.D_var), threshold=5.0, minarea=5)
    assert len(found) == 2
    # measuring the area at the threshold itself loses one: < 5 pixels above 5 sigma
    strict = detect_candidates(z.Scorr, z.D, np.sqrt(z.D_var), threshold=5.0, minarea=5,
                               analysis_fraction=1.0)
    assert len(strict) < 2


def test_pure_noise_scorr_has_unit_std_and_few_detections():
    rng = np.random.default_rng(11)
    N = rng.normal(0, 5.0, (512, 512))
    R = rng.normal(0, 3.0, (512, 512))
    p = gaussian_psf(SIGMA)
    z = zogy(N, R, p, p, sigma_n=5.0, sigma_r=3.0)
    assert np.std(z.Scorr[16:-16, 16:-16]) == pytest.approx(1.0, abs=0.05)
    found = detect_candidates(z.Scorr, z.D, np.sqrt(z.D_var), threshold=5.0)
    assert len(found) <= 1


def test_analysis_fraction_is_validated():
    with pytest.raises(ValueError, match="analysis_fraction"):
        detect_candidates(np.zeros(SHAPE), np.zeros(SHAPE), analysis_fraction=0.0)
