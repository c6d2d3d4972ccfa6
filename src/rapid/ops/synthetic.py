"""Synthetic L2 image rows, inserted in bulk, for measuring the operator at survey scale.

No image files exist behind these rows: they carry valid keys, WCS and footprints, and every
(field, filter) gets a registered reference, so that a launch needs no prior-image queries. Jobs
on them only make sense with an engine that does not read the images (the no-op engine).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from rapid.db import operations as dbops
from rapid.db import schema
from rapid.db.records import RefImageRecord, unit_vector
from rapid.sky import hp6, hp9, tile

FIRST_FIELD = 5321355  # RAPID's test tile at (11.1, -43.8); its neighbours in RA follow
NSCA = 18
START = datetime(2028, 9, 7, tzinfo=timezone.utc)
CADENCE = timedelta(seconds=155)  # one exposure of 18 SCAs about every 2.6 minutes


def _tile_row(field: int) -> dict:
    t = tile(field)
    row = {"field": field, "ra0": t.ra0, "dec0": t.dec0,
           "hp6": int(hp6(t.ra0, t.dec0)), "hp9": int(hp9(t.ra0, t.dec0))}
    for i, (ra, dec) in enumerate(t.corners, start=1):
        row[f"ra{i}"], row[f"dec{i}"] = ra, dec
    return row


def add_synthetic_images(db: sa.Engine, n: int, *, nfields: int = 50, fid: int = 2,
                         start: datetime = START, with_reference: bool = True) -> list[int]:
    """Insert ``n`` best L2 image rows (18 SCAs per exposure) spread over ``nfields`` tiles.

    Parameters
    ----------
    db : sqlalchemy.Engine
        A migrated, seeded operations database.
    n : int
        Images to add.
    nfields : int, optional
        Sky tiles the exposures cycle through. Default 50.
    fid : int, optional
        Filter of every image. Default 2 (H158).
    start : datetime, optional
        Observation time of the first exposure (UTC); the others follow every 155 s.
    with_reference : bool, optional
        Register a reference image for each (field, fid). Default True.

    Returns
    -------
    list of int
        The rids, in observation order.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if nfields < 1:
        raise ValueError(f"nfields must be at least 1, got {nfields}")
    tiles = [_tile_row(FIRST_FIELD + k) for k in range(nfields)]
    nexp = -(-n // NSCA)
    with db.begin() as conn:
        for t in tiles:
            dbops.ensure_field(conn, field=t["field"], ra0=t["ra0"], dec0=t["dec0"],
                               ra_corners=tuple(t[f"ra{i}"] for i in range(1, 5)),
                               dec_corners=tuple(t[f"dec{i}"] for i in range(1, 5)),
                               hp6=t["hp6"], hp9=t["hp9"])
        e = schema.exposures
        exp_rows = []
        for k in range(nexp):
            t = tiles[k % nfields]
            when = start + k * CADENCE
            exp_rows.append({"dateobs": when, "mjdobs": 61931.0 + (when - START).total_seconds()
                             / 86400.0, "exptime": 139.8, "fid": fid, "field": t["field"],
                             "hp6": t["hp6"], "hp9": t["hp9"]})
        expids = list(conn.execute(e.insert().returning(e.c.expid, sort_by_parameter_order=True),
                                   exp_rows).scalars())
        l2_rows, metas = [], []
        for i in range(n):
            k, sca = divmod(i, NSCA)
            t, exp = tiles[k % nfields], exp_rows[k]
            name = f"file:///synthetic/L2/exp{expids[k]}_sca{sca + 1}.fits"
            l2_rows.append({
                "expid": expids[k], "sca": sca + 1, "fid": fid, "field": t["field"],
                "version": 1, "vbest": 1, "status": 1, "filename": name,
                "checksum": hashlib.md5(name.encode()).hexdigest(), "dateobs": exp["dateobs"],
                "mjdobs": exp["mjdobs"], "exptime": 139.8, "naxis1": 4088, "naxis2": 4088,
                "crval1": t["ra0"], "crval2": t["dec0"], "crpix1": 2044.5, "crpix2": 2044.5,
                "cd1_1": -3.05e-5, "cd1_2": 0.0, "cd2_1": 0.0, "cd2_2": 3.05e-5,
                "ctype1": "RA---TAN", "ctype2": "DEC--TAN", "sip": {}})
            x, y, z = (float(v) for v in unit_vector(t["ra0"], t["dec0"]))
            metas.append({**{key: t[key] for key in t if key != "field"}, "x": x, "y": y, "z": z,
                          "field": t["field"]})
        l2 = schema.l2files
        rids = [int(r) for r in conn.execute(
            l2.insert().returning(l2.c.rid, sort_by_parameter_order=True), l2_rows).scalars()]
        for rid, meta in zip(rids, metas):
            meta["rid"] = rid
        conn.execute(schema.l2filemeta.insert(), metas)
        if with_reference:
            for t in tiles[:min(nfields, nexp)]:
                if dbops.best_refimage(conn, t["field"], fid) is None:
                    base = f"file:///synthetic/refs/{t['field']}_{fid}"
                    dbops.add_refimage(conn, RefImageRecord(
                        field=t["field"], fid=fid, filename=f"{base}.fits",
                        checksum=hashlib.md5(base.encode()).hexdigest(),
                        covfile=f"{base}_cov.fits", uncfile=f"{base}_unc.fits"))
    return rids
