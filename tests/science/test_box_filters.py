"""The box maximum against scipy's."""

import numpy as np
import pytest
from scipy.ndimage import maximum_filter

from rapid.science.box_filters import box_maximum


@pytest.mark.parametrize("shape", [(1, 7), (2, 2), (5, 3), (64, 97)])
@pytest.mark.parametrize("size", [1, 3, 5, 9])
def test_box_maximum_is_scipys(shape, size):
    a = np.random.default_rng(size).normal(size=shape).astype(np.float32)
    out = box_maximum(a, size)
    assert out.dtype == a.dtype
    assert np.array_equal(out, maximum_filter(a, size=size))


def test_box_maximum_refuses_even_sizes_and_other_ranks():
    with pytest.raises(ValueError):
        box_maximum(np.zeros((4, 4)), 4)
    with pytest.raises(ValueError):
        box_maximum(np.zeros(4), 3)


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (6, 1), (40, 33)])
@pytest.mark.parametrize("iterations", [0, 1, 2, 3])
def test_cross_dilation_is_scipys(shape, iterations):
    from scipy.ndimage import binary_dilation

    from rapid.science.box_filters import cross_dilation

    rng = np.random.default_rng(iterations)
    for share in (0.02, 0.3):
        mask = rng.random(shape) < share
        mask[0, 0] = mask[-1, -1] = True  # at the edges
        out = cross_dilation(mask, iterations)
        assert out is not mask and out.dtype == bool
        want = binary_dilation(mask, iterations=iterations) if iterations else mask
        assert np.array_equal(out, want)
