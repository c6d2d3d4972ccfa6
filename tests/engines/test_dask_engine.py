"""The Dask engine runs each job as a task on a loopback cluster and reports it from state files."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rapid.engines import dask_task
from rapid.engines.base import EngineState, Submission
from rapid.engines.dask import DaskEngine


def _fake_job(folder: Path) -> list[str]:
    """A job command whose 'spec URI' says what to do: ``exitN`` or ``sleepS``."""
    script = folder / "fake_job.py"
    script.write_text(
        "import sys, time\n"
        "action = sys.argv[1]\n"
        "if action.startswith('sleep'):\n"
        "    time.sleep(float(action[5:]))\n"
        "elif action.startswith('exit'):\n"
        "    sys.exit(int(action[4:]))\n")
    return [sys.executable, str(script)]


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> Iterator[DaskEngine]:
    """An engine that started its own LocalCluster: 2 workers of 1 thread on 127.0.0.1."""
    folder = tmp_path_factory.mktemp("dask")
    eng = DaskEngine("", workdir=folder / "engine", command=_fake_job(folder), n_workers=2)
    yield eng
    eng.close()


def _wait(engine: DaskEngine, ids: list[str], timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = engine.poll(ids)
        if all(s.state.finished for s in states.values()):
            return states
        time.sleep(0.05)
    raise AssertionError(f"jobs did not finish: {engine.poll(ids)}")


def test_local_cluster_is_loopback_with_two_single_thread_workers(engine):
    assert engine.address.startswith("tcp://127.0.0.1:")
    workers = engine.client.scheduler_info()["workers"]
    assert len(workers) == 2
    assert sorted(w["nthreads"] for w in workers.values()) == [1, 1]


def test_jobs_succeed_fail_and_report_exit_status(engine):
    ids = engine.submit([Submission("ok", "exit0"), Submission("bad", "exit3")])
    assert len(set(ids)) == 2 and all(i.startswith("rapid-") for i in ids)
    states = _wait(engine, ids)
    ok, bad = states[ids[0]], states[ids[1]]
    assert ok.state is EngineState.SUCCEEDED and ok.exit_status == 0
    assert bad.state is EngineState.FAILED and bad.exit_status == 3
    assert bad.reason == "exit status 3"
    assert ok.started is not None and ok.ended >= ok.started
    assert ok.started.tzinfo is not None


def test_second_engine_on_the_same_scheduler_sees_the_jobs(engine):
    """A new engine object (as after an operator restart) polls jobs its predecessor submitted."""
    ids = engine.submit([Submission("slow", "sleep1.0"), Submission("bad", "exit5")])
    later = DaskEngine(engine.address, workdir=engine.state_dir.parent)
    try:
        first = later.poll(ids)
        assert first[ids[0]].state in (EngineState.QUEUED, EngineState.RUNNING)
        states = _wait(later, ids)
        assert states[ids[0]].state is EngineState.SUCCEEDED
        assert states[ids[1]].exit_status == 5
        # the scheduler lets go of finished tasks: then the state files alone carry the outcome
        deadline = time.monotonic() + 30
        while later._tasks(ids):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert [s.state for s in later.poll(ids).values()] == [EngineState.SUCCEEDED,
                                                               EngineState.FAILED]
    finally:
        later.close()


def test_a_new_process_polls_the_jobs(engine):
    """An operator restarted in a new process polls by job id alone."""
    ids = engine.submit([Submission("ok", "exit0"), Submission("bad", "exit4")])
    _wait(engine, ids)
    code = ("import json, sys\n"
            "from rapid.engines.dask import DaskEngine\n"
            "eng = DaskEngine(sys.argv[1], workdir=sys.argv[2])\n"
            "states = eng.poll(sys.argv[3:])\n"
            "print(json.dumps({k: [v.state.value, v.exit_status] for k, v in states.items()}))\n"
            "eng.close()\n")
    out = subprocess.run([sys.executable, "-c", code, engine.address,
                          str(engine.state_dir.parent), *ids, "rapid-nope"],
                         capture_output=True, text=True, timeout=60, check=True)
    states = json.loads(out.stdout.strip().splitlines()[-1])
    assert states == {ids[0]: ["succeeded", 0], ids[1]: ["failed", 4],
                      "rapid-nope": ["unknown", None]}


def test_cancel_of_a_running_job_gives_failed(engine):
    [job] = engine.submit([Submission("long", "sleep60")])
    deadline = time.monotonic() + 30
    while engine.poll([job])[job].state is not EngineState.RUNNING:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    t0 = time.monotonic()
    engine.cancel([job])
    state = _wait(engine, [job])[job]
    assert state.state is EngineState.FAILED
    assert state.reason == "cancelled"
    # the task sees the cancel marker and kills the process: its record ends within seconds
    path = dask_task.state_path(engine.state_dir, job)
    while dask_task.read_record(path)["state"] != "ended":
        assert time.monotonic() - t0 < 30
        time.sleep(0.05)
    record = dask_task.read_record(path)
    assert record["exit_status"] == -15 and record["reason"] == "cancelled"
    assert engine.poll([job])[job].ended is not None


def test_cancel_of_a_queued_job_gives_failed(engine):
    ids = engine.submit([Submission("a", "sleep3"), Submission("b", "sleep3"),
                         Submission("c", "sleep3")])
    # two workers of one thread: the third job waits; cancel it before it starts
    engine.cancel([ids[2]])
    state = engine.poll([ids[2]])[ids[2]]
    assert state.state is EngineState.FAILED
    assert "cancelled" in state.reason
    engine.cancel(ids[:2])
    assert all(s.state is EngineState.FAILED for s in _wait(engine, ids).values())


def test_unknown_job_id_is_unknown(engine):
    assert engine.poll(["rapid-nope"])["rapid-nope"].state is EngineState.UNKNOWN


def test_job_the_scheduler_forgot_is_lost(engine):
    """A job queued on a cluster that died (an earlier LocalCluster) is FAILED, not waited on."""
    job_id = "rapid-from-a-dead-cluster"
    dask_task.write_record(dask_task.state_path(engine.state_dir, job_id),
                           {"job_id": job_id, "state": "queued", "submitted": time.time()})
    state = engine.poll([job_id])[job_id]
    assert state.state is EngineState.FAILED
    assert state.reason.startswith("lost")


def test_job_that_outlived_its_worker_reports_its_own_exit_status(engine):
    """Its worker died (the operator owning the LocalCluster was killed), the job ran on and its
    shell wrapper wrote the exit status: a new poll reads it instead of calling the job lost."""
    gone = subprocess.Popen(["true"])
    gone.wait()
    for job_id, status, state in (("rapid-orphan-ok", "0", EngineState.SUCCEEDED),
                                  ("rapid-orphan-killed", "137", EngineState.FAILED)):
        dask_task.write_record(dask_task.state_path(engine.state_dir, job_id),
                               {"job_id": job_id, "state": "running", "pid": gone.pid,
                                "host": socket.gethostname(), "started": time.time() - 5})
        dask_task.exit_path(engine.state_dir, job_id).write_text(status + "\n")
        job = engine.poll([job_id])[job_id]
        assert job.state is state and job.exit_status == int(status)
        assert job.ended >= job.started
    assert job.reason == "killed by signal 9"


def test_options_are_validated(tmp_path):
    with pytest.raises(ValueError, match="n_workers"):
        DaskEngine("", workdir=tmp_path, n_workers=0)
    with pytest.raises(ValueError, match="command"):
        DaskEngine("", workdir=tmp_path, command=[])
