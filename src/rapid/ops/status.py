"""What operators look at: jobs by pipeline, state and exit code, and the products registered."""

from __future__ import annotations

from rapid import exitcodes
from rapid.db.lookups import job_summary
from rapid.ops.context import OpsContext
from rapid.ops.times import procdate_as_date

PIPELINES = {12: "reference", 15: "science", 17: "post-processing"}


def summary(ctx: OpsContext, procdate: str | None = None) -> dict:
    """Counts of the latest attempt of every job, and registered products.

    Parameters
    ----------
    ctx : OpsContext
    procdate : str, optional
        Only this processing date (``YYYYMMDD``); all dates when omitted.

    Returns
    -------
    dict
        ``procdate``, ``jobs`` (ppid, pipeline, state, exitcode, meaning, count), ``refimages``,
        ``diffimages``, ``candidates``.
    """
    with ctx.db.begin() as conn:
        data = job_summary(conn, procdate_as_date(procdate) if procdate else None)
    for row in data["jobs"]:
        row["pipeline"] = PIPELINES.get(row["ppid"], str(row["ppid"]))
        row["meaning"] = exitcodes.meaning(row["exitcode"]) if row["state"] == "done" else "-"
    data["procdate"] = procdate
    return data
