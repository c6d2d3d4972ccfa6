"""A celestial WCS re-expressed in ICRS right ascension and declination.

Everything downstream of the readers (resampling one image onto another, the sky tiles, the
catalogs' ra/dec) takes a WCS's world coordinates to be ICRS. Images in other frames (galactic,
ecliptic, FK4 B1950, FK5 at another equinox) are turned into ICRS once, when read.

A change of celestial frame is a rotation of the sphere (up to FK4's E-terms of aberration, at
most 0.34" and nearly constant across an image), and so is the step from a projection's native
spherical coordinates to celestial ones (Calabretta & Greisen 2002, eq. 2). Their composition is
again such a rotation: the same projection, distortion and pixel grid with a new reference
value, LONPOLE and LATPOLE describe the image exactly in ICRS.

FK5 at equinox J2000 is taken as ICRS: the two differ by under 0.03", and a header that says
FK5 J2000 was most often calibrated on an ICRS catalogue (Gaia), so that moving it by the frame
tie would make it worse, not better.
"""

from __future__ import annotations

import numpy as np
from astropy import units as u
from astropy.coordinates import (FK5, ICRS, BarycentricMeanEcliptic, Galactic, SkyCoord,
                                 Supergalactic)
from astropy.time import Time
from astropy.wcs import WCS
from astropy.wcs.utils import wcs_to_celestial_frame


def celestial_frame(wcs: WCS):
    """The astropy frame of a WCS's celestial axes, from their CTYPE, RADESYS and EQUINOX.

    Raises ValueError for a frame that is not on the sky (planetary, solar, unknown)."""
    kind = wcs.wcs.ctype[wcs.wcs.lng][:4].rstrip("-").upper()
    if kind == "RA":
        return wcs_to_celestial_frame(wcs)  # ICRS, FK5, FK4 by RADESYS and EQUINOX
    if kind == "GLON":
        return Galactic()
    if kind == "SLON":
        return Supergalactic()
    if kind == "ELON":
        # the mean ecliptic and equinox of EQUINOX (J2000 when absent), seen from the solar
        # system's barycentre: the frame of fixed sources
        equinox = wcs.wcs.equinox
        return BarycentricMeanEcliptic(
            equinox=Time(equinox if np.isfinite(equinox) else 2000.0, format="jyear"))
    raise ValueError(f"celestial axes {wcs.wcs.ctype[wcs.wcs.lng]!r} / "
                     f"{wcs.wcs.ctype[wcs.wcs.lat]!r} are not in a frame on the sky "
                     "(RA/DEC, GLON/GLAT, ELON/ELAT or SLON/SLAT)")


def _taken_as_icrs(frame) -> bool:
    return isinstance(frame, ICRS) or (isinstance(frame, FK5)
                                       and abs(frame.equinox.jyear - 2000.0) < 1e-6)


def _to_icrs(frame, lon_deg, lat_deg) -> tuple[np.ndarray, np.ndarray]:
    c = SkyCoord(np.atleast_1d(lon_deg) * u.deg, np.atleast_1d(lat_deg) * u.deg,
                 frame=frame).icrs
    return c.ra.deg, c.dec.deg


def _native_longitude(lon, lat, euler) -> float:
    """Native longitude (deg) of the point (lon, lat) of the celestial frame whose native pole
    is at (alpha_p, delta_p) with the celestial pole at native longitude phi_p (C&G eq. 5)."""
    ap, dp, pp = np.radians(euler[0]), np.radians(90.0 - euler[1]), euler[2]
    a, d = np.radians(lon), np.radians(lat)
    return float(pp + np.degrees(np.arctan2(
        -np.cos(d) * np.sin(a - ap),
        np.sin(d) * np.cos(dp) - np.cos(d) * np.sin(dp) * np.cos(a - ap))))


def _longitude_first(wcs: WCS) -> WCS:
    """A copy of ``wcs`` whose first world axis is the longitude: the rows of its linear
    transformation swapped when the header lists latitude first. The pixel axes (and so SIP,
    which acts on pixels) are unchanged."""
    out = wcs.deepcopy()
    if out.wcs.lng == 1:
        w = out.wcs
        if w.has_cd():
            w.cd = w.cd[::-1]
        else:
            w.pc, w.cdelt = w.get_pc()[::-1], w.cdelt[::-1]
        w.crval, w.ctype, w.cunit = w.crval[::-1], list(w.ctype)[::-1], list(w.cunit)[::-1]
        w.set()
    return out


def in_icrs(wcs: WCS) -> WCS:
    """``wcs`` itself when its world coordinates are ICRS (or FK5 J2000) right ascension and
    declination, else an equivalent copy that gives them.

    Parameters
    ----------
    wcs : astropy.wcs.WCS
        A two-axis celestial WCS (SIP and other distortions are kept as they are).

    Returns
    -------
    astropy.wcs.WCS
        World axes (RA, Dec) in that order, RADESYS ICRS.

    Raises
    ------
    ValueError
        When the celestial frame is not one on the sky (:func:`celestial_frame`).
    """
    frame = celestial_frame(wcs)
    if _taken_as_icrs(frame) and wcs.wcs.lng == 0:
        return wcs
    out = _longitude_first(wcs)
    if _taken_as_icrs(frame):
        return out
    euler = np.array(out.wcs.cel.euler)
    ref_ra, ref_dec = _to_icrs(frame, *out.wcs.crval)
    _, pole_dec = _to_icrs(frame, euler[0], 90.0 - euler[1])
    # the ICRS north pole in the image's frame, and where it lies in native coordinates
    north = SkyCoord(0.0 * u.deg, 90.0 * u.deg, frame="icrs").transform_to(frame)
    sph = north.represent_as("unitspherical")
    lonpole = _native_longitude(sph.lon.deg, sph.lat.deg, euler)

    w = out.wcs
    w.ctype = ["RA--" + w.ctype[0][4:], "DEC-" + w.ctype[1][4:]]
    w.crval = [ref_ra[0], ref_dec[0]]
    w.lonpole = (lonpole + 180.0) % 360.0 - 180.0
    w.latpole = float(pole_dec[0])
    w.radesys = "ICRS"
    w.equinox = np.nan
    w.set()
    return out
