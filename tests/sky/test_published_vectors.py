"""RAPID's published tessellation values (rapid-domain.md section 4), to float32 precision."""

import numpy as np
import pytest

from rapid.sky import NFIELDS, field_of, tile, tile_bounds, tile_center


def f32(value) -> np.float32:
    return np.float32(value)


def assert_f32(actual, expected):
    """Equal once rounded to float32, as RAPID's table stores them."""
    np.testing.assert_array_equal(np.float32(actual), np.float32(expected))


def test_field_of_published_position():
    assert field_of(11.1, -43.8) == 5321355


def test_field_5321355_centre_and_ranges():
    ra0, dec0 = tile_center(5321355)
    assert_f32(ra0, "11.067073")
    assert_f32(dec0, "-43.80449")
    ra_min, ra_max, dec_min, dec_max = tile_bounds(5321355)
    assert_f32([ra_min, ra_max], ["11.021341", "11.112804"])
    assert_f32([dec_min, dec_max], ["-43.85415", "-43.754818"])


def test_field_2_first_tile_of_ring_1_straddles_ra_0():
    ra0, dec0 = tile_center(2)
    assert ra0 == 0.0
    assert_f32(dec0, "89.90863")
    ra_min, ra_max, dec_min, dec_max = tile_bounds(2)
    assert (ra_min, ra_max) == (-22.5, 22.5)
    assert_f32([dec_min, dec_max], ["89.862946", "89.954315"])


def test_fields_226_to_289_are_one_ring_of_64_tiles():
    fields = np.arange(226, 290)
    ra0, dec0 = tile_center(fields)
    np.testing.assert_allclose(ra0, 5.625 * np.arange(64), rtol=0, atol=1e-12)
    assert_f32(dec0, np.full(64, "89.26903"))
    ra_min, ra_max, dec_min, dec_max = tile_bounds(fields)
    np.testing.assert_allclose(ra_max - ra_min, 5.625, rtol=0, atol=1e-12)
    assert ra_min[0] == pytest.approx(-2.8125)
    assert_f32(dec_min, np.full(64, "89.22334"))
    assert_f32(dec_max, np.full(64, "89.31471"))
    # The neighbours on either side belong to other rings.
    assert tile_center(225)[1] > dec0[0] > tile_center(290)[1]


def test_north_cap_is_field_1():
    ra_min, ra_max, dec_min, dec_max = tile_bounds(1)
    assert (ra_min, ra_max, dec_max) == (0.0, 360.0, 90.0)
    assert_f32(dec_min, "89.954315")
    assert tile_center(1) == (0.0, 90.0)
    assert field_of(123.0, 90.0) == 1
    assert field_of(0.0, 89.96) == 1


def test_south_cap_is_last_field():
    assert NFIELDS == 6_291_458
    ra_min, ra_max, dec_min, dec_max = tile_bounds(NFIELDS)
    assert (ra_min, ra_max, dec_min) == (0.0, 360.0, -90.0)
    assert_f32(dec_max, "-89.954315")
    assert tile_center(NFIELDS) == (0.0, -90.0)
    assert field_of(200.0, -90.0) == NFIELDS
    assert field_of(10.0, -89.96) == NFIELDS


def test_tile_record_matches_the_functions():
    t = tile(5321355)
    assert t.field == 5321355
    assert (t.ra0, t.dec0) == tile_center(5321355)
    assert t.bounds == tile_bounds(5321355)
    assert t.corners[0] == (t.bounds[0], t.bounds[2])
    assert t.corners[2] == (t.bounds[1], t.bounds[3])
    assert not t.is_cap
    assert tile(1).is_cap and tile(NFIELDS).is_cap
