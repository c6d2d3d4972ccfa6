"""The local engine runs queued jobs as processes and reports their states from files alone."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from rapid.engines.base import EngineState, Submission
from rapid.engines.local import LocalEngine


def _fake_job(tmp_path: Path) -> list[str]:
    """A job command: the 'spec URI' is a tiny Python snippet describing what to do."""
    script = tmp_path / "fake_job.py"
    script.write_text(
        "import sys, time, pathlib\n"
        "action = sys.argv[1]\n"
        "if action.startswith('sleep'):\n"
        "    time.sleep(float(action[5:]))\n"
        "elif action.startswith('exit'):\n"
        "    sys.exit(int(action[4:]))\n"
        "elif action.startswith('touch:'):\n"
        "    pathlib.Path(action[6:]).write_text(str(time.time()))\n")
    return [sys.executable, str(script)]


def _wait(engine: LocalEngine, ids: list[str], timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = engine.poll(ids)
        if all(s.state.finished for s in states.values()):
            return states
        time.sleep(0.1)
    raise AssertionError(f"jobs did not finish: {engine.poll(ids)}")


def test_jobs_succeed_fail_and_report_exit_status(tmp_path):
    engine = LocalEngine(tmp_path / "engine", max_workers=2, command=_fake_job(tmp_path))
    ids = engine.submit([Submission("ok", "exit0"), Submission("bad", "exit3")])
    states = _wait(engine, ids)
    assert states[ids[0]].state is EngineState.SUCCEEDED
    assert states[ids[0]].exit_status == 0
    assert states[ids[1]].state is EngineState.FAILED
    assert states[ids[1]].exit_status == 3
    assert states[ids[0]].started is not None and states[ids[0]].ended >= states[ids[0]].started


def test_unknown_job_id_is_unknown(tmp_path):
    engine = LocalEngine(tmp_path / "engine", command=_fake_job(tmp_path))
    assert engine.poll(["nope"])["nope"].state is EngineState.UNKNOWN


def test_at_most_max_workers_run_at_once(tmp_path):
    engine = LocalEngine(tmp_path / "engine", max_workers=1, command=_fake_job(tmp_path))
    ids = engine.submit([Submission("a", "sleep1.0"), Submission("b", "sleep1.0")])
    time.sleep(0.5)
    states = engine.poll(ids)
    assert [states[i].state for i in ids] == [EngineState.RUNNING, EngineState.QUEUED]
    states = _wait(engine, ids)
    # the second started only after the first ended
    assert states[ids[1]].started >= states[ids[0]].ended


def test_killed_job_is_reported_failed_with_signal(tmp_path):
    engine = LocalEngine(tmp_path / "engine", command=_fake_job(tmp_path))
    [job] = engine.submit([Submission("long", "sleep30")])
    deadline = time.monotonic() + 30
    while engine.poll([job])[job].state is not EngineState.RUNNING:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    engine.cancel([job])
    state = _wait(engine, [job])[job]
    assert state.state is EngineState.FAILED


def test_vanished_process_is_lost_not_running(tmp_path):
    engine = LocalEngine(tmp_path / "engine", command=_fake_job(tmp_path))
    [job] = engine.submit([Submission("long", "sleep30")])
    deadline = time.monotonic() + 30
    while engine.poll([job])[job].state is not EngineState.RUNNING:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    started = (engine.jobs_dir / job / "started.json").read_text()
    pid = __import__("json").loads(started)["pid"]
    os.killpg(pid, signal.SIGKILL)  # the job and its shell wrapper die without an exit status
    deadline = time.monotonic() + 30
    while True:
        state = engine.poll([job])[job]
        if state.state is EngineState.FAILED:
            break
        assert time.monotonic() < deadline, state
        time.sleep(0.05)
    assert "lost" in state.reason or "signal" in state.reason


def test_queue_survives_a_new_engine_object(tmp_path):
    """An operator restarted with a new engine object sees the jobs its predecessor submitted."""
    marker = tmp_path / "ran"
    first = LocalEngine(tmp_path / "engine", command=_fake_job(tmp_path))
    [job] = first.submit([Submission("t", f"touch:{marker}")])
    second = LocalEngine(tmp_path / "engine", command=_fake_job(tmp_path))
    assert _wait(second, [job])[job].state is EngineState.SUCCEEDED
    assert marker.exists()


def test_max_workers_validated(tmp_path):
    with pytest.raises(ValueError, match="max_workers"):
        LocalEngine(tmp_path, max_workers=0)
