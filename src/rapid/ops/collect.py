"""Gather what the engine and the store say of a day's unfinished jobs, for the register steps.

Registration trusts only the manifest a job wrote last, and checks that every product it lists is
in the store with the listed size before anything is registered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from rapid import exitcodes, store
from rapid.db import operations as dbops
from rapid.engines.base import EngineJob, EngineState
from rapid.jobs.spec import Manifest
from rapid.ops.context import OpsContext
from rapid.ops.times import procdate_as_date

UNFINISHED = ("submitted", "running")


@dataclass(frozen=True)
class Finished:
    """A job the engine reports finished (or lost), with its manifest or the reason it has none."""

    job: Any  # jobs row
    engine_job: EngineJob
    manifest: Manifest | None
    problem: str  # why there is no usable manifest ("" when there is one)
    exitcode_if_bad: int  # the exit code to close with when there is no usable manifest


def read_manifest(uri: str) -> tuple[Manifest | None, str]:
    """The manifest at ``uri`` and "", or None and what is wrong with it."""
    try:
        data = store.read_bytes(uri)
    except FileNotFoundError:
        return None, f"manifest missing: {uri}"
    except OSError as exc:
        return None, f"manifest unreadable: {uri}: {exc}"
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


def finished_jobs(ctx: OpsContext, procdate: str, ppid: int) -> tuple[list[Finished], int]:
    """The jobs of ``procdate`` and ``ppid`` that have finished but are not yet closed.

    Running jobs get their start time recorded on the way. Returns (finished, still unfinished).
    """
    pdate = procdate_as_date(procdate)
    with ctx.db.begin() as conn:
        jobs = dbops.jobs_for_procdate(conn, pdate, ppid=ppid, states=UNFINISHED)
    if not jobs:
        return [], 0
    states = ctx.engine.poll([job.engine_job_id for job in jobs])
    finished: list[Finished] = []
    pending = 0
    for job in jobs:
        ej = states.get(job.engine_job_id) or EngineJob(job.engine_job_id, EngineState.UNKNOWN)
        if ej.state in (EngineState.QUEUED, EngineState.RUNNING):
            if ej.state is EngineState.RUNNING and job.state != "running" and ej.started:
                with ctx.db.begin() as conn:
                    dbops.mark_running(conn, job.jid, started=ej.started)
            pending += 1
            continue
        manifest, problem = read_manifest(ctx.layout.manifest_uri(procdate, job.jid))
        if manifest is not None and manifest.jid != job.jid:
            manifest, problem = None, f"manifest is for job {manifest.jid}, not {job.jid}"
        if manifest is None and ej.state is not EngineState.SUCCEEDED:
            reason = ej.reason or ej.state.value
            problem = f"{reason}; {problem}"
            code = exitcodes.LOST
        else:
            code = exitcodes.BAD_MANIFEST
        finished.append(Finished(job, ej, manifest, problem, code))
    return finished, pending
