"""Named operations on sky tiles, exposures and L2 images."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from rapid.db import schema
from rapid.db.checks import check_checksum, check_float, check_int, check_text, check_utc
from rapid.db.inserts import insert_missing
from rapid.db.records import L2FileRecord, corner_columns
from rapid.db.versioning import insert_version

__all__ = ["ensure_field", "add_exposure", "fid_of", "filter_name", "add_l2file",
           "best_l2files_between", "prior_l2files_for_tile"]

_META_COLUMNS = ("ra0", "dec0", "ra1", "dec1", "ra2", "dec2", "ra3", "dec3", "ra4", "dec4",
                 "x", "y", "z", "hp6", "hp9")


def ensure_field(conn: sa.Connection, *, field: int, ra0: float, dec0: float,
                 ra_corners: tuple[float, ...], dec_corners: tuple[float, ...], hp6: int,
                 hp9: int) -> None:
    """Insert a sky tile into ``fields`` unless it is there already.

    Parameters
    ----------
    conn : sqlalchemy.Connection
        Connection in the caller's transaction.
    field : int
        Tile index (1 .. 6,291,458 for the NSIDE 512 tessellation).
    ra0, dec0 : float
        Tile centre in degrees.
    ra_corners, dec_corners : tuple of 4 float
        Tile corners in degrees.
    hp6, hp9 : int
        HEALPix NESTED indices of the centre at orders 6 and 9.
    """
    row = {"field": check_int(field, "field", minimum=1),
           **corner_columns(ra0, dec0, ra_corners, dec_corners),
           "hp6": check_int(hp6, "hp6", minimum=0), "hp9": check_int(hp9, "hp9", minimum=0)}
    insert_missing(conn, schema.fields, [row], index_elements=["field"])


def add_exposure(conn: sa.Connection, *, dateobs: datetime, mjdobs: float, exptime: float,
                 fid: int, field: int, hp6: int, hp9: int) -> int:
    """Exposure id of the pointing observed at ``dateobs``, inserting it when new.

    Parameters
    ----------
    conn : sqlalchemy.Connection
        Connection in the caller's transaction.
    dateobs : datetime
        Timezone-aware start of the exposure; the natural key.
    mjdobs, exptime : float
        MJD of the observation and exposure time in seconds.
    fid, field : int
        Filter id and sky tile (the tile must already be in ``fields``).
    hp6, hp9 : int
        HEALPix NESTED indices of the pointing centre.

    Returns
    -------
    int
        The expid (of the existing row when ``dateobs`` is known).
    """
    when = check_utc(dateobs, "dateobs")
    if not exptime > 0:
        raise ValueError(f"exptime must be > 0, got {exptime!r}")
    row = {"dateobs": when, "mjdobs": float(mjdobs), "exptime": float(exptime),
           "fid": check_int(fid, "fid", minimum=1), "field": check_int(field, "field", minimum=1),
           "hp6": check_int(hp6, "hp6", minimum=0), "hp9": check_int(hp9, "hp9", minimum=0)}
    insert_missing(conn, schema.exposures, [row], index_elements=["dateobs"])
    e = schema.exposures
    return int(conn.execute(sa.select(e.c.expid).where(e.c.dateobs == when)).scalar_one())


def fid_of(conn: sa.Connection, filter_name: str) -> int:
    """Filter id of a filter name such as "H158".

    Parameters
    ----------
    conn : sqlalchemy.Connection
    filter_name : str

    Returns
    -------
    int
    """
    f = schema.filters
    fid = conn.execute(sa.select(f.c.fid).where(f.c.filter == filter_name)).scalar()
    if fid is None:
        known = conn.execute(sa.select(f.c.filter).order_by(f.c.fid)).scalars().all()
        raise ValueError(f"filter_name: unknown filter {filter_name!r}; known: {', '.join(known)}")
    return int(fid)


def filter_name(conn: sa.Connection, fid: int) -> str:
    """Filter name of a filter id.

    Parameters
    ----------
    conn : sqlalchemy.Connection
    fid : int

    Returns
    -------
    str
    """
    f = schema.filters
    name = conn.execute(sa.select(f.c.filter).where(f.c.fid == fid)).scalar()
    if name is None:
        raise ValueError(f"fid: unknown filter id {fid!r}")
    return str(name)


_L2_INTS = ("expid", "sca", "fid", "field", "naxis1", "naxis2", "a_order", "b_order", "ap_order",
            "bp_order", "infobits")
_L2_FLOATS = ("mjdobs", "exptime", "crval1", "crval2", "crpix1", "crpix2", "cd1_1", "cd1_2",
              "cd2_1", "cd2_2")


def _l2file_columns(rec: L2FileRecord) -> dict:
    """Column values of an L2 image, checked and converted to plain Python types (drivers do
    not adapt numpy scalars)."""
    values: dict = {name: check_int(getattr(rec, name), f"rec.{name}", minimum=0)
                    for name in _L2_INTS}
    values.update({name: check_float(getattr(rec, name), f"rec.{name}") for name in _L2_FLOATS})
    for name in ("naxis1", "naxis2", "expid", "sca", "fid", "field"):
        check_int(values[name], f"rec.{name}", minimum=1)
    values.update(
        filename=check_text(rec.filename, "rec.filename"),
        checksum=check_checksum(rec.checksum, "rec.checksum"),
        dateobs=check_utc(rec.dateobs, "rec.dateobs"),
        ctype1=check_text(rec.ctype1, "rec.ctype1"), ctype2=check_text(rec.ctype2, "rec.ctype2"),
        zptmag=None if rec.zptmag is None else check_float(rec.zptmag, "rec.zptmag"),
        psffile=rec.psffile,
        sip={str(k): check_float(v, f"rec.sip[{k!r}]") for k, v in dict(rec.sip).items()})
    return values


def add_l2file(conn: sa.Connection, rec: L2FileRecord) -> tuple[int, bool]:
    """Register an L2 image; a changed file of the same (expid, sca) becomes a new version.

    Parameters
    ----------
    conn : sqlalchemy.Connection
        Connection in the caller's transaction.
    rec : L2FileRecord
        The image, its WCS and its footprint (``rec.meta``).

    Returns
    -------
    tuple of (int, bool)
        The rid, and whether a row was inserted (False when a version with the same checksum
        was already registered).
    """
    if not isinstance(rec, L2FileRecord):
        raise ValueError(f"rec must be an L2FileRecord, got {type(rec).__name__}")
    values = _l2file_columns(rec)
    t = schema.l2files
    same = conn.execute(sa.select(t.c.rid).where(t.c.expid == values["expid"],
                                                 t.c.sca == values["sca"],
                                                 t.c.checksum == values["checksum"])
                        .order_by(t.c.version.desc())).scalar()
    if same is not None:
        return int(same), False
    new = insert_version(conn, "l2files", values)
    m = rec.meta
    conn.execute(schema.l2filemeta.insert().values(
        rid=new.pk, **m.corner_columns(), x=check_float(m.x, "rec.meta.x"),
        y=check_float(m.y, "rec.meta.y"), z=check_float(m.z, "rec.meta.z"),
        hp6=check_int(m.hp6, "rec.meta.hp6", minimum=0),
        hp9=check_int(m.hp9, "rec.meta.hp9", minimum=0), field=values["field"]))
    return new.pk, True


def _best_with_meta() -> tuple[sa.Table, sa.Table, sa.Select]:
    t, m = schema.l2files, schema.l2filemeta
    query = (sa.select(t, *(m.c[name] for name in _META_COLUMNS))
             .join_from(t, m, t.c.rid == m.c.rid)
             .where(t.c.vbest > 0, t.c.status > 0))
    return t, m, query


def best_l2files_between(conn: sa.Connection, start: datetime, end: datetime) -> list[sa.Row]:
    """Best L2 images observed in ``start <= dateobs <= end``, with their footprints.

    Parameters
    ----------
    conn : sqlalchemy.Connection
    start, end : datetime
        Timezone-aware bounds, both included.

    Returns
    -------
    list of sqlalchemy.Row
        l2files columns plus the l2filemeta centre, corners, x, y, z, hp6, hp9; ordered by
        dateobs then sca.
    """
    lo, hi = check_utc(start, "start"), check_utc(end, "end")
    if hi < lo:
        raise ValueError(f"end must not precede start, got start={lo}, end={hi}")
    t, _, query = _best_with_meta()
    query = query.where(t.c.dateobs >= lo, t.c.dateobs <= hi).order_by(t.c.dateobs, t.c.sca)
    return list(conn.execute(query))


def prior_l2files_for_tile(conn: sa.Connection, *, fid: int, before: datetime, x0: float,
                           y0: float, z0: float, min_dot: float, limit: int = 25) -> list[sa.Row]:
    """Best L2 images of a filter observed before a time, near a sky position (cone search).

    Parameters
    ----------
    conn : sqlalchemy.Connection
    fid : int
        Filter id.
    before : datetime
        Timezone-aware; only images with ``dateobs < before`` are returned.
    x0, y0, z0 : float
        Unit vector of the cone centre (e.g. the tile centre).
    min_dot : float
        Cosine of the cone radius: images whose centre unit vector has a dot product with
        (x0, y0, z0) below it are left out.
    limit : int, optional
        Most rows returned. Default 25 (RAPID's maximum number of images per reference).

    Returns
    -------
    list of sqlalchemy.Row
        As :func:`best_l2files_between` plus ``dot``; nearest first (dot descending), then
        by dateobs.
    """
    when = check_utc(before, "before")
    check_int(limit, "limit", minimum=1)
    if not -1.0 <= min_dot <= 1.0:
        raise ValueError(f"min_dot must be within [-1, 1], got {min_dot!r}")
    norm = (x0 * x0 + y0 * y0 + z0 * z0) ** 0.5
    if abs(norm - 1.0) > 1e-6:
        raise ValueError(f"x0, y0, z0 must be a unit vector, got norm {norm}")
    t, m, query = _best_with_meta()
    dot = (m.c.x * float(x0) + m.c.y * float(y0) + m.c.z * float(z0)).label("dot")
    query = (query.add_columns(dot)
             .where(t.c.fid == fid, t.c.dateobs < when, dot >= float(min_dot))
             .order_by(dot.desc(), t.c.dateobs, t.c.rid).limit(limit))
    return list(conn.execute(query))
