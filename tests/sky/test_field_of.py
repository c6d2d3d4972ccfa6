"""field_of and its inverses: round trips, RA wrap, poles, vectorisation, validation."""

import numpy as np
import pytest

from rapid.sky import (
    NFIELDS,
    field_of,
    field_ring_index,
    ring_first_field,
    tile_bounds,
    tile_center,
    tile_corners,
)


@pytest.fixture(scope="module")
def random_fields():
    rng = np.random.default_rng(20280907)
    fields = rng.integers(1, NFIELDS + 1, size=20_000)
    # Always include the caps, the ends of every zone and the ring-1 tiles.
    extra = [1, 2, 9, 10, NFIELDS - 1, NFIELDS, ring_first_field(512), ring_first_field(1537) - 1]
    return np.concatenate([fields, extra])


def test_center_round_trip(random_fields):
    ra, dec = tile_center(random_fields)
    assert np.array_equal(field_of(ra, dec), random_fields)


def test_points_inside_bounds_round_trip(random_fields):
    rng = np.random.default_rng(7)
    ra_min, ra_max, dec_min, dec_max = tile_bounds(random_fields)
    u, v = rng.uniform(0.001, 0.999, size=(2, random_fields.size))
    ra = ra_min + u * (ra_max - ra_min)
    dec = dec_min + v * (dec_max - dec_min)
    assert np.array_equal(field_of(ra, dec), random_fields)


def test_corners_lie_on_their_tile(random_fields):
    ra, dec = tile_corners(random_fields)
    assert ra.shape == dec.shape == (random_fields.size, 4)
    assert np.all((ra >= 0.0) & (ra < 360.0))
    ra_min, ra_max, dec_min, dec_max = tile_bounds(random_fields)
    plain = (random_fields > 1) & (random_fields < NFIELDS)
    np.testing.assert_allclose(dec[plain, 0], dec_min[plain])
    np.testing.assert_allclose(dec[plain, 2], dec_max[plain])
    np.testing.assert_allclose(ra[plain, 1], np.mod(ra_max[plain], 360.0))
    # Centre of the four corners (mid-RA of the west/east pair) is the tile centre.
    ra0, _ = tile_center(random_fields[plain])
    half = 0.5 * (ra_max - ra_min)[plain]
    np.testing.assert_allclose(np.mod(ra[plain, 0] + half, 360.0), ra0, atol=1e-9)


def test_cap_corners_are_on_the_cap_edge():
    ra, dec = tile_corners(1)
    assert list(ra) == [0.0, 90.0, 180.0, 270.0]
    assert np.all(dec == tile_bounds(1)[2])
    ra, dec = tile_corners(NFIELDS)
    assert np.all(dec == tile_bounds(NFIELDS)[3])


def test_ra_wrap_folds_into_tile_0():
    f0 = field_of(0.0, 10.0)
    assert field_ring_index(f0)[1] == 0
    assert field_of(359.99, 10.0) == f0
    assert field_of(-0.01, 10.0) == f0
    assert field_of(360.0, 10.0) == f0
    assert field_of(720.02, 10.0) == f0
    assert field_of(-1e-300, 10.0) == f0
    # 0.05 deg below 360 is past the half-tile (0.044 deg) into the last tile of the ring.
    assert field_of(359.95, 10.0) == f0 + 4095
    assert field_of(-0.05, 10.0) == f0 + 4095


def test_ra_tile_edges_are_half_open():
    ring_start = ring_first_field(1000)
    delta = 360.0 / 4096
    dec = tile_center(ring_start)[1]
    assert field_of(10.5 * delta, dec) == ring_start + 11
    assert field_of(np.nextafter(10.5 * delta, 0.0), dec) == ring_start + 10


def test_poles_for_any_ra():
    ra = np.array([-30.0, 0.0, 45.0, 359.9])
    assert np.all(field_of(ra, 90.0) == 1)
    assert np.all(field_of(ra, -90.0) == NFIELDS)


def test_scalar_and_vector_agree():
    rng = np.random.default_rng(3)
    ra = rng.uniform(-360.0, 720.0, 500)
    dec = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, 500)))
    vector = field_of(ra, dec)
    scalar = [field_of(float(r), float(d)) for r, d in zip(ra, dec)]
    assert all(isinstance(f, int) for f in scalar)
    assert vector.dtype == np.int64
    assert vector.tolist() == scalar
    assert field_of(ra.reshape(20, 25), dec.reshape(20, 25)).shape == (20, 25)
    # A scalar dec broadcasts against an array of RA.
    assert np.array_equal(field_of(ra, 12.5), [field_of(float(r), 12.5) for r in ra])
    ra0, dec0 = tile_center(vector)
    assert [tile_center(int(f)) for f in vector[:20]] == list(zip(ra0[:20], dec0[:20]))


def test_invalid_inputs_name_the_argument():
    with pytest.raises(ValueError, match="dec"):
        field_of(10.0, 90.5)
    with pytest.raises(ValueError, match="dec"):
        field_of([10.0, 11.0], [0.0, np.nan])
    with pytest.raises(ValueError, match="ra"):
        field_of(np.inf, 0.0)
    with pytest.raises(ValueError, match="field"):
        tile_center(0)
    with pytest.raises(ValueError, match="field"):
        tile_bounds(NFIELDS + 1)
    with pytest.raises(ValueError, match="field"):
        tile_corners(2.5)
