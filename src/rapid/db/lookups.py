"""Read-only summaries for operators and evaluation: job counts, difference images with catalogs."""

from __future__ import annotations

import sqlalchemy as sa

from rapid.db import schema
from rapid.db.registration import counts

__all__ = ["job_summary", "diffimages_with_catalogs"]


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
        pid, rid, fid, field, mjdobs, l2filename, catfilename, ncandidates.
    """
    d, m, l2, j = schema.diffimages, schema.diffimmeta, schema.l2files, schema.jobs
    query = (sa.select(d.c.pid, d.c.rid, d.c.fid, d.c.field, d.c.mjdobs,
                       l2.c.filename.label("l2filename"), m.c.catfilename, m.c.ncandidates)
             .select_from(d.join(m, m.c.pid == d.c.pid).join(l2, l2.c.rid == d.c.rid))
             .where(d.c.vbest > 0).order_by(d.c.pid))
    if procdate is not None:
        query = query.where(d.c.jid.in_(sa.select(j.c.jid).where(j.c.procdate == procdate)))
    return list(conn.execute(query).all())
