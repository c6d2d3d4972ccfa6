"""The engine interface and the engine states that the operator maps onto the jobs table."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from rapid.config import Settings


class EngineState(str, enum.Enum):
    QUEUED = "queued"  # accepted, not started (AWS Batch SUBMITTED/PENDING/RUNNABLE/STARTING)
    RUNNING = "running"
    SUCCEEDED = "succeeded"  # the process exited 0 (the manifest still decides the exit code)
    FAILED = "failed"  # non-zero exit, killed, or lost
    UNKNOWN = "unknown"  # the engine has no record of the job

    @property
    def finished(self) -> bool:
        return self in (EngineState.SUCCEEDED, EngineState.FAILED)


@dataclass(frozen=True)
class Submission:
    """One job to submit: a name for people and the URI of its spec."""

    name: str
    spec_uri: str


@dataclass(frozen=True)
class EngineJob:
    """What an engine knows of one job."""

    job_id: str
    state: EngineState
    exit_status: int | None = None
    started: datetime | None = None
    ended: datetime | None = None
    reason: str = ""


class Engine(Protocol):
    """Submit, poll and cancel jobs that run ``rapid job run SPEC_URI``."""

    name: str

    def submit(self, submissions: list[Submission]) -> list[str]:
        """Submit jobs; returns one engine job id per submission, in order."""

    def poll(self, job_ids: list[str]) -> dict[str, EngineJob]:
        """The state of each job id; ids the engine does not know are UNKNOWN."""

    def cancel(self, job_ids: list[str]) -> None:
        """Stop the jobs if they have not finished."""


def make_engine(settings: "Settings") -> Engine:
    """The engine named by ``settings.engine.kind``."""
    kind = settings.engine.kind
    if kind == "local":
        from rapid.engines.local import LocalEngine

        return LocalEngine(settings.workpath / "engine", max_workers=settings.engine.max_workers)
    if kind == "dask":
        from rapid.engines.dask import DaskEngine

        return DaskEngine(settings.engine.dask_address, workdir=settings.workpath / "engine",
                          n_workers=settings.engine.max_workers)
    if kind == "awsbatch":
        from rapid.engines.awsbatch import BatchEngine

        return BatchEngine(settings.engine)
    raise ValueError(f"unknown engine kind {kind!r}")
