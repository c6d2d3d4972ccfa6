"""Read what the operations database needs from an L2 FITS image, without reading its pixels.

RAPID's simulated layout: the image in HDU 1 (or the HDU named ``SCI``), with DATE-OBS (or MJD-OBS),
EXPTIME, FILTER, SCA, ZPTMAG and a TAN-SIP WCS in its header (keywords may also sit in the primary
header); optionally a PSFFILE keyword naming a PSF file beside the image.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning

from rapid.ingest.filters import canonical_filter
from rapid.io.celestial import in_icrs
from rapid.io.fits_frame import find_science_hdu, is_image_hdu
from rapid.io.obstime import observation_time

SIP_KEY = re.compile(r"^(A|B|AP|BP)_(\d+_\d+|ORDER|DMAX)$")


class L2Error(ValueError):
    """An L2 file that cannot be ingested; the message names the problem."""


@dataclass(frozen=True)
class L2Header:
    """The facts of one L2 image that ingest registers."""

    dateobs: datetime
    mjdobs: float
    exptime: float
    filter: str
    sca: int
    zptmag: float | None
    naxis1: int
    naxis2: int
    wcs: dict  # CRVAL/CRPIX/CD/CTYPE values
    sip: dict  # A_/B_/AP_/BP_ keywords
    ra0: float
    dec0: float
    ra_corners: tuple[float, float, float, float]
    dec_corners: tuple[float, float, float, float]
    psffile: str | None


def _image_hdu(hdul: fits.HDUList) -> int:
    """The science image's HDU, chosen as the science job's reader chooses it; where no image
    HDU has a WCS of its own, the first image (its WCS may sit in the primary header)."""
    img, _ = find_science_hdu(hdul)
    if img is None:
        img = next((hdu for hdu in hdul if is_image_hdu(hdu)), None)
    if img is None:
        raise L2Error("no 2-D image HDU")
    return hdul.index_of(img)


def _sca(header: fits.Header) -> int:
    for key in ("SCA", "SCA_NUM", "SCANUM", "DETECTOR"):
        if key in header:
            match = re.search(r"(\d+)", str(header[key]))
            if match and 1 <= int(match.group(1)) <= 18:
                return int(match.group(1))
            raise L2Error(f"{key} = {header[key]!r} is not an SCA number 1..18")
    raise L2Error("missing SCA")


def wcs_columns(wcs: WCS, header) -> dict:  # noqa: ANN001
    """The l2files WCS columns (CRVAL, CRPIX, CD, CTYPE) of a celestial WCS and its header."""
    cd = wcs.wcs.cd if wcs.wcs.has_cd() else wcs.pixel_scale_matrix
    return {
        "crval1": float(wcs.wcs.crval[0]), "crval2": float(wcs.wcs.crval[1]),
        "crpix1": float(wcs.wcs.crpix[0]), "crpix2": float(wcs.wcs.crpix[1]),
        "cd1_1": float(cd[0, 0]), "cd1_2": float(cd[0, 1]),
        "cd2_1": float(cd[1, 0]), "cd2_2": float(cd[1, 1]),
        "ctype1": str(header.get("CTYPE1", wcs.wcs.ctype[0])),
        "ctype2": str(header.get("CTYPE2", wcs.wcs.ctype[1])),
    }


def find_psf_file(image: Path, name: str, filt: str) -> str | None:
    """The PSF file a PSFFILE keyword names: relative to the image's folder, else in a ``psfs``
    folder (or its filter sub-folder) beside the image or up to three levels above it."""
    candidates = [image.parent / name]
    base = Path(name).name
    for ancestor in list(image.parents)[:4]:
        candidates += [ancestor / "psfs" / filt / base, ancestor / "psfs" / base]
    for candidate in candidates:
        if candidate.is_file():
            return str(candidate.resolve())
    return None


def read_l2_header(path: str | Path) -> L2Header:
    """Parse the header of an L2 FITS image.

    Parameters
    ----------
    path : path
        The FITS file.

    Returns
    -------
    L2Header

    Raises
    ------
    L2Error
        Unreadable file, no image, or missing DATE-OBS (and MJD-OBS), EXPTIME, FILTER, SCA or
        celestial WCS.
    """
    path = Path(path)
    try:
        with fits.open(path, memmap=False) as hdul:
            hdul.verify("silentfix")
            index = _image_hdu(hdul)
            header = hdul[0].header.copy() if index > 0 else fits.Header()
            header.update(hdul[index].header)
    except L2Error:
        raise
    except Exception as exc:  # astropy raises many kinds for a damaged file
        raise L2Error(f"not a readable FITS file ({type(exc).__name__}: {exc})") from None

    try:
        dateobs, mjdobs = observation_time(header)
    except ValueError as exc:
        raise L2Error(str(exc)) from None
    if "EXPTIME" not in header:
        raise L2Error("missing EXPTIME")
    exptime = float(header["EXPTIME"])
    if not exptime > 0:
        raise L2Error(f"EXPTIME must be positive, got {exptime}")
    if "FILTER" not in header:
        raise L2Error("missing FILTER")
    try:
        filt = canonical_filter(header["FILTER"])
    except ValueError as exc:
        raise L2Error(str(exc)) from None
    sca = _sca(header)
    nx, ny = int(header["NAXIS1"]), int(header["NAXIS2"])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        try:
            wcs = WCS(header, naxis=2)
        except Exception as exc:
            raise L2Error(f"unusable WCS ({exc})") from None
    if not wcs.has_celestial:
        raise L2Error("missing celestial WCS (CTYPE RA---TAN / DEC--TAN)")
    try:
        sky = in_icrs(wcs)  # the footprint is looked up among ICRS sky tiles
    except ValueError as exc:
        raise L2Error(str(exc)) from None
    xs = np.array([(nx - 1) / 2, 0, nx - 1, nx - 1, 0], dtype=float)
    ys = np.array([(ny - 1) / 2, 0, 0, ny - 1, ny - 1], dtype=float)
    ra, dec = sky.all_pix2world(xs, ys, 0)
    if not (np.all(np.isfinite(ra)) and np.all(np.isfinite(dec))):
        raise L2Error("WCS gives no sky position for the image corners")
    ra = np.mod(ra, 360.0)
    wcs_fields = wcs_columns(wcs, header)
    sip = {key: header[key] for key in header if SIP_KEY.match(key)}
    psffile = find_psf_file(path, str(header["PSFFILE"]).strip(), filt) \
        if header.get("PSFFILE") else None
    return L2Header(
        dateobs=dateobs, mjdobs=mjdobs, exptime=exptime, filter=filt, sca=sca,
        zptmag=float(header["ZPTMAG"]) if "ZPTMAG" in header else None,
        naxis1=nx, naxis2=ny, wcs=wcs_fields, sip=sip,
        ra0=float(ra[0]), dec0=float(dec[0]),
        ra_corners=tuple(float(v) for v in ra[1:]),  # type: ignore[arg-type]
        dec_corners=tuple(float(v) for v in dec[1:]),  # type: ignore[arg-type]
        psffile=psffile,
    )
