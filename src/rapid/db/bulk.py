"""Set-at-a-time operations for launching and closing thousands of jobs in a few statements.

A survey day holds about 11,000 science images. Looking up each image's latest job and reference
with a query of its own, and opening each job in a transaction of its own, makes the launcher spend
its time on round trips; these operations do the same work for a whole batch at once. The database
constraints that make the per-job operations safe (one row per (ppid, rid, procdate, attempt), the
state guard when closing) hold here too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, timezone
from typing import Any

import sqlalchemy as sa

from rapid.db import schema
from rapid.db.checks import check_date, check_int, check_text, check_utc
from rapid.db.jobs import latest_attempts
from rapid.db.seed import current_svid

__all__ = ["rids_with_jobs", "unprocessed_range", "latest_jobs_by_rid", "best_refimages_for", "references_in_progress_for",
           "open_jobs", "mark_submitted_many", "mark_running_many"]

# Values per IN list and rows per multi-row statement: well under SQLite's bound-parameter limit.
CHUNK = 2000

_JOB_IDS = ("fid", "expid", "sca", "field")


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def rids_with_jobs(conn: sa.Connection, *, ppid: int, other_than: date | None = None) -> set[int]:
    """The rids that have a job of pipeline ``ppid`` (on a processing date other than one).

    Parameters
    ----------
    conn : sqlalchemy.Connection
    ppid : int
    other_than : datetime.date, optional
        Leave out jobs of this processing date. Default: count every date.

    Returns
    -------
    set of int
    """
    j = schema.jobs
    query = sa.select(j.c.rid).distinct().where(j.c.ppid == check_int(ppid, "ppid", minimum=1),
                                                j.c.rid.is_not(None))
    if other_than is not None:
        query = query.where(j.c.procdate != check_date(other_than, "other_than"))
    return {int(rid) for rid in conn.execute(query).scalars()}


def unprocessed_range(conn: sa.Connection, *, ppid: int = 15,
                      procdate: date | None = None) -> tuple[datetime, datetime] | None:
    """Observation times of the first and last best L2 image without a job of ``ppid``.

    Parameters
    ----------
    conn : sqlalchemy.Connection
    ppid : int, optional
        Pipeline. Default 15 (science).
    procdate : datetime.date, optional
        Jobs of this processing date do not count as processed (so an interrupted day is
        finished). Default: every job counts.

    Returns
    -------
    tuple of datetime, or None
        (earliest, latest) dateobs, or None when every best image has a job.
    """
    t, j = schema.l2files, schema.jobs
    has_job = sa.select(j.c.jid).where(j.c.ppid == check_int(ppid, "ppid", minimum=1),
                                       j.c.rid == t.c.rid)
    if procdate is not None:
        has_job = has_job.where(j.c.procdate != check_date(procdate, "procdate"))
    lo, hi = conn.execute(sa.select(sa.func.min(t.c.dateobs), sa.func.max(t.c.dateobs)).where(
        t.c.vbest > 0, t.c.status > 0, ~has_job.exists())).one()
    return None if lo is None else (lo, hi)


def latest_jobs_by_rid(conn: sa.Connection, *, ppid: int, procdate: date) -> dict[int, sa.Row]:
    """The latest attempt of every job of a pipeline and processing date, keyed by rid.

    Parameters
    ----------
    conn : sqlalchemy.Connection
    ppid : int
        Pipeline id.
    procdate : datetime.date

    Returns
    -------
    dict of int to sqlalchemy.Row
        jobs rows of jobs that have an image (rid not NULL).
    """
    check_int(ppid, "ppid", minimum=1)
    check_date(procdate, "procdate")
    j = schema.jobs
    ranked = latest_attempts(j.c.ppid == ppid, j.c.procdate == procdate)
    rows = conn.execute(sa.select(ranked).where(ranked.c.rid.is_not(None)))
    return {int(row.rid): row for row in rows}


def best_refimages_for(conn: sa.Connection, keys: Iterable[tuple[int, int]], *,
                       ppid: int = 15) -> dict[tuple[int, int], sa.Row]:
    """The best good reference image of each (field, fid) that has one.

    Parameters
    ----------
    conn : sqlalchemy.Connection
    keys : iterable of (int, int)
        (field, fid) pairs.
    ppid : int, optional
        Pipeline that made the references. Default 15.

    Returns
    -------
    dict of (field, fid) to sqlalchemy.Row
        As :func:`rapid.db.products.best_refimage` for each key; keys without one are absent.
    """
    wanted = {(int(f), int(b)) for f, b in keys}
    fields = sorted({f for f, _ in wanted})
    r = schema.refimages
    best: dict[tuple[int, int], sa.Row] = {}
    for part in _chunks(fields):
        rows = conn.execute(sa.select(r).where(r.c.field.in_(part), r.c.ppid == ppid,
                                               r.c.vbest > 0, r.c.status > 0))
        for row in rows:
            key = (int(row.field), int(row.fid))
            if key not in wanted:
                continue
            held = best.get(key)
            if held is None or (row.vbest, row.version) > (held.vbest, held.version):
                best[key] = row
    return best


def references_in_progress_for(conn: sa.Connection, keys: Iterable[tuple[int, int]], *,
                               ppids: tuple[int, ...] = (12, 15)) -> set[tuple[int, int]]:
    """The (field, fid) pairs among ``keys`` with an unfinished job that may build a reference.

    Parameters
    ----------
    conn : sqlalchemy.Connection
    keys : iterable of (int, int)
    ppids : tuple of int, optional
        Pipelines that build references. Default (12, 15).

    Returns
    -------
    set of (int, int)
    """
    wanted = {(int(f), int(b)) for f, b in keys}
    if not wanted:
        return set()
    j = schema.jobs
    busy = conn.execute(sa.select(j.c.field, j.c.fid).distinct().where(
        j.c.ppid.in_(ppids), j.c.state != "done", j.c.field.is_not(None))).all()
    return {(int(f), int(b)) for f, b in busy} & wanted


def open_jobs(conn: sa.Connection, rows: Sequence[dict[str, Any]], *,
              procdate: date) -> list[int | None]:
    """Open many jobs rows (state "open") in one statement.

    Parameters
    ----------
    conn : sqlalchemy.Connection
        Connection in the caller's transaction.
    rows : sequence of dict
        One per job: ``ppid``, ``rid``, ``attempt`` and the ``fid``, ``expid``, ``sca``,
        ``field`` of its image; optionally ``parent_jid``.
    procdate : datetime.date
        Processing date of all of them.

    Returns
    -------
    list of (int or None)
        The jid of each row, in order; None where another launcher opened that attempt first
        (the unique constraint on (ppid, rid, procdate, attempt) refused it).
    """
    check_date(procdate, "procdate")
    if not rows:
        return []
    now = datetime.now(timezone.utc)
    svid = current_svid(conn)
    values = []
    for i, row in enumerate(rows):
        ids = {name: None if row.get(name) is None else check_int(row[name], f"rows[{i}].{name}",
                                                                  minimum=1)
               for name in _JOB_IDS}
        values.append({"ppid": check_int(row["ppid"], f"rows[{i}].ppid", minimum=1),
                       "rid": check_int(row["rid"], f"rows[{i}].rid", minimum=1),
                       "parent_jid": row.get("parent_jid"),
                       "attempt": check_int(row["attempt"], f"rows[{i}].attempt", minimum=1),
                       "procdate": procdate, "state": "open", "launched": now, "svid": svid,
                       **ids})
    j = schema.jobs
    insert = j.insert().returning(j.c.jid, sort_by_parameter_order=True)
    jids: list[int | None] = []
    for part in _chunks(values):
        try:
            with conn.begin_nested():
                jids.extend(int(jid) for jid in conn.execute(insert, list(part)).scalars())
            continue
        except sa.exc.IntegrityError:
            pass
        # Another launcher got some of these first: open them one by one, keeping the rest.
        # The attempt number stays as planned, so a refused row is never opened as the next one.
        for value in part:
            try:
                with conn.begin_nested():
                    jids.append(int(conn.execute(insert, [value]).scalar_one()))
            except sa.exc.IntegrityError:
                jids.append(None)
    return jids


def mark_submitted_many(conn: sa.Connection, items: Sequence[tuple[int, str, str]], *,
                        engine: str) -> int:
    """Record that the engine accepted many jobs, in one statement.

    Parameters
    ----------
    conn : sqlalchemy.Connection
    items : sequence of (jid, engine_job_id, spec_uri)
    engine : str
        Engine name.

    Returns
    -------
    int
        Number of rows given (rows no longer "open", e.g. closed meanwhile, are left as they are).
    """
    check_text(engine, "engine")
    if not items:
        return 0
    now = datetime.now(timezone.utc)
    j = schema.jobs
    stmt = (j.update().where(j.c.jid == sa.bindparam("b_jid"), j.c.state == "open")
            .values(state="submitted", engine=engine, engine_job_id=sa.bindparam("b_ejid"),
                    spec_uri=sa.bindparam("b_spec"), submitted=now))
    params = [{"b_jid": check_int(jid, "items jid", minimum=1),
               "b_ejid": check_text(ejid, "items engine_job_id"),
               "b_spec": check_text(spec, "items spec_uri")} for jid, ejid, spec in items]
    for part in _chunks(params):
        conn.execute(stmt, list(part))
    return len(params)


def mark_running_many(conn: sa.Connection, items: Sequence[tuple[int, datetime]]) -> int:
    """Record the start times of many jobs the engine reports running.

    Parameters
    ----------
    conn : sqlalchemy.Connection
    items : sequence of (jid, started)
        Timezone-aware start times.

    Returns
    -------
    int
        Number of rows given; jobs already done are left as they are.
    """
    if not items:
        return 0
    j = schema.jobs
    stmt = (j.update().where(j.c.jid == sa.bindparam("b_jid"), j.c.state != "done")
            .values(state="running", started=sa.bindparam("b_started")))
    params = [{"b_jid": check_int(jid, "items jid", minimum=1),
               "b_started": check_utc(started, "items started")} for jid, started in items]
    rows = []
    for part in _chunks(params):
        conn.execute(stmt, list(part))
        # qwait from the stored submission time, computed here to stay portable across backends.
        rows += conn.execute(sa.select(j.c.jid, j.c.submitted, j.c.started).where(
            j.c.jid.in_([p["b_jid"] for p in part]), j.c.state == "running")).all()
    waits = [{"b_jid": r.jid, "b_qwait": (r.started - r.submitted).total_seconds()}
             for r in rows if r.started is not None and r.submitted is not None]
    if waits:
        conn.execute(j.update().where(j.c.jid == sa.bindparam("b_jid"))
                     .values(qwait=sa.bindparam("b_qwait")), waits)
    return len(params)
