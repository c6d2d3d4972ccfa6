"""The flux-error model of a linear difference image, PSF-model mismatch included."""

import numpy as np
import pytest

from rapid.science.photometry import DifferenceNoise
from rapid.science.psf import gaussian_psf

SHAPE = (64, 64)


def _delta(scale=1.0):
    k = np.zeros((5, 5))
    k[2, 2] = scale
    return k


def _estimator():
    p = gaussian_psf(2.5, size=11)
    return p / np.sum(p * p)  # the flux of a fit at a fixed position, box at (27, 27)


def _noise(host_n, host_r, flux_noise):
    var = np.full(SHAPE, 4.0)
    img_n, img_r = np.zeros(SHAPE), np.zeros(SHAPE)
    p = gaussian_psf(2.5, size=11)
    img_n[27:38, 27:38] += host_n * p / p.sum()
    img_r[27:38, 27:38] += host_r * p / p.sum()
    return DifferenceNoise(kernel_n=_delta(), kernel_r=_delta(0.5), var_n=var, var_r=var,
                           image_n=img_n, image_r=img_r, flux_noise=flux_noise)


def test_independent_pixels_through_delta_kernels():
    w = _estimator()
    v = _noise(0.0, 0.0, 0.0).weighted_sum_variance(w, 27, 27)
    assert v == pytest.approx(4.0 * np.sum(w * w) * (1 + 0.25))


def test_a_static_source_under_the_fit_adds_its_mismatch():
    w = _estimator()
    plain = _noise(1e5, 2e5, 0.0).weighted_sum_variance(w, 27, 27)
    weighed = _noise(1e5, 2e5, 0.02).weighted_sum_variance(w, 27, 27)
    # the common part: N's 1e5 and R's 2e5 x 0.5 are the same source seen in both images
    assert weighed - plain == pytest.approx((0.02 * 1e5) ** 2, rel=1e-6)
    # a source in one image only (a transient, or a star that has faded away) adds nothing
    assert _noise(1e5, 0.0, 0.02).weighted_sum_variance(w, 27, 27) == pytest.approx(plain)
    assert _noise(0.0, 2e5, 0.02).weighted_sum_variance(w, 27, 27) == pytest.approx(plain)
