import numpy as np
import pytest
import sep

from rapid.science.extraction import extract


@pytest.fixture
def sep_defaults():
    """sep's limits as a fresh process has them; what a test raised is put back after it."""
    stack, subs = sep.get_extract_pixstack(), sep.get_sub_object_limit()
    sep.set_extract_pixstack(300_000)
    sep.set_sub_object_limit(1024)
    yield
    sep.set_extract_pixstack(stack)
    sep.set_sub_object_limit(subs)


def _crowded(shape=(700, 700), nstars=6000, seed=3):
    # thousands of stars whose wings join above the threshold: one region of ~400,000 pixels
    rng = np.random.default_rng(seed)
    img = rng.normal(0.0, 1.0, shape)
    y, x = (rng.uniform(0, n, nstars) for n in shape)
    np.add.at(img, (y.astype(int), x.astype(int)), rng.uniform(200, 2000, nstars))
    from scipy.ndimage import gaussian_filter
    return np.ascontiguousarray(gaussian_filter(img, 2.0) + 0.3, dtype=np.float32)


def test_a_crowded_image_that_overflows_sep_is_extracted(sep_defaults):
    img = _crowded()
    assert (img > 0.2).sum() > 300_000
    with pytest.raises(Exception, match="pixel buffer full"):
        sep.extract(img, 0.2)
    objects = extract(img, 0.2)
    assert len(objects) > 10
    assert sep.get_extract_pixstack() >= img.size
    # once raised, the limits stay: the next image goes through at the first attempt
    assert len(sep.extract(img, 0.2)) == len(objects)


def test_other_errors_are_sep_s_own(sep_defaults):
    img = np.zeros((50, 50), dtype=np.float32)
    with pytest.raises(Exception, match="must match"):
        extract(img, 1.0, err=np.ones((10, 10), dtype=np.float32))
    assert sep.get_extract_pixstack() == 300_000
