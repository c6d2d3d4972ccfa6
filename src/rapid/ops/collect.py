"""Gather what the engine and the store say of a day's unfinished jobs, for the register steps.

Registration trusts only the manifest a job wrote last, and checks that every product it lists is
in the store with the listed size before anything is registered.

A job adopted by the operator without an engine job id (:data:`UNRECORDED`, see
:mod:`rapid.ops.wait`) cannot be asked about: no engine is polled for it, and it is followed by its
manifest alone. Until its manifest appears it counts as pending, for ``operator.run_timeout_seconds``
from its adoption; then it is closed as timed out (exit 72).
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from pydantic import ValidationError

from rapid import exitcodes, store
from rapid.db import bulk
from rapid.db import operations as dbops
from rapid.engines.base import EngineJob, EngineState
from rapid.jobs.spec import Manifest
from rapid.ops.context import OpsContext
from rapid.ops.retry import in_transaction
from rapid.ops.times import procdate_as_date

UNFINISHED = ("submitted", "running")
READERS = 8  # manifests read at once
# Engine job id of a job found submitted after all whose engine id was never recorded (the
# launcher stopped between submitting it and recording that).
UNRECORDED = "unrecorded"

log = logging.getLogger("rapid.ops")


@dataclass(frozen=True)
class Finished:
    """A job the engine reports finished (or lost), with its manifest or the reason it has none."""

    job: Any  # jobs row
    engine_job: EngineJob
    manifest: Manifest | None
    problem: str  # why there is no usable manifest ("" when there is one)
    exitcode_if_bad: int  # the exit code to close with when there is no usable manifest


def read_manifest(uri: str) -> tuple[Manifest | None, str]:
    """The manifest at ``uri`` and "", or None and what is wrong with it.

    Storage that cannot be reached (after the store's own retries) raises
    :class:`rapid.store.StoreError`: that says nothing about the job, so the job is not closed.
    """
    try:
        data = store.read_bytes(uri)
    except FileNotFoundError:
        return None, f"manifest missing: {uri}"
    try:
        manifest = Manifest.from_json(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        return None, f"manifest corrupt: {uri}: {first.get('msg')} at {first.get('loc')}"
    for product in manifest.products:
        try:
            size = store.size(product.uri)
        except FileNotFoundError:
            return None, f"manifest lists a product missing from the store: {product.uri}"
        if size != product.size:
            return None, (f"product {product.uri} is {size} bytes, the manifest says "
                          f"{product.size}")
    return manifest, ""


def poll_engine(ctx: OpsContext, jobs: list) -> dict[str, EngineJob]:
    """What the engine says of ``jobs``, by engine job id.

    Jobs adopted without an engine job id are not sent to the engine (no engine knows the id); they
    are reported UNKNOWN under :data:`UNRECORDED`.
    """
    ids = [job.engine_job_id for job in jobs if job.engine_job_id != UNRECORDED]
    states = ctx.engine.poll(ids) if ids else {}
    if len(ids) < len(jobs):
        states[UNRECORDED] = EngineJob(UNRECORDED, EngineState.UNKNOWN,
                                       reason="engine job id never recorded")
    return states


def adopted_overdue(ctx: OpsContext, job: Any, now: datetime) -> bool:
    """Whether an adopted job (engine id :data:`UNRECORDED`) ran out of time for its manifest.

    Counted against ``operator.run_timeout_seconds`` from its adoption (its ``submitted`` time, on
    the operator's clock, never before its launch) rather than from its launch: an operator
    restarted long after the launch must not close a job that is still running, since it cannot
    cancel it and a relaunch would run beside it.
    """
    since = job.submitted or job.launched
    return since is None or \
        (now - since).total_seconds() > ctx.settings.operator.run_timeout_seconds


def _look(ctx: OpsContext, procdate: str, job: Any, ej: EngineJob,
          now: datetime) -> Finished | None:
    """What to close ``job`` with; None when the store cannot be reached now, or when an adopted
    job has not written its manifest yet and still has time to."""
    uri = ctx.layout.manifest_uri(procdate, job.jid)
    try:
        if job.engine_job_id == UNRECORDED and not store.exists(uri):
            if not adopted_overdue(ctx, job, now):
                return None
            limit = ctx.settings.operator.run_timeout_seconds
            return Finished(job, ej, None, f"timed out: adopted without an engine job id, no "
                                           f"manifest {limit:.0f} s after it was adopted",
                            exitcodes.TIMED_OUT)
        manifest, problem = read_manifest(uri)
    except store.StoreError as exc:
        log.warning("job %s: storage unavailable, left for the next registration: %s",
                    job.jid, exc)
        return None
    if manifest is not None and manifest.jid != job.jid:
        manifest, problem = None, f"manifest is for job {manifest.jid}, not {job.jid}"
    if manifest is None and ej.state is not EngineState.SUCCEEDED:
        reason = ej.reason or ej.state.value
        return Finished(job, ej, None, f"{reason}; {problem}", exitcodes.LOST)
    return Finished(job, ej, manifest, problem, exitcodes.BAD_MANIFEST)


def finished_jobs(ctx: OpsContext, procdate: str, ppid: int) -> tuple[list[Finished], int]:
    """The jobs of ``procdate`` and ``ppid`` that have finished but are not yet closed.

    Running jobs get their start time recorded on the way (in one transaction). Manifests are
    read several at a time, since each read waits on storage.

    Parameters
    ----------
    ctx : OpsContext
    procdate : str
        Processing date ``YYYYMMDD``.
    ppid : int
        Pipeline.

    Returns
    -------
    tuple of (list of Finished, int)
        The finished jobs (ordered by jid) and the number still queued or running (adopted jobs
        without a manifest yet included), or whose manifest could not be read because the store
        is unavailable.
    """
    pdate = procdate_as_date(procdate)
    jobs = in_transaction(ctx.db, lambda conn: dbops.jobs_for_procdate(
        conn, pdate, ppid=ppid, states=UNFINISHED))
    if not jobs:
        return [], 0
    states = poll_engine(ctx, jobs)
    now = datetime.now(timezone.utc)
    done: list[tuple[Any, EngineJob]] = []
    started: list[tuple[int, Any]] = []
    pending = 0
    for job in jobs:
        ej = states.get(job.engine_job_id) or EngineJob(job.engine_job_id, EngineState.UNKNOWN)
        if ej.state in (EngineState.QUEUED, EngineState.RUNNING):
            if ej.state is EngineState.RUNNING and job.state != "running" and ej.started:
                started.append((job.jid, ej.started))
            pending += 1
            continue
        done.append((job, ej))
    if started:
        in_transaction(ctx.db, lambda conn: bulk.mark_running_many(conn, started))
    if len(done) < 2 * READERS:
        looked = [_look(ctx, procdate, job, ej, now) for job, ej in done]
    else:
        with ThreadPoolExecutor(max_workers=READERS) as pool:
            looked = list(pool.map(lambda pair: _look(ctx, procdate, *pair, now), done))
    finished = [item for item in looked if item is not None]
    # Jobs whose manifest could not be looked at, or adopted jobs still running, stay open and
    # count as pending.
    return finished, pending + len(looked) - len(finished)
