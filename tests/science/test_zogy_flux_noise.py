"""flux_noise weighs residuals of bright stars left by PSF-model errors, not transients."""

import numpy as np
import pytest
from tests.science.diff_fakes import add_star

from rapid.science.detect import detect_candidates
from rapid.science.psf import gaussian_psf
from rapid.science.zogy import zogy

SHAPE = (128, 128)


def _pair(seed, flux_noise):
    rng = np.random.default_rng(seed)
    N = rng.normal(0, 5.0, SHAPE)
    R = rng.normal(0, 5.0, SHAPE)
    # a bright star whose true width differs by 5% from the model in the science image
    add_star(N, 40.0, 40.0, 2e5, 2.625)
    add_star(R, 40.0, 40.0, 2e5, 2.5)
    add_star(N, 90.0, 90.0, 600.0, 2.5)  # a faint transient
    p = gaussian_psf(2.5)
    return zogy(N, R, p, p, sigma_n=5.0, sigma_r=5.0, flux_noise=flux_noise)


def test_bright_star_residual_is_weighed_and_faint_transient_kept():
    plain = _pair(5, 0.0)
    weighed = _pair(5, 0.1)
    near = (slice(28, 53), slice(28, 53))
    assert np.abs(plain.Scorr[near]).max() > 10
    assert np.abs(weighed.Scorr[near]).max() < 5
    # a transient (in the science image only) keeps its Scorr
    assert weighed.Scorr[90, 90] == pytest.approx(plain.Scorr[90, 90], rel=0.01)
    found = detect_candidates(weighed.Scorr, weighed.D, np.sqrt(weighed.D_var))
    assert len(found) == 1 and abs(found["x"][0] - 90) < 0.5


def test_flux_noise_is_validated():
    p = gaussian_psf(2.5)
    with pytest.raises(ValueError, match="flux_noise"):
        zogy(np.zeros(SHAPE), np.zeros(SHAPE), p, p, sigma_n=1.0, sigma_r=1.0, flux_noise=-1)
