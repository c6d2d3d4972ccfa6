"""fields_overlapping on SCA-sized footprints; unit vectors and separations."""

import numpy as np
import pytest
from astropy.wcs import WCS

from rapid.sky import (
    NFIELDS,
    angular_separation_deg,
    field_of,
    field_ring_index,
    fields_overlapping,
    ring_dec,
    ring_first_field,
    tile_bounds,
    tile_center,
    unit_vector,
)

SCA_DEG = 0.12


def sca_footprint(ra0, dec0, *, size=SCA_DEG, rotation=0.0, aspect=1.0):
    """Corners of a square (or rectangular) image on a TAN grid, and its WCS."""
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [ra0, dec0]
    wcs.wcs.crpix = [1.0, 1.0]
    c, s = np.cos(np.radians(rotation)), np.sin(np.radians(rotation))
    # One "pixel" is half the image: x, y in [-1, 1] span it.
    wcs.wcs.cd = np.array([[-c, s], [s, c]]) * size / 2.0
    x = np.array([-1.0, 1.0, 1.0, -1.0]) * aspect
    y = np.array([-1.0, -1.0, 1.0, 1.0])
    ra, dec = wcs.wcs_pix2world(x, y, 0)
    return ra, dec, wcs


def sampled_fields(wcs, aspect=1.0, n=201):
    """Fields hit by a dense grid over the image (a lower bound on the overlap)."""
    g = np.linspace(-1.0, 1.0, n)
    x, y = np.meshgrid(g * aspect, g)
    ra, dec = wcs.wcs_pix2world(x.ravel(), y.ravel(), 0)
    return set(np.unique(field_of(ra, np.clip(dec, -90.0, 90.0))).tolist())


def test_sca_on_a_tile_centre_near_the_equator_covers_it_and_its_8_neighbours():
    centre = field_of(30.0, 0.3)
    ra0, dec0 = tile_center(centre)
    ra, dec, _ = sca_footprint(ra0, dec0)
    fields = fields_overlapping(ra, dec)
    # 0.12 deg reaches past the 0.088 x 0.075 deg tile on every side, but not two tiles away.
    expected = sorted(centre + dr + di for dr in (-4096, 0, 4096) for di in (-1, 0, 1))
    assert fields.tolist() == expected
    assert fields.dtype == np.int64


def test_rotated_equatorial_sca_returns_a_handful_of_nearby_tiles():
    ra, dec, wcs = sca_footprint(150.01, -2.02, rotation=33.0)
    fields = fields_overlapping(ra, dec)
    assert 4 <= fields.size <= 12
    assert sampled_fields(wcs) <= set(fields.tolist())
    ra_c, dec_c = tile_center(fields)
    # Every tile centre is within the image's half-diagonal plus a tile's half-diagonal.
    assert np.all(angular_separation_deg(ra_c, dec_c, 150.01, -2.02) < SCA_DEG / np.sqrt(2) + 0.06)


def test_sca_straddling_ra_0():
    ring, _ = field_ring_index(field_of(0.0, 0.3))
    dec0 = ring_dec(ring)
    ra, dec, wcs = sca_footprint(0.01, dec0)
    assert ra.max() > 359.9 and ra.min() < 0.1
    fields = fields_overlapping(ra, dec)
    assert sampled_fields(wcs) <= set(fields.tolist())
    # RA -0.05 .. 0.07 covers the last tile of each ring, tile 0 (+/-0.044) and tile 1.
    expected = sorted(ring_first_field(r) + i for r in (ring - 1, ring, ring + 1) for i in (4095, 0, 1))
    assert fields.tolist() == expected
    # Same answer with the corners given as negative RA.
    assert fields_overlapping(np.where(ra > 180, ra - 360, ra), dec).tolist() == expected


def test_sca_over_the_north_pole_includes_the_cap_and_most_of_ring_1():
    # The pole is 0.03 deg from the centre towards RA 225: on that side the image ends
    # 0.03 deg past the pole, inside the cap (radius 0.0457 deg); its corners reach ring 1.
    ra, dec, wcs = sca_footprint(45.0, 89.97)
    fields = fields_overlapping(ra, dec)
    found = set(fields.tolist())
    assert fields[0] == 1
    assert sampled_fields(wcs, n=401) <= found
    ring1 = set(range(2, 10))
    assert ring1 & found == ring1 - {field_of(225.0, 89.9)}
    # Nothing south of ring 1: the image ends at Dec 89.91 towards RA 45.
    assert found <= ring1 | {1}


def test_sca_next_to_the_south_pole_without_the_pole():
    ra, dec, wcs = sca_footprint(300.0, -89.9, rotation=70.0)
    fields = fields_overlapping(ra, dec)
    assert fields[-1] == NFIELDS  # its southern edge dips into the cap
    assert sampled_fields(wcs, n=401) <= set(fields.tolist())
    _, _, dec_min, dec_max = tile_bounds(fields[:-1])
    assert dec_max.max() >= -89.9 + 0.06 and dec_min.min() < -89.9


def test_random_footprints_never_miss_a_sampled_tile():
    rng = np.random.default_rng(11)
    extra = 0
    for trial in range(40):
        ra0 = rng.uniform(0.0, 360.0)
        dec0 = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0))) if trial % 4 else rng.uniform(88.5, 90.0)
        aspect = rng.uniform(0.3, 1.0)
        ra, dec, wcs = sca_footprint(ra0, dec0, rotation=rng.uniform(0, 360), aspect=aspect)
        found = set(fields_overlapping(ra, dec).tolist())
        sampled = sampled_fields(wcs, aspect=aspect, n=121)
        assert sampled <= found
        extra += len(found - sampled)
    # The method includes only tiles that really overlap; a coarse sample misses few of them.
    assert extra <= 10


def test_footprint_of_one_point_is_its_field():
    assert fields_overlapping([10.0] * 4, [5.0] * 4).tolist() == [field_of(10.0, 5.0)]
    assert fields_overlapping([0.0] * 4, [90.0] * 4).tolist() == [1]


def test_footprint_validation():
    with pytest.raises(ValueError, match="ra_corners"):
        fields_overlapping([1.0, 2.0, 3.0], [0.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="dec_corners"):
        fields_overlapping([1.0, 1.1, 1.1, 1.0], [0.0, 0.0, 91.0, 0.1])
    with pytest.raises(ValueError, match="convex"):
        # Corners out of order: the edges cross.
        fields_overlapping([1.0, 1.1, 1.0, 1.1], [0.0, 0.0, 0.1, 0.1])
    with pytest.raises(ValueError, match="at most 30"):
        fields_overlapping([0.0, 60.0, 60.0, 0.0], [0.0, 0.0, 60.0, 60.0])
    with pytest.raises(ValueError, match="small footprint"):
        fields_overlapping([0.0, 90.0, 180.0, 270.0], [0.0, 0.0, 0.0, 0.0])


def test_unit_vector_and_cone_test():
    x, y, z = unit_vector(90.0, 0.0)
    assert (x, y, z) == pytest.approx((0.0, 1.0, 0.0), abs=1e-15)
    assert unit_vector(0.0, 90.0) == pytest.approx((0.0, 0.0, 1.0), abs=1e-15)
    xs, ys, zs = unit_vector(np.array([10.0, 10.05]), np.array([20.0, 20.0]))
    np.testing.assert_allclose(xs**2 + ys**2 + zs**2, 1.0)
    cos_sep = xs[0] * xs[1] + ys[0] * ys[1] + zs[0] * zs[1]
    assert np.degrees(np.arccos(cos_sep)) == pytest.approx(0.05 * np.cos(np.radians(20.0)), rel=1e-6)
    with pytest.raises(ValueError, match="dec"):
        unit_vector(0.0, -91.0)


def test_angular_separation():
    assert angular_separation_deg(10.0, 0.0, 11.0, 0.0) == pytest.approx(1.0)
    assert angular_separation_deg(359.5, 0.0, 0.5, 0.0) == pytest.approx(1.0)
    assert angular_separation_deg(0.0, 90.0, 123.0, 89.0) == pytest.approx(1.0)
    assert angular_separation_deg(0.0, 0.0, 180.0, 0.0) == pytest.approx(180.0)
    assert angular_separation_deg(0.0, 0.0, 0.0, 1e-9) == pytest.approx(1e-9, rel=1e-6)
    seps = angular_separation_deg(np.zeros(3), np.zeros(3), [0.0, 1.0, 2.0], 0.0)
    np.testing.assert_allclose(seps, [0.0, 1.0, 2.0])


def test_long_footprint_bent_round_the_pole_skips_the_tiles_between_its_ends():
    # 0.9 x 0.36 deg image curving round the south pole: ring 2040 meets it in two separate
    # RA ranges, and the tiles between them (RA 59 .. 76) lie outside it.
    ra, dec, wcs = sca_footprint(87.55757, -89.48046, size=2 * 0.4626, rotation=251.2417, aspect=0.39)
    fields = set(fields_overlapping(ra, dec).tolist())
    assert sampled_fields(wcs, aspect=0.39, n=401) <= fields
    gap = {ring_first_field(2040) + i for i in (11, 12, 13)}
    assert not gap & fields
    assert {ring_first_field(2040) + i for i in (9, 15)} <= fields
