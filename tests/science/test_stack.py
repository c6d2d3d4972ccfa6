"""Per-pixel rejection of the reference stack: outliers go, bright undersampled stars stay whole."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from rapid.science.stack import _medians, _sorting_network, combine_stack


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


def test_three_disagreeing_samples_are_all_kept_and_an_outlier_still_goes():
    shape = (21, 21)
    rng = np.random.default_rng(6)
    # a variable star at three brightnesses: every frame disagrees with the others
    values = np.stack([_star(shape, 10.0, 10.0, p) for p in (1000.0, 4500.0, 9000.0)])
    values += rng.normal(0.0, 1.0, values.shape)
    values[2, 3, 3] += 80.0  # and a cosmic ray on the sky in the third frame
    weights = np.ones_like(values)
    mean, _, count, _ = combine_stack(values, weights)
    # the star's core keeps its three samples (a pixel left with one would be masked
    # downstream): the mean of its epochs, as on its flanks
    assert count[10, 10] == 3
    assert mean[10, 10] == pytest.approx(values[:, 10, 10].mean(), rel=1e-5)
    assert np.all(count[9:12, 9:12] == 3)
    # one frame against two that agree is still an outlier
    assert count[3, 3] == 2
    assert mean[3, 3] == pytest.approx(values[:2, 3, 3].mean(), abs=1e-4)
    # with four frames too: the second pass never leaves fewer than two
    four = np.concatenate([values, _star(shape, 10.0, 10.0, 10000.0)[None]])
    _, _, count4, _ = combine_stack(four, np.ones_like(four))
    assert np.all(count4 >= 2)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13, 16, 19])
def test_sorting_network_sorts_every_zero_one_input(n):
    # the 0-1 principle: a comparator network that sorts all 0-1 inputs sorts everything
    pairs = _sorting_network(n)
    assert pairs.size == 0 or pairs.max() < n
    bits = (np.arange(2 ** n)[:, None] >> np.arange(n)) & 1
    x = bits.copy()
    for i, j in pairs:
        lo, hi = np.minimum(x[:, i], x[:, j]), np.maximum(x[:, i], x[:, j])
        x[:, i], x[:, j] = lo, hi
    assert np.array_equal(x, np.sort(bits, axis=1))


@pytest.mark.parametrize("nk", [1, 2, 7, 25])
def test_medians_of_valid_samples_equal_numpy(nk):
    rng = np.random.default_rng(nk)
    values = rng.normal(size=(nk, 3, 5000)).astype(np.float32)
    values[:, :, ::7] = np.round(values[:, :, ::7])  # ties
    weights = (rng.random(values.shape) < 0.6).astype(np.float32)
    med = np.empty((3, 5000))
    count = np.empty((3, 5000), dtype=np.int64)
    _medians(values, weights, _sorting_network(nk), med, count)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels
        expected = np.nanmedian(np.where(weights > 0, values, np.nan).astype(np.float64), axis=0)
    assert np.array_equal(count, (weights > 0).sum(axis=0))
    assert np.array_equal(med, expected, equal_nan=True)
