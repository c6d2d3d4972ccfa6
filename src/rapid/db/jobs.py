"""Named operations on the ``jobs`` table: one row per launch attempt, never overwritten.

A row goes ``open`` (before the launch) -> ``submitted`` (the engine accepted it) ->
``running`` -> ``done``. A row may be closed from any state, so a launch that fails after the
row was opened is closed too, instead of waiting forever. Exit codes keep RAPID's ranges:
0-31 normal, 32-63 warning (33: no reference image possible), 64 and above error; a job whose
exit code is in 0..32 is closed normally (status 1) and is taken by the downstream steps.
"""

from __future__ import annotations

from datetime import date, datetime, timezone

import sqlalchemy as sa

from rapid import exitcodes
from rapid.db import schema
from rapid.db.checks import check_date, check_int, check_text, check_utc
from rapid.db.seed import current_svid

__all__ = ["open_job", "mark_submitted", "mark_running", "close_job", "jobs_for_procdate",
           "latest_job", "latest_attempts", "get_job", "normal_exit", "reference_in_progress"]



def normal_exit(exitcode: int) -> bool:
    """Whether an exit code is a normal end (0 .. 32) that downstream steps take."""
    return 0 <= exitcode <= exitcodes.DOWNSTREAM_MAX


def _now() -> datetime:
    return datetime.now(timezone.utc)


def get_job(conn: sa.Connection, jid: int) -> sa.Row:
    """The jobs row of ``jid``.

    Parameters
    ----------
    conn : sqlalchemy.Connection
    jid : int

    Returns
    -------
    sqlalchemy.Row
    """
    j = schema.jobs
    row = conn.execute(sa.select(j).where(j.c.jid == jid)).first()
    if row is None:
        raise ValueError(f"jid: no job with jid={jid!r}")
    return row


def _attempt_key(j: sa.Table, ppid: int, procdate: date, rid: int | None, field: int | None,
                 fid: int | None) -> sa.ColumnElement[bool]:
    """Rows that are attempts of the same job: same (ppid, rid, procdate), or for jobs
    without an image (stand-alone references) the same (ppid, field, fid, procdate)."""
    clause = sa.and_(j.c.ppid == ppid, j.c.procdate == procdate,
                     j.c.rid.is_not_distinct_from(rid))
    if rid is None:
        clause = sa.and_(clause, j.c.field.is_not_distinct_from(field),
                         j.c.fid.is_not_distinct_from(fid))
    return clause


def open_job(conn: sa.Connection, *, ppid: int, procdate: date, rid: int | None = None,
             parent_jid: int | None = None, fid: int | None = None, expid: int | None = None,
             sca: int | None = None, field: int | None = None) -> int:
    """Open a new jobs row (state "open") for one launch attempt.

    Parameters
    ----------
    conn : sqlalchemy.Connection
        Connection in the caller's transaction.
    ppid : int
        Pipeline id (12, 15 or 17).
    procdate : datetime.date
        Processing date of the day's work.
    rid : int, optional
        The L2 image the job works on; fid, expid, sca and field not given are taken from it.
    parent_jid : int, optional
        The science job that a post-processing (ppid 17) job follows.
    fid, expid, sca, field : int, optional
        Filter, exposure, SCA and sky tile of the job.

    Returns
    -------
    int
        The jid. ``attempt`` is one more than the latest attempt of the same job.
    """
    ppid = check_int(ppid, "ppid", minimum=1)
    check_date(procdate, "procdate")
    ids = {name: None if value is None else check_int(value, name, minimum=1)
           for name, value in (("fid", fid), ("expid", expid), ("sca", sca), ("field", field))}
    if rid is not None:
        rid = check_int(rid, "rid", minimum=1)
        t = schema.l2files
        image = conn.execute(sa.select(t.c.fid, t.c.expid, t.c.sca, t.c.field)
                             .where(t.c.rid == rid)).mappings().first()
        if image is None:
            raise ValueError(f"rid: no L2 image with rid={rid!r}")
        ids = {name: image[name] if value is None else value for name, value in ids.items()}
    if parent_jid is not None:
        parent_jid = get_job(conn, parent_jid).jid
    j = schema.jobs
    latest = conn.execute(sa.select(sa.func.max(j.c.attempt)).where(
        _attempt_key(j, ppid, procdate, rid, ids["field"], ids["fid"]))).scalar()
    svid = current_svid(conn)
    # A savepoint keeps the caller's transaction usable when a concurrent launcher opened the
    # same attempt first (the unique constraint raises IntegrityError here).
    with conn.begin_nested():
        return int(conn.execute(j.insert().values(
            ppid=ppid, rid=rid, parent_jid=parent_jid, procdate=procdate,
            attempt=(latest or 0) + 1, state="open", launched=_now(), svid=svid, **ids,
        ).returning(j.c.jid)).scalar_one())


def mark_submitted(conn: sa.Connection, jid: int, *, engine: str, engine_job_id: str,
                   spec_uri: str) -> None:
    """Record that the batch engine accepted the job.

    Parameters
    ----------
    conn : sqlalchemy.Connection
    jid : int
    engine : str
        Engine name (e.g. "local", "dask", "awsbatch").
    engine_job_id : str
        The engine's id of the job.
    spec_uri : str
        Where the job spec was written.

    Raises
    ------
    ValueError
        If the job is past "open", unless it was already submitted with the same engine job id
        (then nothing changes).
    """
    check_text(engine, "engine")
    check_text(engine_job_id, "engine_job_id")
    check_text(spec_uri, "spec_uri")
    job = get_job(conn, jid)
    if job.state != "open":
        if job.engine == engine and job.engine_job_id == engine_job_id:
            return
        raise ValueError(f"jid: job {jid} is {job.state!r}, it cannot be marked submitted")
    j = schema.jobs
    conn.execute(j.update().where(j.c.jid == jid).values(
        state="submitted", engine=engine, engine_job_id=engine_job_id, spec_uri=spec_uri,
        submitted=_now()))


def _seconds(later: datetime | None, earlier: datetime | None) -> float | None:
    if later is None or earlier is None:
        return None
    return (later - earlier).total_seconds()


def mark_running(conn: sa.Connection, jid: int, *, started: datetime) -> None:
    """Record that the job started running at ``started``; sets qwait when submitted is known.

    Parameters
    ----------
    conn : sqlalchemy.Connection
    jid : int
    started : datetime
        Timezone-aware start time reported by the engine.
    """
    when = check_utc(started, "started")
    job = get_job(conn, jid)
    if job.state == "done":
        raise ValueError(f"jid: job {jid} is already done, it cannot be marked running")
    j = schema.jobs
    conn.execute(j.update().where(j.c.jid == jid).values(
        state="running", started=when, qwait=_seconds(when, job.submitted)))


def close_job(conn: sa.Connection, jid: int, *, exitcode: int, message: str | None = None,
              started: datetime | None = None, ended: datetime | None = None,
              manifest_uri: str | None = None, current: sa.Row | None = None) -> None:
    """Close a job: state "done", exit code, status, times.

    Parameters
    ----------
    conn : sqlalchemy.Connection
    jid : int
    exitcode : int
        The job's exit code; status becomes 1 for 0 .. 32 (normal end), else 0.
    message : str, optional
        Short explanation (error text, "no reference possible", ...).
    started : datetime, optional
        Start time; the one already recorded is kept when not given.
    ended : datetime, optional
        End time; now when not given.
    manifest_uri : str, optional
        Where the job's manifest was found.
    current : sqlalchemy.Row, optional
        The job's row as the caller read it in this transaction (saves reading it again).

    Raises
    ------
    ValueError
        If the job is already done with a different exit code. Closing it again with the same
        exit code changes nothing.
    """
    code = check_int(exitcode, "exitcode")
    start = None if started is None else check_utc(started, "started")
    end = _now() if ended is None else check_utc(ended, "ended")
    job = current if current is not None and current.jid == jid else get_job(conn, jid)
    if job.state == "done":
        if job.exitcode == code:
            return
        raise ValueError(f"exitcode: job {jid} is already done with exit code {job.exitcode}, "
                         f"refusing to close it again with {code}")
    if start is not None and ended is not None and end < start:
        raise ValueError(f"ended must not precede started, got started={start}, ended={end}")
    start = start or job.started
    elapsed = _seconds(end, start)
    if elapsed is not None and elapsed < 0:
        # The recorded start came from the engine's clock, the end from ours: clamp the skew.
        elapsed = 0.0
    j = schema.jobs
    values = {"state": "done", "exitcode": code, "status": int(normal_exit(code)),
              "ended": end, "started": start, "elapsed": elapsed,
              "qwait": _seconds(start, job.submitted), "message": message}
    if manifest_uri is not None:
        values["manifest_uri"] = manifest_uri
    # The state guard makes a concurrent second close a visible no-op instead of an overwrite.
    done = conn.execute(j.update().where(j.c.jid == jid, j.c.state != "done").values(**values))
    if done.rowcount != 1:
        close_job(conn, jid, exitcode=code)


def jobs_for_procdate(conn: sa.Connection, procdate: date, *, ppid: int | None = None,
                      states: tuple[str, ...] | list[str] | None = None,
                      all_attempts: bool = False) -> list[sa.Row]:
    """Jobs of a processing date: the latest attempt of each job, or every attempt.

    Parameters
    ----------
    conn : sqlalchemy.Connection
    procdate : datetime.date
    ppid : int, optional
        Only this pipeline. Default: all.
    states : sequence of str, optional
        Only jobs whose (latest attempt's) state is one of these. Default: all.
    all_attempts : bool, optional
        Return every attempt instead of the latest one per job. Default False.

    Returns
    -------
    list of sqlalchemy.Row
        jobs rows ordered by jid.
    """
    check_date(procdate, "procdate")
    if states is not None:
        states = tuple(states)
        bad = [s for s in states if s not in schema.JOB_STATES]
        if bad or not states:
            raise ValueError(f"states must be a non-empty subset of {schema.JOB_STATES}, "
                             f"got {states!r}")
    j = schema.jobs
    where = [j.c.procdate == procdate] + ([] if ppid is None else [j.c.ppid == ppid])
    if all_attempts:
        query = sa.select(j).where(*where)
        if states is not None:
            query = query.where(j.c.state.in_(states))
        return list(conn.execute(query.order_by(j.c.jid)))
    ranked = latest_attempts(*where)
    query = sa.select(ranked)
    if states is not None:
        query = query.where(ranked.c.state.in_(states))
    return list(conn.execute(query.order_by(ranked.c.jid)))


def latest_attempts(*where: sa.ColumnElement[bool]) -> sa.Subquery:
    """Subquery of the jobs rows (filtered by ``where``) that are the latest attempt of their job.

    A job is identified as in :func:`open_job`: (ppid, procdate, rid), or (ppid, procdate,
    field, fid) for jobs without an image.

    Parameters
    ----------
    *where : SQL boolean expressions on ``schema.jobs``
        Filters applied before ranking the attempts.

    Returns
    -------
    sqlalchemy.Subquery
        With exactly the columns of ``jobs``.
    """
    j = schema.jobs
    no_rid = j.c.rid.is_(None)
    rank = sa.func.row_number().over(
        partition_by=[j.c.ppid, j.c.procdate, j.c.rid, sa.case((no_rid, j.c.field)),
                      sa.case((no_rid, j.c.fid))],
        order_by=j.c.attempt.desc()).label("attempt_rank")
    ranked = sa.select(j, rank).where(*where).subquery()
    return (sa.select(*(ranked.c[c.name] for c in j.c)).where(ranked.c.attempt_rank == 1)
            .subquery("latest_attempts"))


def latest_job(conn: sa.Connection, *, ppid: int, rid: int | None, procdate: date) -> sa.Row | None:
    """The latest attempt of a job, or None if it was never opened.

    Parameters
    ----------
    conn : sqlalchemy.Connection
    ppid : int
    rid : int or None
    procdate : datetime.date

    Returns
    -------
    sqlalchemy.Row or None
    """
    check_date(procdate, "procdate")
    j = schema.jobs
    query = (sa.select(j).where(j.c.ppid == ppid, j.c.procdate == procdate,
                                j.c.rid.is_not_distinct_from(rid))
             .order_by(j.c.attempt.desc(), j.c.jid.desc()).limit(1))
    return conn.execute(query).first()


def reference_in_progress(conn: sa.Connection, *, field: int, fid: int,
                          ppids: tuple[int, ...] = (12, 15)) -> bool:
    """Whether an unfinished job of a sky tile and filter may be building its reference.

    A science job is only launched without a reference when it will build one, so while no
    reference is registered any unfinished job of the tile and filter counts.

    Parameters
    ----------
    conn : sqlalchemy.Connection
    field, fid : int
        Sky tile and filter id.
    ppids : tuple of int, optional
        Pipelines that build references. Default (12, 15).

    Returns
    -------
    bool
    """
    j = schema.jobs
    query = sa.select(j.c.jid).where(j.c.field == field, j.c.fid == fid, j.c.ppid.in_(ppids),
                                     j.c.state != "done").limit(1)
    return conn.execute(query).first() is not None
