"""hp6 / hp9: HEALPix NESTED indices."""

import astropy.units as u
import numpy as np
import pytest
from astropy_healpix import HEALPix

from rapid.sky import hp6, hp9, hp_index


def test_base_pixels_of_order_0():
    # HEALPix's 12 base pixels: 0-3 north (centred on RA 45, 135, ...), 4-7 equatorial
    # (centred on RA 0, 90, ...), 8-11 south.
    assert hp_index(45.0, 41.8, 0) == 0
    assert hp_index(135.0, 41.8, 0) == 1
    assert hp_index(0.0, 0.0, 0) == 4
    assert hp_index(90.0, 0.0, 0) == 5
    assert hp_index(45.0, -41.8, 0) == 8
    assert hp_index(315.0, -41.8, 0) == 11


def test_matches_astropy_healpix_nested():
    rng = np.random.default_rng(5)
    ra = rng.uniform(0.0, 360.0, 1000)
    dec = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, 1000)))
    for order, func in ((6, hp6), (9, hp9)):
        ref = HEALPix(nside=2**order, order="nested").lonlat_to_healpix(ra * u.deg, dec * u.deg)
        got = func(ra, dec)
        assert got.dtype == np.int64
        assert np.array_equal(got, ref)
    assert hp9(11.1, -43.8) == int(HEALPix(nside=512, order="nested").lonlat_to_healpix(11.1 * u.deg, -43.8 * u.deg))


def test_nesting_and_ranges():
    rng = np.random.default_rng(6)
    ra = rng.uniform(-180.0, 540.0, 2000)
    dec = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, 2000)))
    h6, h9 = hp6(ra, dec), hp9(ra, dec)
    assert np.array_equal(h9 // 64, h6)
    assert h6.min() >= 0 and h6.max() < 12 * 4**6
    assert h9.min() >= 0 and h9.max() < 12 * 4**9
    # RA outside [0, 360) is folded first.
    assert hp9(-10.0, 5.0) == hp9(350.0, 5.0)
    assert isinstance(hp6(10.0, 5.0), int)


def test_validation():
    with pytest.raises(ValueError, match="order"):
        hp_index(0.0, 0.0, 30)
    with pytest.raises(ValueError, match="order"):
        hp_index(0.0, 0.0, 6.0)
    with pytest.raises(ValueError, match="dec"):
        hp6(0.0, 95.0)
    with pytest.raises(ValueError, match="ra"):
        hp9(np.nan, 0.0)
