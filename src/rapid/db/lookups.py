"""Read-only summaries for operators and evaluation: job counts, difference images with catalogs."""

from __future__ import annotations

import sqlalchemy as sa

from rapid.db import schema
from rapid.db.registration import counts

__all__ = ["job_summary", "diffimages_with_catalogs", "job_times", "failed_jobs"]


def job_summary(conn: sa.Connection, procdate=None) -> dict:  # noqa: ANN001
    """Counts for operators: latest-attempt jobs by (ppid, state, exitcode) and product totals.

    Parameters
    ----------
    conn : sqlalchemy.Connection
    procdate : datetime.date, optional
        Only jobs of this processing date (products are then those made by its jobs).

    Returns
    -------
    dict
        ``jobs``: list of {ppid, state, exitcode, count}; ``refimages``, ``diffimages``,
        ``candidates`` totals.
    """
    # One definition of "latest attempt" and of the product totals: rapid.db.registration.counts.
    summary = counts(conn, procdate)
    return {"jobs": summary["jobs"], "refimages": summary["refimages"],
            "diffimages": summary["diffimages"], "candidates": summary["ncandidates"]}


def diffimages_with_catalogs(conn: sa.Connection, procdate=None) -> list[sa.Row]:  # noqa: ANN001
    """Best difference images with their L2 file name and candidate catalog.

    Parameters
    ----------
    conn : sqlalchemy.Connection
    procdate : datetime.date, optional
        Only those made by jobs of this processing date.

    Returns
    -------
    list of Row
        pid, rid, fid, field, mjdobs, filename (the difference image), l2filename,
        catfilename, ncandidates and manifest_uri (of the job that made it; None if unknown).
    """
    d, m, l2, j = schema.diffimages, schema.diffimmeta, schema.l2files, schema.jobs
    query = (sa.select(d.c.pid, d.c.rid, d.c.fid, d.c.field, d.c.mjdobs, d.c.filename,
                       l2.c.filename.label("l2filename"), m.c.catfilename, m.c.ncandidates,
                       j.c.manifest_uri)
             .select_from(d.join(m, m.c.pid == d.c.pid).join(l2, l2.c.rid == d.c.rid)
                          .join(j, j.c.jid == d.c.jid, isouter=True))
             .where(d.c.vbest > 0).order_by(d.c.pid))
    if procdate is not None:
        query = query.where(d.c.jid.in_(sa.select(j.c.jid).where(j.c.procdate == procdate)))
    return list(conn.execute(query).all())


def job_times(conn: sa.Connection, procdate=None, *, ppid: int | None = None) -> list[sa.Row]:  # noqa: ANN001
    """Queue wait and run time of every finished job attempt.

    Parameters
    ----------
    conn : sqlalchemy.Connection
    procdate : datetime.date, optional
        Only jobs of this processing date.
    ppid : int, optional
        Only this pipeline.

    Returns
    -------
    list of Row
        jid, ppid, rid, attempt, exitcode, qwait, elapsed (seconds; None where unknown), ordered
        by jid.
    """
    j = schema.jobs
    query = (sa.select(j.c.jid, j.c.ppid, j.c.rid, j.c.attempt, j.c.exitcode, j.c.qwait,
                       j.c.elapsed).where(j.c.state == "done").order_by(j.c.jid))
    if procdate is not None:
        query = query.where(j.c.procdate == procdate)
    if ppid is not None:
        query = query.where(j.c.ppid == ppid)
    return list(conn.execute(query).all())


def failed_jobs(conn: sa.Connection, procdate=None, *, min_exitcode: int = 64) -> list[sa.Row]:  # noqa: ANN001
    """Job attempts that ended with an error exit code, and why.

    Parameters
    ----------
    conn : sqlalchemy.Connection
    procdate : datetime.date, optional
        Only jobs of this processing date.
    min_exitcode : int, optional
        Lowest exit code that counts as failed. Default 64 (RAPID's error range).

    Returns
    -------
    list of Row
        jid, ppid, rid, procdate, attempt, exitcode, message, engine_job_id, ended; by jid.
    """
    j = schema.jobs
    query = (sa.select(j.c.jid, j.c.ppid, j.c.rid, j.c.procdate, j.c.attempt, j.c.exitcode,
                       j.c.message, j.c.engine_job_id, j.c.ended)
             .where(j.c.state == "done", j.c.exitcode >= min_exitcode).order_by(j.c.jid))
    if procdate is not None:
        query = query.where(j.c.procdate == procdate)
    return list(conn.execute(query).all())
