"""Wait for a day's jobs of one pipeline to finish, never forever.

The operator polls the engine until every submitted job has finished. A job row opened but never
submitted (a launcher that died in between) is closed at once with exit 73; a job queued longer than
``operator.queue_timeout_seconds`` or running longer than ``operator.run_timeout_seconds`` is cancelled
and closed with exit 72; a job the engine does not know is left for registration to close as lost.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from rapid import exitcodes, store
from rapid.db import operations as dbops
from rapid.engines.base import EngineState
from rapid.ops.context import OpsContext
from rapid.ops.retry import in_transaction
from rapid.ops.times import procdate_as_date

# A row still 'open' this long after it was launched belongs to a launcher that died mid-launch.
# (The launcher submits in slices, so a live launcher never leaves a row open for long.)
OPEN_GRACE = timedelta(seconds=60)
# Engine job id of a job found submitted after all whose engine id was never recorded; engines
# report it UNKNOWN, so registration goes by the manifest alone.
UNRECORDED = "unrecorded"

Progress = Callable[[int, int], None]


def _close_stale_open(ctx: OpsContext, procdate: str, jobs: list, now: datetime) -> int:  # noqa: ANN001
    """Close rows left "open" by a launcher that stopped mid-launch; returns how many.

    A job whose manifest is already in the store was submitted after all (the launcher stopped
    between submitting and recording it): it is handed to registration instead, so that it is
    not run a second time.
    """
    closed = 0
    for job in jobs:
        if job.state != "open" or now - job.launched <= OPEN_GRACE:
            continue
        ran = store.exists(ctx.layout.manifest_uri(procdate, job.jid))

        def settle(conn, job=job, ran=ran) -> None:  # noqa: ANN001
            if ran:
                dbops.mark_submitted(conn, job.jid, engine=ctx.engine.name,
                                     engine_job_id=UNRECORDED,
                                     spec_uri=ctx.layout.spec_uri(procdate, job.jid))
            else:
                dbops.close_job(conn, job.jid, exitcode=exitcodes.NOT_SUBMITTED,
                                message="opened but never submitted (launcher stopped "
                                        "mid-launch)")

        in_transaction(ctx.db, settle)
        closed += 0 if ran else 1
    return closed


def wait_for_jobs(ctx: OpsContext, procdate: str, ppid: int, *,
                  progress: Progress | None = None, sleep: Callable[[float], None] = time.sleep) -> int:
    """Block until every in-flight job of ``procdate`` and ``ppid`` has finished in the engine.

    Parameters
    ----------
    ctx : OpsContext
    procdate : str
        Processing date ``YYYYMMDD``.
    ppid : int
        Pipeline (15 science, 17 post-processing).
    progress : callable, optional
        Called as ``progress(finished, total)`` after every poll.

    Returns
    -------
    int
        Number of jobs closed here for timing out or never being submitted.
    """
    pdate = procdate_as_date(procdate)
    opts = ctx.settings.operator
    closed_here = 0
    while True:
        now = datetime.now(timezone.utc)
        every = in_transaction(ctx.db, lambda conn: dbops.jobs_for_procdate(conn, pdate,
                                                                             ppid=ppid))
        inflight = [j for j in every if j.state in ("open", "submitted", "running")]
        closed_here += _close_stale_open(ctx, procdate, inflight, now)
        submitted = [j for j in inflight if j.state in ("submitted", "running")]
        states = ctx.engine.poll([j.engine_job_id for j in submitted]) if submitted else {}
        waiting = 0
        for job in submitted:
            ej = states.get(job.engine_job_id)
            if ej is None or ej.state.finished or ej.state is EngineState.UNKNOWN:
                continue
            over = None
            if ej.state is EngineState.QUEUED and job.submitted is not None and \
                    (now - job.submitted).total_seconds() > opts.queue_timeout_seconds:
                over = f"queued for more than {opts.queue_timeout_seconds:.0f} s"
            started = ej.started or job.started
            if ej.state is EngineState.RUNNING and started is not None and \
                    (now - started).total_seconds() > opts.run_timeout_seconds:
                over = f"ran for more than {opts.run_timeout_seconds:.0f} s"
            if over:
                ctx.engine.cancel([job.engine_job_id])
                in_transaction(ctx.db, lambda conn, job=job, over=over, started=started:
                               dbops.close_job(conn, job.jid, exitcode=exitcodes.TIMED_OUT,
                                               message=f"timed out: {over}", started=started))
                closed_here += 1
                continue
            waiting += 1
        if progress is not None:
            progress(len(every) - waiting, len(every))
        if waiting == 0:
            return closed_here
        sleep(ctx.settings.operator.poll_seconds)
