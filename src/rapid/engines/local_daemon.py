"""The local engine's worker daemon: starts queued jobs, at most N at a time, then exits when idle.

Run as ``python -m rapid.engines.local_daemon ROOT --workers N``. Only one daemon serves a queue
folder: it holds an exclusive lock on ``ROOT/daemon.lock`` for its whole life.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from rapid.engines.local import CANCEL, CLAIMED, EXIT, STARTED, pid_alive

IDLE_EXIT_SECONDS = 20.0
TICK_SECONDS = 0.1


def _queued(jobs_dir: Path, claimed: set[str]) -> list[Path]:
    """Submitted jobs not yet claimed, oldest first (job ids sort by submission time)."""
    out = []
    for name in sorted(os.listdir(jobs_dir)):
        if name in claimed:
            continue
        job_dir = jobs_dir / name
        if (job_dir / CLAIMED).exists():
            claimed.add(name)
        elif (job_dir / "submit.json").exists():
            out.append(job_dir)
    return out


def _orphans(jobs_dir: Path) -> list[int]:
    """Pids of jobs an earlier daemon started that still run (they count against the limit)."""
    pids = []
    for job_dir in jobs_dir.iterdir():
        started = job_dir / STARTED
        if started.exists() and not (job_dir / EXIT).exists():
            pid = json.loads(started.read_text())["pid"]
            if pid_alive(pid):
                pids.append(pid)
    return pids


def _start(job_dir: Path) -> subprocess.Popen:
    record = json.loads((job_dir / "submit.json").read_text())
    (job_dir / CLAIMED).touch()
    argv = [*record["command"], record["spec_uri"]]
    exit_file = job_dir / EXIT
    # The shell writes the exit status itself, so it is recorded even if this daemon dies first.
    script = (f"{shlex.join(argv)}; s=$?; echo $s > {shlex.quote(str(exit_file))}.tmp && "
              f"mv {shlex.quote(str(exit_file))}.tmp {shlex.quote(str(exit_file))}")
    with open(job_dir / "output.log", "ab") as log:
        proc = subprocess.Popen(["/bin/sh", "-c", script], stdin=subprocess.DEVNULL, stdout=log,
                                stderr=log, start_new_session=True, close_fds=True)
    tmp = job_dir / (STARTED + ".tmp")
    tmp.write_text(json.dumps({"pid": proc.pid, "time": time.time()}))
    os.replace(tmp, job_dir / STARTED)
    return proc


def serve(root: Path, workers: int) -> None:
    jobs_dir = root / "jobs"
    jobs_dir.mkdir(parents=True, exist_ok=True)
    lock = open(root / "daemon.lock", "a")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return  # another daemon serves this queue
    children: list[subprocess.Popen] = []
    orphans = _orphans(jobs_dir)
    claimed: set[str] = set()
    idle_since = time.monotonic()
    while True:
        children = [c for c in children if c.poll() is None]  # reap finished jobs
        orphans = [pid for pid in orphans if pid_alive(pid)]
        queued = _queued(jobs_dir, claimed)
        free = workers - len(children) - len(orphans)
        for job_dir in queued[:max(free, 0)]:
            claimed.add(job_dir.name)
            if (job_dir / CANCEL).exists():
                (job_dir / CLAIMED).touch()
                (job_dir / EXIT).write_text("cancelled before it started\n")
                continue
            children.append(_start(job_dir))
        if queued or children or orphans:
            idle_since = time.monotonic()
        elif time.monotonic() - idle_since > IDLE_EXIT_SECONDS:
            return
        time.sleep(TICK_SECONDS)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("root", type=Path)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    serve(args.root, args.workers)


if __name__ == "__main__":
    main(sys.argv[1:])
