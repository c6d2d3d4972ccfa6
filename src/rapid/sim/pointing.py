"""Survey geometry: the tiles aimed at, exposure times, dithers, rolls and per-SCA WCS.

GalSim's ``galsim.roman.getWCS`` places the focal-plane centre, refuses positions that Roman may
not observe on the given date, and picks the roll itself unless given one. Here the roll
(position angle of the focal plane) is always given explicitly, so the date only serves
GalSim's observability check: the *WCS date* is the exposure's DATE-OBS when Roman may observe
the target then, otherwise the nearest day (searching forwards and backwards) on which it may.
DATE-OBS in the written headers always follows the survey cadence.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

import coord
import galsim
import galsim.roman as roman
import numpy as np

from rapid.sky.tiles import field_of, field_ring_index, tile_center

#: Seconds between the starts of consecutive exposures in one visit (exposure plus slew).
VISIT_STEP_S = 180.0
#: Keep this many degrees inside GalSim's allowed Sun-angle band, so the whole focal plane
#: (about 0.5 degrees off the SCA) passes GalSim's check too.
_SUN_MARGIN_DEG = 2.0


@dataclass(frozen=True)
class Exposure:
    """One pointing: a field observed at one epoch in one filter."""

    expid: int
    field: int
    field_index: int
    epoch: int
    filter: str
    dateobs: _dt.datetime
    mjd: float
    target_ra: float
    target_dec: float
    pa_fpa_deg: float
    wcs_date: _dt.datetime


def choose_fields(ra: float, dec: float, n: int) -> list[int]:
    """``n`` neighbouring tiles of one declination ring, starting with the tile holding (ra, dec).

    Parameters
    ----------
    ra, dec : float
        Sky position in degrees.
    n : int
        Number of fields (at least 1).

    Returns
    -------
    list of int
        Field numbers: the tile of (ra, dec), then its ring neighbours east, west, east, ...
    """
    if n < 1:
        raise ValueError(f"fields must be >= 1, got {n!r}")
    f0 = int(np.atleast_1d(field_of(ra, dec))[0])
    ring0 = int(np.atleast_1d(field_ring_index(np.array([f0]))[0])[0])
    out = [f0]
    step = 1
    while len(out) < n and step < 100000:
        for cand in (f0 + step, f0 - step):
            if len(out) < n and 1 <= cand <= 6291458:
                ring = int(np.atleast_1d(field_ring_index(np.array([cand]))[0])[0])
                if ring == ring0 and cand not in out:
                    out.append(cand)
        step += 1
    if len(out) < n:
        raise ValueError(f"fields={n} exceeds the tiles of the ring at dec={dec}")
    return out


def field_center(field: int) -> tuple[float, float]:
    """Tile centre (ra, dec) in degrees of one field."""
    ra, dec = tile_center(np.array([int(field)]))
    return float(np.atleast_1d(ra)[0]), float(np.atleast_1d(dec)[0])


def mjd_of(when: _dt.datetime) -> float:
    """Modified Julian Date of a naive UTC datetime."""
    return (when - _dt.datetime(1858, 11, 17)).total_seconds() / 86400.0


def observable_date(ra: float, dec: float, when: _dt.datetime) -> _dt.datetime:
    """The day nearest ``when`` on which Roman may point at (ra, dec), with a margin."""
    pos = galsim.CelestialCoord(ra * galsim.degrees, dec * galsim.degrees)
    for k in range(0, 367):
        for sign in ((1,) if k == 0 else (1, -1)):
            date = when + _dt.timedelta(days=sign * k)
            lam = coord.util.sun_position_ecliptic(date)
            sun = coord.CelestialCoord.from_ecliptic(lam, 0 * coord.radians, date.year)
            angle = pos.distanceTo(sun) / coord.degrees
            if abs(angle - 90.0) <= roman.max_sun_angle - _SUN_MARGIN_DEG:
                return date
    raise ValueError(f"Roman can never observe ra={ra}, dec={dec}")


def offset_position(ra: float, dec: float, du_arcsec: float, dv_arcsec: float
                    ) -> tuple[float, float]:
    """Position offset by (du east, dv north) arcsec in the tangent plane at (ra, dec)."""
    centre = galsim.CelestialCoord(ra * galsim.degrees, dec * galsim.degrees)
    # GalSim's tangent-plane u axis grows to the west, hence the sign.
    pos = centre.deproject(-du_arcsec * galsim.arcsec, dv_arcsec * galsim.arcsec)
    return pos.ra.deg % 360.0, pos.dec.deg


def plan_exposures(fields: list[int], filters: tuple[str, ...], epochs: int, *, start: _dt.datetime,
                   cadence_days: float, dither_arcsec: float, roll_step_deg: tuple[float, float],
                   seed: int) -> list[Exposure]:
    """All exposures of the survey in time order, with their dithered targets and rolls.

    Epoch ``e`` of the survey begins at ``start + e * cadence_days``; within an epoch, fields
    are visited in order and each field's filters back to back, ``VISIT_STEP_S`` apart. Each
    (field, epoch) gets one random dither (uniform in a disc of radius ``dither_arcsec``) and one
    roll; the roll moves by a random ``roll_step_deg`` (either sign) from one epoch to the next.
    """
    exposures = []
    nf = len(filters)
    geometry = {}
    for k, field in enumerate(fields):
        rng = np.random.default_rng([seed, 1, field])
        pa = rng.uniform(0.0, 360.0)
        for e in range(epochs):
            if e > 0:
                pa += rng.choice((-1.0, 1.0)) * rng.uniform(*roll_step_deg)
            r = dither_arcsec * np.sqrt(rng.uniform())
            phi = rng.uniform(0.0, 2 * np.pi)
            geometry[(k, e)] = (pa % 360.0, r * np.cos(phi), r * np.sin(phi))
    expid = 0
    for e in range(epochs):
        for k, field in enumerate(fields):
            ra0, dec0 = field_center(field)
            pa, du, dv = geometry[(k, e)]
            ra, dec = offset_position(ra0, dec0, du, dv)
            for j, filt in enumerate(filters):
                expid += 1
                when = start + _dt.timedelta(days=e * cadence_days,
                                             seconds=(k * nf + j) * VISIT_STEP_S)
                exposures.append(Exposure(
                    expid=expid, field=field, field_index=k, epoch=e, filter=filt,
                    dateobs=when, mjd=mjd_of(when), target_ra=ra, target_dec=dec,
                    pa_fpa_deg=pa, wcs_date=observable_date(ra, dec, when)))
    return exposures


def sca_wcs(target_ra: float, target_dec: float, *, sca: int, pa_fpa_deg: float,
            wcs_date: _dt.datetime, aim_sca: int, aim_pixel: tuple[float, float]
            ) -> galsim.GSFitsWCS:
    """Full-frame WCS of ``sca`` for a pointing whose ``aim_sca`` pixel lands on the target.

    Parameters
    ----------
    target_ra, target_dec : float
        Where the aimed pixel should point, degrees.
    sca : int
        SCA whose WCS is returned.
    pa_fpa_deg : float
        Position angle of the focal plane, degrees.
    wcs_date : datetime
        A date on which Roman may observe the target (see the module docstring).
    aim_sca : int
        SCA whose ``aim_pixel`` is placed on the target.
    aim_pixel : tuple of float
        One-based full-frame (x, y) of the aimed pixel.

    Returns
    -------
    galsim.GSFitsWCS
        One-based full-frame WCS (CRPIX 2044, 2044) carrying its FITS header.
    """
    target = galsim.CelestialCoord(target_ra * galsim.degrees, target_dec * galsim.degrees)
    pa = pa_fpa_deg * galsim.degrees
    fpa = roman.convertCenter(target, int(aim_sca), PA=pa, date=wcs_date, PA_is_FPA=True)
    aim = galsim.PositionD(*aim_pixel)
    # convertCenter stops at 0.5 arcsec and aims at pixel 2044; refine to 1e-4 arcsec.
    for _ in range(20):
        wcs = roman.getWCS(fpa, PA=pa, date=wcs_date, SCAs=[aim_sca], PA_is_FPA=True)[aim_sca]
        got = wcs.toWorld(aim)
        if target.distanceTo(got) / galsim.arcsec < 1e-4:
            break
        du, dv = target.project(got)
        fu, fv = target.project(fpa)
        fpa = target.deproject(fu - du, fv - dv)
    if sca == aim_sca:
        return wcs
    return roman.getWCS(fpa, PA=pa, date=wcs_date, SCAs=[sca], PA_is_FPA=True)[sca]
