"""AWS Batch job descriptions mapped onto engine states.

AWS Batch walks a job through SUBMITTED, PENDING, RUNNABLE, STARTING, RUNNING and then SUCCEEDED or
FAILED. The first four are all "accepted, not started" to the operator. Times are integers of
milliseconds since the epoch; a failure's cause may sit in ``statusReason`` (a cancel, a timeout, a
lost host), in ``container.reason`` (out of memory, an image that cannot be pulled) or only in the
exit code, sometimes only in the last attempt.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from rapid.engines.base import EngineJob, EngineState

BATCH_STATES = {
    "SUBMITTED": EngineState.QUEUED,
    "PENDING": EngineState.QUEUED,
    "RUNNABLE": EngineState.QUEUED,
    "STARTING": EngineState.QUEUED,
    "RUNNING": EngineState.RUNNING,
    "SUCCEEDED": EngineState.SUCCEEDED,
    "FAILED": EngineState.FAILED,
}


def utc_from_millis(value: Any) -> datetime | None:
    """A tz-aware UTC datetime from AWS milliseconds since the epoch; None for a missing value."""
    if value is None or value == 0:
        return None
    return datetime.fromtimestamp(int(value) / 1000.0, tz=timezone.utc)


def _container(desc: dict[str, Any]) -> dict[str, Any]:
    """The container details of the job, or of its last attempt when the job's own are bare."""
    container = dict(desc.get("container") or {})
    attempts = desc.get("attempts") or []
    if attempts:
        last = attempts[-1].get("container") or {}
        for key in ("exitCode", "reason"):
            if container.get(key) is None and last.get(key) is not None:
                container[key] = last[key]
    return container


def failure_reason(desc: dict[str, Any]) -> str:
    """Why a job failed, from every place AWS Batch may put it."""
    container = _container(desc)
    parts = []
    for text in (desc.get("statusReason"), container.get("reason")):
        if text and text not in parts:
            parts.append(str(text))
    if container.get("exitCode") is not None:
        parts.append(f"exit code {container['exitCode']}")
    return "; ".join(parts) or "AWS Batch reports the job FAILED without a reason"


def job_from_description(job_id: str, desc: dict[str, Any]) -> EngineJob:
    """The engine's view of one ``describe_jobs`` entry.

    Parameters
    ----------
    job_id : str
        The id the job was polled by.
    desc : dict
        The job's entry in the ``jobs`` list of a ``describe_jobs`` response.

    Returns
    -------
    EngineJob
    """
    status = desc.get("status")
    state = BATCH_STATES.get(status or "", EngineState.UNKNOWN)
    started = utc_from_millis(desc.get("startedAt"))
    ended = utc_from_millis(desc.get("stoppedAt")) if state.finished else None
    exit_code = _container(desc).get("exitCode")
    if state is EngineState.SUCCEEDED:
        return EngineJob(job_id, state, 0 if exit_code is None else int(exit_code), started, ended)
    if state is EngineState.FAILED:
        return EngineJob(job_id, state, None if exit_code is None else int(exit_code), started,
                         ended, failure_reason(desc))
    if state is EngineState.UNKNOWN:
        return EngineJob(job_id, state, reason=f"unexpected AWS Batch status {status!r}")
    return EngineJob(job_id, state, started=started if state is EngineState.RUNNING else None)
