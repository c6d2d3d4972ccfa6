"""Start of an exposure from a FITS header."""

from datetime import datetime, timezone

import pytest
from astropy.io import fits

from rapid.io.obstime import observation_mjd, observation_time


def _header(**cards):
    h = fits.Header()
    for key, value in cards.items():
        h[key.replace("_", "-")] = value
    return h


def test_date_obs_gives_the_moment_and_the_mjd():
    moment, mjd = observation_time(_header(DATE_OBS="2028-09-07T12:00:00"))
    assert moment == datetime(2028, 9, 7, 12, tzinfo=timezone.utc)
    assert mjd == pytest.approx(62021.5)
    # a zone is honoured, UTC otherwise
    moment, mjd = observation_time(_header(DATE_OBS="2028-09-07T14:00:00+02:00"))
    assert moment == datetime(2028, 9, 7, 12, tzinfo=timezone.utc) and mjd == pytest.approx(62021.5)


def test_a_date_alone_takes_its_time_from_time_obs():
    moment, mjd = observation_time(_header(DATE_OBS="2028-09-07", TIME_OBS="06:00:00"))
    assert moment == datetime(2028, 9, 7, 6, tzinfo=timezone.utc)
    assert mjd == pytest.approx(62021.25)


def test_mjd_obs_gives_the_mjd_and_stands_in_for_date_obs():
    assert observation_time(_header(DATE_OBS="2028-09-07T12:00:00", MJD_OBS=62021.5001))[1] \
        == 62021.5001
    moment, mjd = observation_time(_header(MJD_OBS=62021.75))
    assert moment == datetime(2028, 9, 7, 18, tzinfo=timezone.utc) and mjd == 62021.75


@pytest.mark.parametrize("cards, message", [
    ({}, "missing DATE-OBS"),
    ({"DATE_OBS": "7 Sept 2028"}, "DATE-OBS '7 Sept 2028' is not an ISO 8601 time"),
    ({"DATE_OBS": "2028-09-07T12:00:00", "MJD_OBS": "soon"}, "MJD-OBS 'soon' is not a number"),
])
def test_what_cannot_be_read_is_named(cards, message):
    with pytest.raises(ValueError, match=message):
        observation_time(_header(**cards))
    assert observation_mjd(_header(**cards)) is None
