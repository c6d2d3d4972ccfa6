"""The completeness curve fitted as a Gaussian threshold: S/N at 50%, width, value at S/N 5."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import ndtr

from rapid.evaluation.completeness_fit import fit_completeness


def _detected(rng, snr, threshold, width=1.0):
    return snr + width * rng.normal(size=snr.size) > threshold


def test_a_thresholded_gaussian_statistic_gives_back_its_threshold_and_unit_width():
    rng = np.random.default_rng(5)
    snr = rng.uniform(2.0, 12.0, 4000)
    fit = fit_completeness(snr, _detected(rng, snr, 5.4))
    assert fit["snr50"] == pytest.approx(5.4, abs=3 * fit["snr50_err"])
    assert 0.02 < fit["snr50_err"] < 0.1
    assert fit["width"] == pytest.approx(1.0, abs=3 * fit["width_err"])
    assert fit["completeness_at"] == pytest.approx(ndtr(5.0 - 5.4), abs=3 * fit["completeness_at_err"])
    assert fit["objects"] == 4000


def test_a_wider_transition_is_measured_as_wider():
    rng = np.random.default_rng(6)
    snr = rng.uniform(0.0, 15.0, 3000)
    fit = fit_completeness(snr, _detected(rng, snr, 6.0, width=2.0))
    assert fit["width"] == pytest.approx(2.0, abs=0.25)
    assert fit["snr50"] == pytest.approx(6.0, abs=0.3)


def test_unknown_snr_is_left_out_and_degenerate_samples_give_none():
    rng = np.random.default_rng(7)
    snr = rng.uniform(2.0, 12.0, 500)
    found = _detected(rng, snr, 5.0)
    with_nan = np.concatenate([snr, [np.nan, -1.0]])
    fit = fit_completeness(with_nan, np.concatenate([found, [True, False]]))
    assert fit["objects"] == 500
    assert fit_completeness(snr, np.ones(500, bool)) is None  # nothing missed
    assert fit_completeness(snr[:8], found[:8] | True) is None
    with pytest.raises(ValueError, match="shape"):
        fit_completeness(snr, found[:10])
