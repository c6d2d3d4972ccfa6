import numpy as np
import pytest
import sep
from tests.science.diff_fakes import tan_wcs

from rapid.science.background import estimate_background
from rapid.science.image import Frame
from rapid.science.local_linear_sky import (edge_correction, local_linear_level,
                                            replaced_meshes)

SHAPE = (256, 320)
SLOPE = 0.05  # sky per pixel along x


def _sloped(seed, sigma=2.0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SHAPE[0], 0:SHAPE[1]]
    sky = 100.0 + SLOPE * xx - 0.02 * yy
    return sky, (sky + rng.normal(0, sigma, SHAPE)).astype(np.float32)


def _edge_mask():
    """Coverage that ends at x = 232: the last mesh column (x 192-255, box 64) is five
    eighths valid, the next (256-319) not at all."""
    bad = np.zeros(SHAPE, dtype=bool)
    bad[:, 232:] = True
    return bad


def test_meshes_mostly_masked_are_those_sep_replaces():
    bad = _edge_mask()
    rep = replaced_meshes(bad, 64)
    assert rep.shape == (4, 5)
    assert rep[:, 4].all() and not rep[:, :4].any()  # 40 of 64 columns valid: kept
    bad[:, 220:] = True
    assert replaced_meshes(bad, 64)[:, 3].all()  # 28 of 64: replaced


def test_background_keeps_the_sky_slope_up_to_a_coverage_edge():
    sky, data = _sloped(0)
    bad = np.zeros(SHAPE, dtype=bool)
    bad[:, 200:] = True  # the mesh at x 192-255 holds 8 valid columns of 64
    frame = Frame(data=np.where(bad, np.nan, data), wcs=tan_wcs(SHAPE), mask=bad)
    near = np.s_[32:224, 176:200]
    # sep alone holds the level of the mesh before, flat, while the sky rises
    raw = sep.Background(np.where(bad, 0, data).astype(np.float32), mask=bad, bw=64, bh=64)
    assert np.median((raw.back() - sky)[near]) < -0.4
    b = estimate_background(frame, box=64, mask_sources=False)
    err = (data - b.frame.data) - sky
    assert abs(np.median(err[near])) < 0.1
    # meshes far from the edge keep sep's value
    far = np.s_[:, :24]
    assert np.allclose(data[far] - b.frame.data[far], raw.back()[far], atol=1e-3)


def test_edge_correction_is_none_without_mostly_masked_meshes():
    sky, data = _sloped(1)
    assert edge_correction(data, sky, np.zeros(SHAPE, bool), 64) is None
    small = np.zeros(SHAPE, dtype=bool)
    small[100:140, 100:140] = True  # less than half of any mesh
    assert edge_correction(data, sky, small, 64) is None
    # a mesh with no valid pixel is replaced, and its valid neighbours are refitted
    assert edge_correction(data, sky, _edge_mask(), 64) is not None


def test_local_linear_level_follows_a_plane_to_the_edge_of_the_data():
    sky, data = _sloped(2)
    bad = np.zeros(SHAPE, dtype=bool)
    bad[:, 200:] = True
    bad[100:140, 40:90] = True  # a masked galaxy
    level = local_linear_level(data, bad, 32.0)
    assert level.dtype == np.float32 and level.shape == SHAPE
    err = level - sky
    assert abs(np.median(err[:, 190:200])) < 0.1
    assert abs(np.median(err[100:140, 40:90])) < 0.1  # across the hole
    assert np.std(err[~bad]) < 0.1
    assert local_linear_level(data, np.ones(SHAPE, bool), 32.0) is None
    with pytest.raises(ValueError, match="scale"):
        local_linear_level(data, bad, 2.0)
