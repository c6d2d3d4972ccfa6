"""Pointing: neighbouring tiles, dithers around the tile centre, rolls changing per epoch."""

import datetime as dt

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from rapid.sim.pointing import choose_fields, field_center, observable_date
from rapid.sky.tiles import field_of


def test_fields_are_ring_neighbours():
    fields = choose_fields(9.6, -44.0, 3)
    assert fields[0] == int(np.atleast_1d(field_of(9.6, -44.0))[0])
    assert sorted(fields) == [fields[0] - 1, fields[0], fields[0] + 1]
    decs = {round(field_center(f)[1], 9) for f in fields}
    assert len(decs) == 1


def test_observable_date_moves_only_when_needed():
    start = dt.datetime(2028, 9, 7)
    date = observable_date(9.6, -44.0, start)
    assert date != start and abs((date - start).days) < 120
    assert observable_date(9.6, -44.0, date) == date


def _orientation(header):
    # Angle of the image +y axis on the sky, east of north.
    return np.degrees(np.arctan2(header["CD1_2"], header["CD2_2"])) % 360.0


def test_centre_near_tile_and_roll_changes(survey):
    by_field = {}
    for path in survey.images:
        hdr = fits.getheader(path, 1)
        ra, dec = WCS(hdr).all_pix2world(63.5, 63.5, 0)
        tra, tdec = field_center(hdr["FIELD"])
        sep = np.hypot((ra - tra) * np.cos(np.radians(dec)), dec - tdec) * 3600.0
        # Dither radius is 3% of the 128-pixel side at 0.11"/pixel.
        assert sep <= 0.03 * 128 * 0.11 + 0.01
        by_field.setdefault(hdr["FIELD"], []).append(_orientation(hdr))
    assert len(by_field) == 2
    for angles in by_field.values():
        steps = np.abs((np.diff(angles) + 180.0) % 360.0 - 180.0)
        assert len(angles) == 6
        assert np.all(steps >= 2.5) and np.all(steps <= 20.5)
