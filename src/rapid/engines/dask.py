"""The Dask engine: each job is a task on a ``dask.distributed`` cluster that runs its process.

The task (:func:`rapid.engines.dask_task.run_job`) is keyed by the job id, left to run with
``fire_and_forget`` so it outlives the client that submitted it, and writes the job's state to
``<workdir>/dask/<job id>.json``. A poll reads those files and asks the scheduler, in one call,
which of the ids it still holds; a new process (an operator restarted after ``kill -9``) therefore
polls the jobs of an earlier one as long as it reaches the same scheduler or the same work
directory. For a remote cluster the work directory must be on a file system the workers share; with
an empty address the engine starts its own loopback ``LocalCluster``, whose jobs end with the
process that owns it (a later process then reports them FAILED, "lost").
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rapid.engines import dask_task
from rapid.engines.base import EngineJob, EngineState, Submission
from rapid.engines.local import pid_alive

# How long ``submit`` waits for the scheduler to acknowledge new tasks, so that a poll right after
# a submit never mistakes a task still in flight for a lost one.
ACK_TIMEOUT_SECONDS = 30.0
# Scheduler task states of a task that has not yet been handed to a worker thread.
_WAITING_STATES = {"released", "waiting", "queued", "no-worker"}


def _scheduler_tasks(keys: list[str], dask_scheduler: Any = None) -> dict[str, tuple[str, str]]:
    """Run on the scheduler: state and error text of each key it holds."""
    out = {}
    for key in keys:
        ts = dask_scheduler.tasks.get(key)
        if ts is not None:
            out[key] = (ts.state, str(ts.exception_text or ""))
    return out


def _utc(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, tz=timezone.utc)


class DaskEngine:
    """Jobs run as processes started by tasks on a Dask cluster.

    Parameters
    ----------
    address : str, optional
        Scheduler address (``tcp://host:8786``); empty (the default) starts a ``LocalCluster`` of
        worker processes on 127.0.0.1 without a dashboard.
    workdir : path
        Folder for the job state files and logs (``<workdir>/dask/``); must be shared with the
        workers of a remote cluster.
    command : list of str, optional
        Command prefix a job's spec URI is appended to; default ``python -m rapid job run`` with the
        worker's interpreter.
    n_workers : int, optional
        Workers of the local cluster, one job each at a time; default the number of CPUs. Ignored
        when ``address`` is given.
    """

    name = "dask"

    def __init__(self, address: str = "", *, workdir: str | os.PathLike,
                 command: list[str] | None = None, n_workers: int | None = None) -> None:
        if n_workers is not None and n_workers < 1:
            raise ValueError(f"n_workers must be at least 1, got {n_workers}")
        if command is not None and (not command or not all(isinstance(c, str) for c in command)):
            raise ValueError(f"command must be a non-empty list of strings, got {command!r}")
        from distributed import Client, LocalCluster

        self.state_dir = Path(workdir) / "dask"
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.command = list(command) if command else None
        self._cluster = None
        if address:
            self.client = Client(address, set_as_default=False)
        else:
            self._cluster = LocalCluster(
                n_workers=n_workers or os.cpu_count() or 1, threads_per_worker=1, processes=True,
                host="127.0.0.1", dashboard_address=None,
                # The scheduler serves health routes over HTTP even without a dashboard: keep them
                # on loopback too, on a free port rather than the shared default 8787.
                scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                # A worker only waits on its job's process; the job's memory is not the worker's.
                memory_limit=0)
            self.client = Client(self._cluster, set_as_default=False)
        self.address: str = self.client.scheduler.address

    # --- interface -------------------------------------------------------------------------
    def submit(self, submissions: list[Submission]) -> list[str]:
        """Submit one task per submission; returns the job ids (``rapid-<uuid>``), in order."""
        from distributed import fire_and_forget

        ids = [f"rapid-{uuid.uuid4().hex}" for _ in submissions]
        if not ids:
            return []
        now = time.time()
        for job_id, sub in zip(ids, submissions):
            dask_task.write_record(dask_task.state_path(self.state_dir, job_id),
                                   {"job_id": job_id, "name": sub.name, "spec_uri": sub.spec_uri,
                                    "state": dask_task.QUEUED, "submitted": now})
        futures = [self.client.submit(dask_task.run_job, job_id, sub.spec_uri, self.command,
                                      str(self.state_dir), key=job_id, pure=False)
                   for job_id, sub in zip(ids, submissions)]
        fire_and_forget(futures)
        self._await_ack(ids)
        return ids

    def poll(self, job_ids: list[str]) -> dict[str, EngineJob]:
        """The state of each job from its state file and the scheduler; unknown ids are UNKNOWN."""
        tasks = self._tasks(job_ids)
        return {job_id: self._state(job_id, tasks) for job_id in job_ids}

    def cancel(self, job_ids: list[str]) -> None:
        """Stop the jobs: mark them cancelled, drop queued tasks and kill running processes."""
        from distributed import Future

        for job_id in job_ids:
            record = dask_task.read_record(dask_task.state_path(self.state_dir, job_id))
            if record is not None and record.get("state") != dask_task.ENDED:
                dask_task.cancel_path(self.state_dir, job_id).touch()
        tasks = self._tasks(job_ids) or {}
        known = [Future(job_id, self.client) for job_id in job_ids if job_id in tasks]
        if known:
            # force: the fire-and-forget holder wants the keys too. A running task is not
            # interrupted by this; it sees the cancel marker and stops its process itself.
            self.client.cancel(known, force=True, reason="cancelled by rapid")

    def close(self) -> None:
        """Close the client, and the local cluster if this engine started one."""
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()

    def __enter__(self) -> "DaskEngine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- helpers -----------------------------------------------------------------------------
    def log_path(self, job_id: str) -> Path:
        return self.state_dir / f"{job_id}.log"

    def _tasks(self, job_ids: list[str]) -> dict[str, tuple[str, str]] | None:
        """Scheduler state of each id it holds; None if the scheduler cannot be reached."""
        if not job_ids:
            return {}
        try:
            return self.client.run_on_scheduler(_scheduler_tasks, list(job_ids))
        except (OSError, TimeoutError):
            return None

    def _await_ack(self, ids: list[str]) -> None:
        """Wait until each new task is held by the scheduler or has already left a state record."""
        pending = set(ids)
        deadline = time.monotonic() + ACK_TIMEOUT_SECONDS
        while pending and time.monotonic() < deadline:
            tasks = self._tasks(sorted(pending)) or {}
            pending = {job_id for job_id in pending
                       if job_id not in tasks and not self._left_queue(job_id)}
            if pending:
                time.sleep(0.05)

    def _left_queue(self, job_id: str) -> bool:
        record = dask_task.read_record(dask_task.state_path(self.state_dir, job_id))
        return record is not None and record.get("state") != dask_task.QUEUED

    def _state(self, job_id: str, tasks: dict[str, tuple[str, str]] | None) -> EngineJob:
        record = dask_task.read_record(dask_task.state_path(self.state_dir, job_id))
        task = None if tasks is None else tasks.get(job_id)
        if record is not None and record.get("state") == dask_task.ENDED:
            return self._ended(job_id, record)
        exit_file = dask_task.exit_path(self.state_dir, job_id)
        if record is not None and exit_file.exists():
            # The job ended but its task has not said so (yet, or ever: its worker died).
            return self._from_exit_file(job_id, record, exit_file)
        if task is not None and task[0] == "erred":
            return EngineJob(job_id, EngineState.FAILED, reason=f"the Dask task failed: {task[1]}")
        running = record is not None and record.get("state") == dask_task.RUNNING
        started = _utc(record.get("started")) if running else None
        cancelled = record is not None and dask_task.cancel_path(self.state_dir, job_id).exists()
        if cancelled and not running:
            # The task checks the marker before it starts the process, so this job never runs.
            return EngineJob(job_id, EngineState.FAILED, reason="cancelled before it started")
        if task is not None:
            if running or (record is None and task[0] == "processing"):
                return EngineJob(job_id, EngineState.RUNNING, started=started)
            return EngineJob(job_id, EngineState.QUEUED)
        if record is None:
            return EngineJob(job_id, EngineState.UNKNOWN, reason="no such job in the Dask engine")
        if tasks is None:  # the scheduler is out of reach: say what the file says
            return EngineJob(job_id, EngineState.RUNNING if running else EngineState.QUEUED,
                             started=started)
        if cancelled:
            return EngineJob(job_id, EngineState.FAILED, started=started, reason="cancelled")
        if running and record.get("host") == socket.gethostname() and \
                pid_alive(int(record["pid"])):
            # The task is gone (its worker died) but the job's process runs on here.
            return EngineJob(job_id, EngineState.RUNNING, started=started)
        return EngineJob(job_id, EngineState.FAILED, started=started,
                         reason="lost: the Dask scheduler no longer holds the job")

    def _from_exit_file(self, job_id: str, record: dict[str, Any], exit_file: Path) -> EngineJob:
        started = _utc(record.get("started"))
        try:
            status = int(exit_file.read_text().strip())
            ended = _utc(exit_file.stat().st_mtime)
        except (OSError, ValueError):  # caught mid-write: the job is just ending
            return EngineJob(job_id, EngineState.RUNNING, started=started)
        if status != 0 and dask_task.cancel_path(self.state_dir, job_id).exists():
            reason = "cancelled"
        else:
            reason = dask_task.reason_for(status)
        state = EngineState.SUCCEEDED if status == 0 else EngineState.FAILED
        return EngineJob(job_id, state, status, started, ended, reason)

    @staticmethod
    def _ended(job_id: str, record: dict[str, Any]) -> EngineJob:
        status = record.get("exit_status")
        state = EngineState.SUCCEEDED if status == 0 else EngineState.FAILED
        return EngineJob(job_id, state, status, _utc(record.get("started")),
                         _utc(record.get("ended")), record.get("reason", ""))
