"""What a Dask engine job does on a worker, and the state file it leaves behind.

A job is one Dask task that runs ``rapid job run SPEC_URI`` as a subprocess and records its life in
``<workdir>/dask/<job id>.json``: the submitter writes it ``queued``; the task rewrites it
``running`` (with pid, host and start time) once the process runs and ``ended`` (with the exit
status and end time) when it stops. Every write replaces the whole file, so a reader sees one
complete record. A cancel request is a marker file ``<job id>.cancel`` beside it, which the task
watches while the process runs. The files make the job's state readable by any later process on a
machine that shares the work directory, whatever became of the client that submitted it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

QUEUED = "queued"
RUNNING = "running"
ENDED = "ended"

# Pause between looks at the cancel marker while the job's process runs.
WATCH_SECONDS = 0.2
# Time a cancelled process gets to stop after SIGTERM before it is killed.
TERM_GRACE_SECONDS = 5.0


def state_path(state_dir: str | os.PathLike, job_id: str) -> Path:
    """The state file of ``job_id``."""
    return Path(state_dir) / f"{job_id}.json"


def cancel_path(state_dir: str | os.PathLike, job_id: str) -> Path:
    """The cancel marker of ``job_id``."""
    return Path(state_dir) / f"{job_id}.cancel"


def exit_path(state_dir: str | os.PathLike, job_id: str) -> Path:
    """The file the job's shell wrapper writes its exit status to."""
    return Path(state_dir) / f"{job_id}.exit"


# The job runs under a shell that records its exit status itself, so the status survives a worker
# that dies while its job runs on (a LocalCluster whose operator was killed takes its workers along,
# not the jobs they started).
_WRAPPER = '"$@"; s=$?; echo $s > "$RAPID_JOB_EXIT_FILE"; exit $s'


def reason_for(status: int | None) -> str:
    """Why a job with exit ``status`` failed ("" for 0)."""
    if status is None:
        return "no exit status"
    if status == 0:
        return ""
    if status < 0:
        return f"killed by signal {-status}"
    if status > 128:  # the shell wrapper reports a job killed by signal n as 128 + n
        return f"killed by signal {status - 128}"
    return f"exit status {status}"


def write_record(path: Path, record: dict[str, Any]) -> None:
    """Replace the state file at ``path`` with ``record`` in one rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        tmp.write_text(json.dumps(record))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_record(path: Path) -> dict[str, Any] | None:
    """The record in the state file at ``path``; None if there is none or it cannot be read."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _stop(proc: subprocess.Popen) -> None:
    """Stop ``proc`` and everything it started: SIGTERM to its group, SIGKILL if it lingers."""
    for sig, wait in ((signal.SIGTERM, TERM_GRACE_SECONDS), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def run_job(job_id: str, spec_uri: str, command: list[str] | None,
            state_dir: str) -> dict[str, Any]:
    """Run one job on a Dask worker and return its final state record.

    Parameters
    ----------
    job_id : str
        The engine job id (also the Dask key of this task).
    spec_uri : str
        URI of the job spec, appended to ``command``.
    command : list of str or None
        Command prefix; None runs ``python -m rapid job run`` with the worker's interpreter.
    state_dir : str
        Folder of the state files.

    Returns
    -------
    dict
        The ``ended`` record: exit status (None if the process never started), start and end times
        (seconds since the epoch) and a reason for anything but exit 0.
    """
    folder = Path(state_dir)
    path = state_path(folder, job_id)
    base = {"job_id": job_id, "spec_uri": spec_uri, "host": socket.gethostname()}
    if cancel_path(folder, job_id).exists():
        now = time.time()
        record = {**base, "state": ENDED, "exit_status": None, "started": None, "ended": now,
                  "reason": "cancelled before it started"}
        write_record(path, record)
        return record
    argv = list(command or [sys.executable, "-m", "rapid", "job", "run"]) + [spec_uri]
    exit_path(folder, job_id).unlink(missing_ok=True)  # left by an attempt on a worker that died
    started = time.time()
    try:
        with open(folder / f"{job_id}.log", "ab") as log:
            # A new session makes the job a process group, so a cancel reaches its children too.
            proc = subprocess.Popen(
                ["/bin/sh", "-c", _WRAPPER, "sh", *argv], stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
                env={**os.environ, "RAPID_JOB_EXIT_FILE": str(exit_path(folder, job_id))})
    except OSError as exc:
        record = {**base, "state": ENDED, "exit_status": None, "started": None,
                  "ended": time.time(), "reason": f"cannot start the job: {exc}"}
        write_record(path, record)
        return record
    write_record(path, {**base, "state": RUNNING, "pid": proc.pid, "started": started})
    cancelled = False
    while True:
        try:
            proc.wait(timeout=WATCH_SECONDS)
            break
        except subprocess.TimeoutExpired:
            if cancel_path(folder, job_id).exists():
                cancelled = True
                _stop(proc)
    status = proc.returncode
    reason = "cancelled" if cancelled else reason_for(status)
    record = {**base, "state": ENDED, "pid": proc.pid, "exit_status": status,
              "started": started, "ended": time.time(), "reason": reason}
    write_record(path, record)
    return record
