"""What operators look at: jobs by pipeline, state and exit code, products, times and failures."""

from __future__ import annotations

import statistics

from rapid import exitcodes
from rapid.db.lookups import failed_jobs, job_summary, job_times
from rapid.ops.context import OpsContext
from rapid.ops.times import procdate_as_date

PIPELINES = {12: "reference", 15: "science", 17: "post-processing"}
SLOWEST = 5  # jobs listed as the slowest


def _day(procdate: str | None):  # noqa: ANN202
    return procdate_as_date(procdate) if procdate else None


def _stats(values: list[float]) -> dict:
    """count, mean, median, 90th percentile and max of ``values`` (seconds)."""
    if not values:
        return {"count": 0, "mean": None, "median": None, "p90": None, "max": None}
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
    return {"count": len(ordered), "mean": round(statistics.fmean(ordered), 3),
            "median": round(statistics.median(ordered), 3), "p90": round(p90, 3),
            "max": round(ordered[-1], 3)}


def failures(ctx: OpsContext, procdate: str | None = None) -> list[dict]:
    """Every job attempt that ended in the error range (exit code 64 and above), and why.

    Parameters
    ----------
    ctx : OpsContext
    procdate : str, optional
        Only this processing date (``YYYYMMDD``).

    Returns
    -------
    list of dict
        jid, pipeline, rid, procdate, attempt, exitcode, meaning, message, engine_job_id.
    """
    with ctx.db.begin() as conn:
        rows = failed_jobs(conn, _day(procdate))
    return [{"jid": r.jid, "pipeline": PIPELINES.get(r.ppid, str(r.ppid)), "rid": r.rid,
             "procdate": r.procdate.strftime("%Y%m%d"), "attempt": r.attempt,
             "exitcode": r.exitcode, "meaning": exitcodes.meaning(r.exitcode),
             "message": r.message or "", "engine_job_id": r.engine_job_id} for r in rows]


def timings(ctx: OpsContext, procdate: str | None = None) -> dict:
    """Queue-wait and run-time statistics per pipeline, and the slowest jobs.

    Parameters
    ----------
    ctx : OpsContext
    procdate : str, optional
        Only this processing date (``YYYYMMDD``).

    Returns
    -------
    dict
        ``times``: list of {pipeline, ppid, qwait: stats, elapsed: stats} (stats: count,
        mean, median, p90, max in seconds); ``slowest``: the slowest job attempts (jid,
        pipeline, rid, elapsed, exitcode).
    """
    with ctx.db.begin() as conn:
        rows = job_times(conn, _day(procdate))
    out = []
    for ppid in sorted({r.ppid for r in rows}):
        mine = [r for r in rows if r.ppid == ppid]
        out.append({"ppid": ppid, "pipeline": PIPELINES.get(ppid, str(ppid)),
                    "qwait": _stats([r.qwait for r in mine if r.qwait is not None]),
                    "elapsed": _stats([r.elapsed for r in mine if r.elapsed is not None])})
    timed = sorted((r for r in rows if r.elapsed is not None), key=lambda r: -r.elapsed)
    slowest = [{"jid": r.jid, "pipeline": PIPELINES.get(r.ppid, str(r.ppid)), "rid": r.rid,
                "elapsed": round(r.elapsed, 3), "exitcode": r.exitcode}
               for r in timed[:SLOWEST]]
    return {"times": out, "slowest": slowest}


def summary(ctx: OpsContext, procdate: str | None = None) -> dict:
    """Counts of the latest attempt of every job, registered products, times and failures.

    Parameters
    ----------
    ctx : OpsContext
    procdate : str, optional
        Only this processing date (``YYYYMMDD``); all dates when omitted.

    Returns
    -------
    dict
        ``procdate``, ``jobs`` (ppid, pipeline, state, exitcode, meaning, count), ``refimages``,
        ``diffimages``, ``candidates``, ``times``, ``slowest`` (see :func:`timings`) and
        ``failed`` (see :func:`failures`).
    """
    with ctx.db.begin() as conn:
        data = job_summary(conn, _day(procdate))
    for row in data["jobs"]:
        row["pipeline"] = PIPELINES.get(row["ppid"], str(row["ppid"]))
        row["meaning"] = exitcodes.meaning(row["exitcode"]) if row["state"] == "done" else "-"
    data["procdate"] = procdate
    data.update(timings(ctx, procdate))
    data["failed"] = failures(ctx, procdate)
    return data
