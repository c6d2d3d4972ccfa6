"""Registering a finished science job, and the day's summary."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from rapid.db import schema
from rapid.db.checks import check_date, check_int
from rapid.db.jobs import close_job, latest_attempts
from rapid.db.products import add_diffimage, add_refimage
from rapid.db.records import DiffImageRecord, RefImageRecord

__all__ = ["register_science_result", "products_of_job", "counts"]


def products_of_job(conn: sa.Connection, jid: int) -> tuple[int | None, int | None]:
    """The (rfid, pid) a job registered, newest of each, None where it registered none.

    Parameters
    ----------
    conn : sqlalchemy.Connection
    jid : int

    Returns
    -------
    tuple of (int or None, int or None)
    """
    r, d = schema.refimages, schema.diffimages
    rfid = conn.execute(sa.select(sa.func.max(r.c.rfid)).where(r.c.jid == jid)).scalar()
    pid = conn.execute(sa.select(sa.func.max(d.c.pid)).where(d.c.jid == jid)).scalar()
    return rfid, pid


def register_science_result(conn: sa.Connection, jid: int, *, exitcode: int,
                            started: datetime | None = None, ended: datetime | None = None,
                            message: str | None = None, manifest_uri: str | None = None,
                            refimage: RefImageRecord | None = None,
                            diffimage: DiffImageRecord | None = None,
                            ) -> tuple[int | None, int | None]:
    """Add a science job's products and close the job, all or nothing.

    The products are added and the job closed inside a SAVEPOINT of the caller's transaction
    (``conn.begin_nested()``): if anything fails, none of it remains, the job stays open and
    the exception propagates; the caller's transaction is still usable (e.g. to register the
    next job) and commits the rest. Closing the job last means a crash in between never leaves
    a closed job without its products.

    Parameters
    ----------
    conn : sqlalchemy.Connection
        Connection in the caller's transaction.
    jid : int
        The science job.
    exitcode : int
        The job's exit code.
    started, ended : datetime, optional
        Timezone-aware start and end of the job.
    message : str, optional
        Short explanation stored with the job.
    manifest_uri : str, optional
        Where the job's manifest was read.
    refimage : RefImageRecord, optional
        Reference image the job built, if any.
    diffimage : DiffImageRecord, optional
        Difference image the job made, if any. When its ``rfid`` is None and ``refimage`` is
        given, it gets the new reference image's rfid.

    Returns
    -------
    tuple of (int or None, int or None)
        (rfid, pid) added, or those registered earlier when the job was already done (then
        nothing is added).

    Raises
    ------
    ValueError
        If the job is already done with a different exit code.
    """
    code = check_int(exitcode, "exitcode")
    # Lock the job row: a second operator registering the same job waits here for the first to
    # commit and then finds it done, instead of adding its products a second time (PostgreSQL;
    # SQLite serialises writers anyway).
    j = schema.jobs
    job = conn.execute(sa.select(j).where(j.c.jid == check_int(jid, "jid"))
                       .with_for_update()).first()
    if job is None:
        raise ValueError(f"jid: no job with jid={jid!r}")
    if job.state == "done":
        close_job(conn, jid, exitcode=code)  # raises if the recorded exit code differs
        return products_of_job(conn, jid)
    rfid = pid = None
    with conn.begin_nested():
        if refimage is not None:
            rfid = add_refimage(conn, refimage, jid=jid)
        if diffimage is not None:
            if diffimage.rfid is None and rfid is not None:
                diffimage = dataclasses.replace(diffimage, rfid=rfid)
            pid = add_diffimage(conn, diffimage, jid=jid)
        close_job(conn, jid, exitcode=code, message=message, started=started, ended=ended,
                  manifest_uri=manifest_uri, current=job)
    return rfid, pid


def counts(conn: sa.Connection, procdate: date | None = None) -> dict[str, Any]:
    """Small summary of the work done, for status displays.

    Parameters
    ----------
    conn : sqlalchemy.Connection
    procdate : datetime.date, optional
        Only jobs of this processing date and the products they made. Default: everything.

    Returns
    -------
    dict
        ``jobs``: list of ``{"ppid", "state", "exitcode", "count"}`` over the latest attempt of
        each job, sorted; ``refimages``, ``diffimages``: number of rows; ``ncandidates``: sum of
        diffimmeta.ncandidates.
    """
    j, r, d, m = schema.jobs, schema.refimages, schema.diffimages, schema.diffimmeta
    day: list[sa.ColumnElement[bool]] = []
    if procdate is not None:
        day = [j.c.procdate == check_date(procdate, "procdate")]
    latest = latest_attempts(*day)
    rows = conn.execute(sa.select(latest.c.ppid, latest.c.state, latest.c.exitcode,
                                  sa.func.count().label("n"))
                        .group_by(latest.c.ppid, latest.c.state, latest.c.exitcode)).all()
    jobs = sorted(({"ppid": int(row.ppid), "state": row.state, "exitcode": row.exitcode,
                    "count": int(row.n)} for row in rows),
                  key=lambda x: (x["ppid"], x["state"], -1 if x["exitcode"] is None
                                 else x["exitcode"]))
    # Products count when made by a job of the day (any attempt); all of them otherwise.
    ref_where = r.c.jid.in_(sa.select(j.c.jid).where(*day)) if day else sa.true()
    diff_where = d.c.jid.in_(sa.select(j.c.jid).where(*day)) if day else sa.true()
    nref = conn.execute(sa.select(sa.func.count()).select_from(r).where(ref_where)).scalar()
    ndiff = conn.execute(sa.select(sa.func.count()).select_from(d).where(diff_where)).scalar()
    ncand = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(m.c.ncandidates), 0))
                         .join_from(m, d, m.c.pid == d.c.pid).where(diff_where)).scalar()
    return {"jobs": jobs, "refimages": int(nref or 0), "diffimages": int(ndiff or 0),
            "ncandidates": int(ncand or 0)}
