"""Wait for a day's jobs of one pipeline to finish, never forever.

The operator polls the engine until every submitted job has finished and every row still "open"
has been settled (below). A job queued longer than ``operator.queue_timeout_seconds`` or running
longer than ``operator.run_timeout_seconds`` is cancelled and closed with exit 72; a job the engine
does not know is left for registration to close as lost.

A row still "open" ``OPEN_GRACE`` after its launch belongs to a launcher that stopped between opening
it and recording the submission, and the engine may or may not have the job. The operator settles
it with a start handshake in the store (object names in :mod:`rapid.ops.layout`; the job's half is
in :mod:`rapid.jobs.run`). The operator first writes a "withdrawn" tombstone beside the job's spec,
THEN looks beside the job's products:

- a manifest: the job ran; the row is marked submitted with the engine job id ``UNRECORDED`` and
  registered from its manifest;
- a "started" marker only: the job is running; the row is adopted the same way and waited for until
  its manifest appears, for at most ``operator.run_timeout_seconds`` from its adoption, after which
  registration closes it with exit 72;
- neither: the row is closed with exit 73 and the job may be launched again under a new jid.

The job first writes its "started" marker, THEN looks for the tombstone, and does no work when it is
there. Both sides write before they read and the store reads its own writes, so either the operator
sees the marker or the job sees the tombstone: a withdrawn job never runs beside its relaunch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from rapid import exitcodes, store
from rapid.db import operations as dbops
from rapid.engines.base import EngineState
from rapid.ops.collect import UNRECORDED, adopted_overdue, poll_engine
from rapid.ops.context import OpsContext
from rapid.ops.layout import handshake_record
from rapid.ops.retry import in_transaction
from rapid.ops.times import procdate_as_date

# A row still 'open' this long after it was launched belongs to a launcher that died mid-launch.
# (The launcher submits in slices, so a live launcher never leaves a row open for long.)
OPEN_GRACE = timedelta(seconds=60)

__all__ = ["OPEN_GRACE", "UNRECORDED", "wait_for_jobs"]

Progress = Callable[[int, int], None]
log = logging.getLogger("rapid.ops")


def _withdraw_then_look(ctx: OpsContext, procdate: str, jid: int) -> str:
    """Write the job's tombstone, THEN say what it left: "ran", "started" or "nothing".

    The tombstone is written even when the spec is not in the store: a launcher that is slow
    rather than dead may still write it and submit the job, which then finds the tombstone.
    """
    store.write_bytes(ctx.layout.withdrawn_uri(procdate, jid), handshake_record(jid))
    if store.exists(ctx.layout.manifest_uri(procdate, jid)):
        return "ran"
    if store.exists(ctx.layout.started_uri(procdate, jid)):
        return "started"
    return "nothing"


def _close_stale_open(ctx: OpsContext, procdate: str, jobs: list,
                      now: datetime) -> tuple[int, int]:
    """Settle rows left "open" by a launcher that stopped mid-launch; (closed, adopted).

    Each row's job is withdrawn (tombstone), then looked for in the store. A job that wrote its
    manifest or its "started" marker was submitted after all: its row is marked submitted with
    the engine job id :data:`UNRECORDED` and left to registration, so that it is not run a second
    time. Any other row is closed with exit 73; its job, should it start later, does nothing.
    A row whose store cannot be reached now stays open for the next poll.
    """
    closed = adopted = 0
    for job in jobs:
        if job.state != "open" or now - job.launched <= OPEN_GRACE:
            continue
        try:
            found = _withdraw_then_look(ctx, procdate, job.jid)
        except store.StoreError as exc:
            log.warning("job %s: left open, storage unavailable: %s", job.jid, exc)
            continue

        def settle(conn, job=job, found=found) -> bool:  # noqa: ANN001
            if dbops.get_job(conn, job.jid).state != "open":
                return False  # settled meanwhile by another operator
            if found != "nothing":
                dbops.mark_submitted(conn, job.jid, engine=ctx.engine.name,
                                     engine_job_id=UNRECORDED,
                                     spec_uri=ctx.layout.spec_uri(procdate, job.jid))
            else:
                dbops.close_job(conn, job.jid, exitcode=exitcodes.NOT_SUBMITTED,
                                message="opened but never submitted (launcher stopped "
                                        "mid-launch); withdrawn")
            return True

        if not in_transaction(ctx.db, settle, write=True):
            continue
        if found == "nothing":
            closed += 1
        else:
            adopted += 1
            log.info("job %s: left open by a stopped launcher but %s; adopted", job.jid,
                     "its manifest is in the store" if found == "ran" else "it has started")
    return closed, adopted


def _adopted_waiting(ctx: OpsContext, procdate: str, job, now: datetime) -> int:  # noqa: ANN001
    """1 while an adopted job has neither written its manifest nor run out of time, else 0.

    Registration closes an adopted job: from its manifest, or with exit 72 once it is overdue.
    """
    if adopted_overdue(ctx, job, now):
        return 0
    try:
        return 0 if store.exists(ctx.layout.manifest_uri(procdate, job.jid)) else 1
    except store.StoreError:
        return 1  # cannot tell now; asked again at the next poll


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
        closed, adopted = _close_stale_open(ctx, procdate, inflight, now)
        closed_here += closed
        if closed or adopted:
            continue  # read the settled rows again: an adopted job is waited for as submitted
        submitted = [j for j in inflight if j.state in ("submitted", "running")]
        states = poll_engine(ctx, submitted) if submitted else {}
        # A row open within OPEN_GRACE is recorded soon by its launcher or settled here once the
        # grace is over: it is waited for, so that a run does not end with it unsettled. (A stale
        # row the store kept from settling is not: it is left for the next wait.)
        waiting = sum(1 for j in inflight if j.state == "open" and now - j.launched <= OPEN_GRACE)
        for job in submitted:
            if job.engine_job_id == UNRECORDED:
                waiting += _adopted_waiting(ctx, procdate, job, now)
                continue
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
