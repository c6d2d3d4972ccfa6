"""Ring recurrence of the tessellation: counts, totals, edges."""

import numpy as np
import pytest

from rapid.sky import (
    NDECBINS,
    NFIELDS,
    NRINGS,
    NSIDE,
    field_of,
    ring_dec,
    ring_edges,
    ring_first_field,
    ring_ntiles,
    ring_of,
)


def test_2049_declination_bins_and_6291458_fields():
    assert NSIDE == 512
    assert NRINGS == 2047
    assert NDECBINS == 2049
    counts = ring_ntiles(np.arange(NDECBINS))
    assert counts.sum() == NFIELDS == 6_291_458


def test_tiles_per_ring_follow_the_recurrence():
    counts = ring_ntiles(np.arange(NDECBINS))
    assert counts[0] == counts[-1] == 1
    assert list(counts[1:5]) == [8, 16, 24, 32]
    assert counts[511] == 8 * 511
    # c_j = 4N for 2N + 1 rings, i.e. 4096 tiles per equatorial ring.
    assert np.all(counts[512:1537] == 4096)
    assert counts[511] < 4096 and counts[1537] < 4096
    assert np.array_equal(counts[1:1024], counts[2047:1024:-1])


def test_ring_first_field_is_cumulative():
    assert ring_first_field(0) == 1
    assert ring_first_field(1) == 2
    assert ring_first_field(8) == 226
    assert ring_first_field(9) == 290
    assert ring_first_field(2048) == NFIELDS
    rings = np.arange(NDECBINS - 1)
    assert np.array_equal(np.diff(ring_first_field(np.arange(NDECBINS))), ring_ntiles(rings))


def test_ring_edges_tile_the_sphere_without_gaps():
    dec_min, dec_max = ring_edges(np.arange(NDECBINS))
    assert dec_max[0] == 90.0 and dec_min[-1] == -90.0
    assert np.array_equal(dec_min[:-1], dec_max[1:])
    assert np.all(dec_min < ring_dec(np.arange(NDECBINS)) + 1e-12)
    assert np.all(np.diff(ring_dec(np.arange(NDECBINS))) < 0)
    # Equatorial rings are about 0.0746 deg tall and the equator is a ring centre.
    assert ring_dec(1024) == 0.0
    assert dec_max[1024] - dec_min[1024] == pytest.approx(0.0746, abs=5e-5)


def test_point_on_a_ring_edge_belongs_to_the_ring_below_the_edge():
    # Each ring owns its lower edge: dec_min <= dec < dec_max.
    for ring in (1, 300, 511, 512, 1024, 1536, 1537, 2047):
        dec_min, dec_max = ring_edges(ring)
        assert ring_of(dec_min) == ring
        assert ring_of(np.nextafter(dec_min, -90.0)) == ring + 1
        assert ring_of(dec_max) == ring - 1
        assert ring_of(np.nextafter(dec_max, -90.0)) == ring
    dec_min, _ = ring_edges(1000)
    f = field_of(0.05, dec_min)
    assert f == ring_first_field(1000) + 1
    assert field_of(0.05, np.nextafter(dec_min, -90.0)) == f + 4096


def test_ring_validation_names_ring():
    with pytest.raises(ValueError, match="ring"):
        ring_ntiles(2049)
    with pytest.raises(ValueError, match="ring"):
        ring_dec(1.5)
    with pytest.raises(ValueError, match="dec"):
        ring_of(91.0)
