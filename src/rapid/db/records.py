"""Small frozen records handed to the named operations of :mod:`rapid.db.operations`.

Field names are the column names of the tables they fill, so a record reads like its row.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

__all__ = ["Footprint", "L2FileRecord", "RefImageMeta", "RefImageCatalog", "RefImageRecord",
           "DiffImageMeta", "DiffImageRecord", "unit_vector", "corner_columns"]


def unit_vector(ra_deg: float, dec_deg: float) -> tuple[float, float, float]:
    """Cartesian unit vector of a sky position.

    Parameters
    ----------
    ra_deg, dec_deg : float
        Right ascension and declination in degrees.

    Returns
    -------
    tuple of float
        ``(x, y, z)`` with ``z = sin(dec)``.
    """
    ra, dec = math.radians(ra_deg), math.radians(dec_deg)
    return (math.cos(dec) * math.cos(ra), math.cos(dec) * math.sin(ra), math.sin(dec))


def _four(values: tuple[float, ...], name: str) -> tuple[float, float, float, float]:
    out = tuple(float(v) for v in values)
    if len(out) != 4:
        raise ValueError(f"{name} must hold 4 corners, got {len(out)}")
    return out  # type: ignore[return-value]


@dataclass(frozen=True)
class Footprint:
    """Centre, four corners (degrees), centre unit vector and HEALPix indices of an image.

    Build it with :meth:`from_corners` to have the unit vector computed.
    """

    ra0: float
    dec0: float
    ra_corners: tuple[float, float, float, float]
    dec_corners: tuple[float, float, float, float]
    x: float
    y: float
    z: float
    hp6: int
    hp9: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "ra_corners", _four(self.ra_corners, "ra_corners"))
        object.__setattr__(self, "dec_corners", _four(self.dec_corners, "dec_corners"))

    @classmethod
    def from_corners(cls, *, ra0: float, dec0: float, ra_corners: tuple[float, ...],
                     dec_corners: tuple[float, ...], hp6: int, hp9: int) -> Footprint:
        """Footprint whose unit vector is computed from the centre.

        Parameters
        ----------
        ra0, dec0 : float
            Centre in degrees.
        ra_corners, dec_corners : tuple of 4 float
            Corners in degrees.
        hp6, hp9 : int
            HEALPix NESTED indices of the centre at orders 6 and 9.

        Returns
        -------
        Footprint
        """
        x, y, z = unit_vector(ra0, dec0)
        return cls(ra0=ra0, dec0=dec0, ra_corners=tuple(ra_corners),  # type: ignore[arg-type]
                   dec_corners=tuple(dec_corners), x=x, y=y, z=z,  # type: ignore[arg-type]
                   hp6=hp6, hp9=hp9)

    def corner_columns(self) -> dict[str, float]:
        """``ra0, dec0, ra1, dec1, .. ra4, dec4`` as a column-name mapping."""
        return corner_columns(self.ra0, self.dec0, self.ra_corners, self.dec_corners)


@dataclass(frozen=True)
class L2FileRecord:
    """One L2 science image (one SCA of one exposure) to register in ``l2files``."""

    expid: int
    sca: int
    fid: int
    field: int
    filename: str
    checksum: str
    dateobs: datetime
    mjdobs: float
    exptime: float
    naxis1: int
    naxis2: int
    crval1: float
    crval2: float
    crpix1: float
    crpix2: float
    cd1_1: float
    cd1_2: float
    cd2_1: float
    cd2_2: float
    ctype1: str
    ctype2: str
    meta: Footprint
    a_order: int = 0
    b_order: int = 0
    ap_order: int = 0
    bp_order: int = 0
    sip: Mapping[str, float] = field(default_factory=dict)
    zptmag: float | None = None
    psffile: str | None = None
    infobits: int = 0


@dataclass(frozen=True)
class RefImageMeta:
    """Statistics of a reference image (``refimmeta``); unknown values stay None."""

    nframes: int | None = None
    mjdobsmin: float | None = None
    mjdobsmax: float | None = None
    npixsat: int | None = None
    npixnan: int | None = None
    clmean: float | None = None
    clstddev: float | None = None
    clnoutliers: int | None = None
    gmedian: float | None = None
    gmin: float | None = None
    gmax: float | None = None
    cov5percent: float | None = None
    medncov: float | None = None
    medpixunc: float | None = None
    fwhmmed: float | None = None
    fwhmmin: float | None = None
    fwhmmax: float | None = None
    nsexcatsources: int | None = None


@dataclass(frozen=True)
class RefImageCatalog:
    """A catalog of a reference image: cattype 1 extraction, 2 PSF-fit."""

    cattype: int
    filename: str
    checksum: str
    ppid: int = 15
    status: int = 1


@dataclass(frozen=True)
class RefImageRecord:
    """A reference image of a sky tile and filter, with its inputs and catalogs."""

    field: int
    fid: int
    filename: str
    checksum: str
    covfile: str | None = None
    uncfile: str | None = None
    psffile: str | None = None
    ppid: int = 15
    status: int = 1
    infobits: int = 0
    meta: RefImageMeta | None = None
    input_rids: tuple[int, ...] = ()
    catalogs: tuple[RefImageCatalog, ...] = ()


@dataclass(frozen=True)
class DiffImageMeta:
    """Figures of a difference image (``diffimmeta``); unknown values stay None."""

    ncandidates: int | None = None
    npositive: int | None = None
    nnegative: int | None = None
    catfilename: str | None = None
    catchecksum: str | None = None
    scalefacref: float | None = None
    dxrmsfin: float | None = None
    dyrmsfin: float | None = None
    dxmedianfin: float | None = None
    dymedianfin: float | None = None
    nmatched: int | None = None
    scorrstd: float | None = None


@dataclass(frozen=True)
class DiffImageRecord:
    """A difference image of one L2 image (``rid``) against a reference (``rfid``)."""

    rid: int
    expid: int
    sca: int
    fid: int
    field: int
    mjdobs: float
    ra0: float
    dec0: float
    ra_corners: tuple[float, float, float, float]
    dec_corners: tuple[float, float, float, float]
    filename: str
    checksum: str
    rfid: int | None = None
    ppid: int = 15
    status: int = 1
    infobitssci: int = 0
    infobitsref: int = 0
    nalertpackets: int = 0
    meta: DiffImageMeta | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "ra_corners", _four(self.ra_corners, "ra_corners"))
        object.__setattr__(self, "dec_corners", _four(self.dec_corners, "dec_corners"))


def corner_columns(ra0: float, dec0: float, ra_corners: tuple[float, ...],
                   dec_corners: tuple[float, ...]) -> dict[str, float]:
    """``ra0, dec0, ra1, dec1, .. ra4, dec4`` as a column-name mapping.

    Parameters
    ----------
    ra0, dec0 : float
        Centre in degrees.
    ra_corners, dec_corners : tuple of 4 float
        Corners in degrees.

    Returns
    -------
    dict of str to float
    """
    out: dict[str, float] = {"ra0": float(ra0), "dec0": float(dec0)}
    ras, decs = _four(tuple(ra_corners), "ra_corners"), _four(tuple(dec_corners), "dec_corners")
    for i, (ra, dec) in enumerate(zip(ras, decs), start=1):
        out[f"ra{i}"], out[f"dec{i}"] = ra, dec
    return out
