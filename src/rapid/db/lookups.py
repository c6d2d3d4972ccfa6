"""Read-only summaries for operators and evaluation: job counts, difference images with catalogs."""

from __future__ import annotations

import sqlalchemy as sa

from rapid.db import schema

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
    j, d, r, m = schema.jobs, schema.diffimages, schema.refimages, schema.diffimmeta
    latest = (sa.select(j.c.ppid, j.c.rid, j.c.procdate, j.c.parent_jid,
                        sa.func.max(j.c.attempt).label("attempt"))
              .group_by(j.c.ppid, j.c.rid, j.c.procdate, j.c.parent_jid))
    if procdate is not None:
        latest = latest.where(j.c.procdate == procdate)
    latest = latest.subquery()
    cond = sa.and_(j.c.ppid == latest.c.ppid, j.c.procdate == latest.c.procdate,
                   j.c.attempt == latest.c.attempt,
                   sa.or_(j.c.rid == latest.c.rid, sa.and_(j.c.rid.is_(None), latest.c.rid.is_(None))),
                   sa.or_(j.c.parent_jid == latest.c.parent_jid,
                          sa.and_(j.c.parent_jid.is_(None), latest.c.parent_jid.is_(None))))
    rows = conn.execute(
        sa.select(j.c.ppid, j.c.state, j.c.exitcode, sa.func.count().label("n"))
        .select_from(j.join(latest, cond))
        .group_by(j.c.ppid, j.c.state, j.c.exitcode)
        .order_by(j.c.ppid, j.c.state, j.c.exitcode)).all()
    job_filter = (sa.select(j.c.jid).where(j.c.procdate == procdate)
                  if procdate is not None else None)
    dq = sa.select(sa.func.count()).select_from(d)
    rq = sa.select(sa.func.count()).select_from(r)
    cq = sa.select(sa.func.coalesce(sa.func.sum(m.c.ncandidates), 0)).select_from(
        m.join(d, m.c.pid == d.c.pid))
    if job_filter is not None:
        dq = dq.where(d.c.jid.in_(job_filter))
        rq = rq.where(r.c.jid.in_(job_filter))
        cq = cq.where(d.c.jid.in_(job_filter))
    return {
        "jobs": [{"ppid": row.ppid, "state": row.state, "exitcode": row.exitcode,
                  "count": row.n} for row in rows],
        "refimages": int(conn.execute(rq).scalar_one()),
        "diffimages": int(conn.execute(dq).scalar_one()),
        "candidates": int(conn.execute(cq).scalar_one()),
    }


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
