"""Named operations on pipeline products: reference images, difference images, PSFs."""

from __future__ import annotations

import dataclasses

import sqlalchemy as sa

from rapid.db import schema
from rapid.db.checks import check_checksum, check_float, check_int, check_text
from rapid.db.records import (DiffImageMeta, DiffImageRecord, RefImageMeta, RefImageRecord,
                              corner_columns)
from rapid.db.seed import current_svid
from rapid.db.versioning import insert_version

__all__ = ["best_refimage", "refimage_by_rfid", "diffimage_of_job", "product_key_by_filename",
           "add_refimage", "add_diffimage", "add_psf", "set_product_checksum"]

#: Tables whose checksum post-processing may update, with their primary key.
CHECKSUMMED = {"diffimages": "pid", "refimages": "rfid"}


def _status(value: int, name: str) -> int:
    status = check_int(value, name, minimum=0)
    if status > 1:
        raise ValueError(f"{name} must be 0 (not yet good) or 1 (good), got {status}")
    return status


def best_refimage(conn: sa.Connection, field: int, fid: int, ppid: int = 15) -> sa.Row | None:
    """The best good reference image of a sky tile and filter, or None.

    Parameters
    ----------
    conn : sqlalchemy.Connection
    field, fid : int
        Sky tile and filter id.
    ppid : int, optional
        Pipeline that made it. Default 15 (science).

    Returns
    -------
    sqlalchemy.Row or None
        The refimages row with vbest > 0 and status > 0.
    """
    r = schema.refimages
    query = (sa.select(r).where(r.c.field == field, r.c.fid == fid, r.c.ppid == ppid,
                                r.c.vbest > 0, r.c.status > 0)
             .order_by(r.c.vbest.desc(), r.c.version.desc()).limit(1))
    return conn.execute(query).first()


def refimage_by_rfid(conn: sa.Connection, rfid: int) -> sa.Row | None:
    """The refimages row of ``rfid``, or None.

    Parameters
    ----------
    conn : sqlalchemy.Connection
    rfid : int

    Returns
    -------
    sqlalchemy.Row or None
    """
    r = schema.refimages
    return conn.execute(sa.select(r).where(r.c.rfid == rfid)).first()


def diffimage_of_job(conn: sa.Connection, jid: int) -> sa.Row | None:
    """The (newest) difference image a job registered, with its diffimmeta, or None.

    Parameters
    ----------
    conn : sqlalchemy.Connection
    jid : int

    Returns
    -------
    sqlalchemy.Row or None
        diffimages columns plus the diffimmeta columns other than pid.
    """
    d, m = schema.diffimages, schema.diffimmeta
    query = (sa.select(d, *(c for c in m.c if c.name != "pid"))
             .join_from(d, m, d.c.pid == m.c.pid, isouter=True)
             .where(d.c.jid == jid).order_by(d.c.pid.desc()).limit(1))
    return conn.execute(query).first()


def product_key_by_filename(conn: sa.Connection, table: str, filename: str) -> int | None:
    """Primary key (pid or rfid) of the newest product stored at ``filename``, or None.

    Parameters
    ----------
    conn : sqlalchemy.Connection
    table : {"diffimages", "refimages"}
    filename : str
        URI of the product file.

    Returns
    -------
    int or None
    """
    if table not in CHECKSUMMED:
        raise ValueError(f"table must be one of {sorted(CHECKSUMMED)}, got {table!r}")
    t = getattr(schema, table)
    pk = t.c[CHECKSUMMED[table]]
    key = conn.execute(sa.select(pk).where(t.c.filename == filename).order_by(pk.desc())
                       .limit(1)).scalar()
    return None if key is None else int(key)


def add_refimage(conn: sa.Connection, rec: RefImageRecord, *, jid: int | None = None) -> int:
    """Register a reference image as a new version of its (field, fid, ppid).

    Also inserts its statistics (refimmeta), the L2 images it was built from (refimimages)
    and its catalogs (refimcatalogs).

    Parameters
    ----------
    conn : sqlalchemy.Connection
        Connection in the caller's transaction.
    rec : RefImageRecord
    jid : int, optional
        The job that made it.

    Returns
    -------
    int
        The rfid.
    """
    if not isinstance(rec, RefImageRecord):
        raise ValueError(f"rec must be a RefImageRecord, got {type(rec).__name__}")
    check_text(rec.filename, "rec.filename")
    pairs = [(cat.ppid, cat.cattype) for cat in rec.catalogs]
    if len(set(pairs)) != len(pairs):
        raise ValueError(f"rec.catalogs must not repeat a (ppid, cattype), got {pairs}")
    for cat in rec.catalogs:
        if cat.cattype not in (1, 2):
            raise ValueError(f"rec.catalogs cattype must be 1 or 2, got {cat.cattype!r}")
    rids = sorted({check_int(rid, "rec.input_rids", minimum=1) for rid in rec.input_rids})
    svid = current_svid(conn)
    new = insert_version(conn, "refimages", {
        "field": check_int(rec.field, "rec.field", minimum=1),
        "fid": check_int(rec.fid, "rec.fid", minimum=1),
        "ppid": check_int(rec.ppid, "rec.ppid", minimum=1),
        "status": _status(rec.status, "rec.status"),
        "filename": rec.filename, "checksum": check_checksum(rec.checksum, "rec.checksum"),
        "covfile": rec.covfile, "uncfile": rec.uncfile, "psffile": rec.psffile,
        "infobits": check_int(rec.infobits, "rec.infobits", minimum=0),
        "jid": jid, "svid": svid,
    })
    meta = rec.meta or RefImageMeta(nframes=len(rids) or None)
    conn.execute(schema.refimmeta.insert().values(rfid=new.pk, **dataclasses.asdict(meta)))
    if rids:
        conn.execute(schema.refimimages.insert(), [{"rfid": new.pk, "rid": rid} for rid in rids])
    for cat in rec.catalogs:
        conn.execute(schema.refimcatalogs.insert().values(
            rfid=new.pk, ppid=cat.ppid, cattype=cat.cattype, svid=svid,
            filename=check_text(cat.filename, "rec.catalogs filename"),
            checksum=check_checksum(cat.checksum, "rec.catalogs checksum"),
            status=_status(cat.status, "rec.catalogs status")))
    return new.pk


def add_diffimage(conn: sa.Connection, rec: DiffImageRecord, *, jid: int | None = None) -> int:
    """Register a difference image as a new version of its (rid, ppid), with its diffimmeta.

    Parameters
    ----------
    conn : sqlalchemy.Connection
        Connection in the caller's transaction.
    rec : DiffImageRecord
    jid : int, optional
        The job that made it.

    Returns
    -------
    int
        The pid.
    """
    if not isinstance(rec, DiffImageRecord):
        raise ValueError(f"rec must be a DiffImageRecord, got {type(rec).__name__}")
    check_text(rec.filename, "rec.filename")
    new = insert_version(conn, "diffimages", {
        "rid": check_int(rec.rid, "rec.rid", minimum=1),
        "rfid": None if rec.rfid is None else check_int(rec.rfid, "rec.rfid", minimum=1),
        "ppid": check_int(rec.ppid, "rec.ppid", minimum=1),
        "status": _status(rec.status, "rec.status"),
        "expid": check_int(rec.expid, "rec.expid", minimum=1),
        "sca": check_int(rec.sca, "rec.sca", minimum=1),
        "fid": check_int(rec.fid, "rec.fid", minimum=1),
        "field": check_int(rec.field, "rec.field", minimum=1),
        "mjdobs": check_float(rec.mjdobs, "rec.mjdobs"),
        **corner_columns(rec.ra0, rec.dec0, rec.ra_corners, rec.dec_corners),
        "infobitssci": check_int(rec.infobitssci, "rec.infobitssci", minimum=0),
        "infobitsref": check_int(rec.infobitsref, "rec.infobitsref", minimum=0),
        "filename": rec.filename, "checksum": check_checksum(rec.checksum, "rec.checksum"),
        "nalertpackets": check_int(rec.nalertpackets, "rec.nalertpackets", minimum=0),
        "jid": jid, "svid": current_svid(conn),
    })
    meta = rec.meta or DiffImageMeta()
    conn.execute(schema.diffimmeta.insert().values(pid=new.pk, **dataclasses.asdict(meta)))
    return new.pk


def add_psf(conn: sa.Connection, *, fid: int, sca: int, filename: str, checksum: str) -> int:
    """Register a PSF model of a filter and SCA as a new version.

    Parameters
    ----------
    conn : sqlalchemy.Connection
    fid, sca : int
    filename : str
        URI of the PSF file.
    checksum : str
        md5 hex digest of the file.

    Returns
    -------
    int
        The psfid.
    """
    return insert_version(conn, "psfs", {
        "fid": check_int(fid, "fid", minimum=1), "sca": check_int(sca, "sca", minimum=1),
        "filename": check_text(filename, "filename"), "checksum": check_checksum(checksum),
        "status": 1,
    }).pk


def set_product_checksum(conn: sa.Connection, table: str, key: int, *, filename: str | None = None,
                         checksum: str, status: int = 1) -> None:
    """Update the checksum and status (and optionally the file) of a product after it was
    post-processed.

    Parameters
    ----------
    conn : sqlalchemy.Connection
    table : {"diffimages", "refimages"}
    key : int
        pid or rfid.
    filename : str, optional
        New URI of the file. Default: unchanged.
    checksum : str
        md5 hex digest of the file.
    status : int, optional
        0 not yet good, 1 good. Default 1.
    """
    if table not in CHECKSUMMED:
        raise ValueError(f"table must be one of {sorted(CHECKSUMMED)}, got {table!r}")
    t = getattr(schema, table)
    values = {"checksum": check_checksum(checksum), "status": _status(status, "status")}
    if filename is not None:
        values["filename"] = check_text(filename, "filename")
    done = conn.execute(t.update().where(t.c[CHECKSUMMED[table]] == key).values(**values))
    if done.rowcount != 1:
        raise ValueError(f"key: no {table} row with {CHECKSUMMED[table]}={key!r}")
