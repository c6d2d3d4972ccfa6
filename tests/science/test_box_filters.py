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
