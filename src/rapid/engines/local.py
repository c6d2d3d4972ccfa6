"""The local engine: a folder-backed batch queue run by a detached worker daemon.

Each job is a folder ``<root>/jobs/<job id>/`` holding ``submit.json``; the daemon
(:mod:`rapid.engines.local_daemon`) starts queued jobs, at most ``max_workers`` at a time, each as
``sh -c 'python -m rapid job run SPEC; echo $? > exit_status'`` in its own process group. The job's
state is read from files alone, so it survives the operator being killed: the daemon and the jobs run
on, and a new operator reads where they are. A job whose process vanished without writing its exit
status is reported FAILED ("lost").
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

from rapid.engines.base import EngineJob, EngineState, Submission

CLAIMED = "claimed"  # the daemon took the job (written before the process starts)
STARTED = "started.json"  # pid and start time (written once the process runs)
EXIT = "exit_status"  # written by the job's shell wrapper when the job process ends
CANCEL = "cancel"


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of a dead daemon is reaped by init; treat the rare defunct state as alive.
    return True


class LocalEngine:
    """Jobs run as local processes, queued in a folder.

    Parameters
    ----------
    root : path
        Folder of the queue (``<workdir>/engine``).
    max_workers : int, optional
        Jobs run at once. Default 2.
    command : list of str, optional
        Command prefix a job's spec URI is appended to (default ``python -m rapid job run``).
    """

    name = "local"

    def __init__(self, root: str | os.PathLike, *, max_workers: int = 2,
                 command: list[str] | None = None) -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {max_workers}")
        self.root = Path(root) / "local"
        self.jobs_dir = self.root / "jobs"
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self.max_workers = max_workers
        self.command = command or [sys.executable, "-m", "rapid", "job", "run"]

    # --- interface -------------------------------------------------------------------------
    def submit(self, submissions: list[Submission]) -> list[str]:
        ids = []
        for sub in submissions:
            job_id = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
            job_dir = self.jobs_dir / job_id
            job_dir.mkdir()
            record = {"name": sub.name, "spec_uri": sub.spec_uri, "command": self.command,
                      "submitted": time.time()}
            tmp = job_dir / "submit.json.tmp"
            tmp.write_text(json.dumps(record))
            os.replace(tmp, job_dir / "submit.json")
            ids.append(job_id)
        if ids:
            self.ensure_daemon()
        return ids

    def poll(self, job_ids: list[str]) -> dict[str, EngineJob]:
        out = {job_id: self._state(job_id) for job_id in job_ids}
        if any(job.state is EngineState.QUEUED for job in out.values()):
            self.ensure_daemon()  # a daemon killed with the operator is started again
        return out

    def cancel(self, job_ids: list[str]) -> None:
        for job_id in job_ids:
            job_dir = self.jobs_dir / job_id
            if not job_dir.is_dir() or (job_dir / EXIT).exists():
                continue
            (job_dir / CANCEL).touch()
            started = job_dir / STARTED
            if started.exists():
                pid = json.loads(started.read_text())["pid"]
                try:
                    os.killpg(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass

    # --- helpers -----------------------------------------------------------------------------
    def _state(self, job_id: str) -> EngineJob:
        job_dir = self.jobs_dir / job_id
        if not (job_dir / "submit.json").exists():
            return EngineJob(job_id, EngineState.UNKNOWN, reason="no such job in the local engine")
        started = ended = None
        info = None
        if (job_dir / STARTED).exists():
            info = json.loads((job_dir / STARTED).read_text())
            started = _utc(info["time"])
        exit_file = job_dir / EXIT
        if exit_file.exists():
            return self._ended(job_id, exit_file, started)
        if (job_dir / CANCEL).exists() and info is None:
            return EngineJob(job_id, EngineState.FAILED, started=started, ended=ended,
                             reason="cancelled before it started")
        if info is None:
            if (job_dir / CLAIMED).exists() and not self._daemon_running():
                return EngineJob(job_id, EngineState.FAILED,
                                 reason="lost: the engine stopped while starting the job")
            return EngineJob(job_id, EngineState.QUEUED)
        if pid_alive(info["pid"]):
            return EngineJob(job_id, EngineState.RUNNING, started=started)
        if exit_file.exists():  # it ended between the two looks
            return self._ended(job_id, exit_file, started)
        return EngineJob(job_id, EngineState.FAILED, started=started,
                         reason="lost: the job process vanished without an exit status")

    @staticmethod
    def _ended(job_id: str, exit_file: Path, started: datetime | None) -> EngineJob:
        text = exit_file.read_text().strip()
        ended = _utc(exit_file.stat().st_mtime)
        try:
            status = int(text)
        except ValueError:
            return EngineJob(job_id, EngineState.FAILED, started=started, ended=ended,
                             reason=text or "no exit status")
        if status == 0:
            return EngineJob(job_id, EngineState.SUCCEEDED, 0, started, ended)
        reason = f"killed by signal {status - 128}" if status > 128 else f"exit status {status}"
        return EngineJob(job_id, EngineState.FAILED, status, started, ended, reason)

    def log_path(self, job_id: str) -> Path:
        return self.jobs_dir / job_id / "output.log"

    def _daemon_running(self) -> bool:
        lock = self.root / "daemon.lock"
        lock.touch()
        with open(lock, "a") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(fh, fcntl.LOCK_UN)
            return False

    def ensure_daemon(self) -> None:
        """Start the worker daemon unless one holds the queue's lock."""
        if self._daemon_running():
            return
        log = open(self.root / "daemon.log", "ab")
        env = dict(os.environ)
        subprocess.Popen(
            [sys.executable, "-m", "rapid.engines.local_daemon", str(self.root),
             "--workers", str(self.max_workers)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, env=env,
            close_fds=True,
        )
        log.close()
        # Give it a moment to take the lock, so a second caller does not start another.
        for _ in range(50):
            if self._daemon_running():
                return
            time.sleep(0.02)
