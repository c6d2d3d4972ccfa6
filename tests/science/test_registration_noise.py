"""The registration noise ZOGY weighs, net of the matched stars' own centroid noise."""

import numpy as np
import pytest

from rapid.science.registration import registration_noise


def _offsets(rng, n, reg_sigma, k):
    # centroid variance (FWHM / S/N)^2 summed over both images, from S/N 20 to 3000
    snr = np.exp(rng.uniform(np.log(20), np.log(3000), n))
    cv = 2 * (3.0 / snr) ** 2
    return rng.normal(0, np.sqrt(reg_sigma**2 + k * cv)), cv


def test_centroid_noise_of_faint_stars_is_taken_out():
    rng = np.random.default_rng(3)
    off, cv = _offsets(rng, 600, 0.004, 0.05)
    plain = np.sqrt(np.mean(off**2))
    assert plain > 4 * 0.004
    assert registration_noise(off, cv) == pytest.approx(0.004, rel=0.3)


def test_errors_that_do_not_fall_with_snr_are_kept():
    rng = np.random.default_rng(4)
    off, cv = _offsets(rng, 400, 0.03, 0.0)
    assert registration_noise(off, cv) == pytest.approx(np.sqrt(np.mean(off**2)), rel=0.1)
    assert registration_noise(off, cv) == pytest.approx(0.03, rel=0.15)


def test_few_stars_give_the_plain_rms_and_none_give_zero():
    off = np.array([0.1, -0.2, 0.05])
    assert registration_noise(off, np.full(3, 1e-3)) == pytest.approx(np.sqrt(np.mean(off**2)))
    assert registration_noise(np.array([]), np.array([])) == 0.0
    assert registration_noise(np.array([np.nan] * 12), np.ones(12)) == 0.0
    # an image against itself: every offset zero
    assert registration_noise(np.zeros(40), np.linspace(1e-4, 1e-2, 40)) == 0.0
