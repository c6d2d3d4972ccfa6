"""Per-pixel rejection of the reference stack: outliers go, bright undersampled stars stay whole."""

from __future__ import annotations

import numpy as np
import pytest

from rapid.science.stack import combine_stack


def _star(shape, x0, y0, peak, sigma=0.6):
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    return peak * np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * sigma**2))


def test_two_samples_of_a_bright_undersampled_star_are_both_kept_on_its_flanks():
    shape = (31, 31)
    rng = np.random.default_rng(3)
    # the same star as two frames resampled from different sub-pixel phases see it: the
    # undersampled profile lands 0.3 px apart, so flank pixels differ by far more than noise
    a = _star(shape, 15.0, 15.0, 5000.0)
    b = _star(shape, 15.3, 15.0, 5000.0)
    values = np.stack([a, b]) + rng.normal(0.0, 1.0, (2, *shape))
    weights = np.ones_like(values)
    mean, _, count, _ = combine_stack(values, weights)
    r = np.hypot(*np.mgrid[-15:16, -15:16])
    flank = (r > 0.9) & ((a + b) / 2 > 20)
    assert flank.sum() >= 8
    assert np.all(count[r < 4] == 2)
    # the mean on the flanks is the two frames' average, not the lower of them
    assert mean[flank] == pytest.approx(values.mean(axis=0)[flank], abs=1e-3)


def test_two_samples_still_lose_a_cosmic_ray_on_faint_sky_and_the_halo_rows_are_context():
    shape = (12, 20)
    rng = np.random.default_rng(4)
    values = rng.normal(0.0, 1.0, (2, *shape)).astype(np.float32)
    values[1, 6, 9] += 60.0  # a cosmic ray in one frame
    weights = np.ones_like(values)
    mean, _, count, nrej = combine_stack(values, weights)
    assert count[6, 9] == 1 and mean[6, 9] == pytest.approx(values[0, 6, 9])
    assert nrej == 1
    inner, _, inner_count, _ = combine_stack(values, weights, halo=1)
    assert inner.shape == (shape[0] - 2, shape[1])
    assert np.array_equal(inner, mean[1:-1]) and inner_count[5, 9] == 1
    with pytest.raises(ValueError, match="halo"):
        combine_stack(values[:, :2], weights[:, :2], halo=1)
