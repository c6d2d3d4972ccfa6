"""The operator killed with SIGKILL mid-run, two operators at once, and `rapid operate`.

Each run is a real `rapid run` (a separate process) on the small simulated survey with the local
engine, so what is checked afterwards is what an operator would find: every image has one
finished science job, no job ran to completion twice, no product is registered twice.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from rapid import exitcodes
from rapid.db import schema
from rapid.db.connect import open_database
from rapid.ingest.register import ingest_paths

PROCDATE = "20281008"
RANGE = ["--start", "2028-09-01 00:00:00", "--end", "2028-12-31 00:00:00"]


def _env(workdir: Path, db_url: str) -> dict:
    env = dict(os.environ)
    env.update(RAPID_WORKDIR=str(workdir), RAPID_DATABASE_URL=db_url, RAPID_POLL_SECONDS="0.2",
               RAPID_MAX_WORKERS="2", RAPID_QUEUE_TIMEOUT_SECONDS="600",
               RAPID_RUN_TIMEOUT_SECONDS="600", RAPID_MAX_ATTEMPTS="2")
    env.pop("RAPID_CONFIG", None)
    return env


def _rapid(*args: str) -> list[str]:
    return [sys.executable, "-m", "rapid", *args]


def _prepare(small_survey: Path, tmp_path: Path, db_url: str) -> dict:
    db = open_database(db_url)
    assert len(ingest_paths(db, [small_survey / "images"]).added) == 12
    db.dispose()
    return _env(tmp_path / "work", db_url)


def _check_survey_done_once(db_url: str, workdir: Path) -> dict:
    """Every image has one finished science job; nothing ran or registered twice."""
    db = open_database(db_url)
    j, d, r = schema.jobs, schema.diffimages, schema.refimages
    with db.connect() as conn:
        jobs = conn.execute(sa.select(j)).all()
        diffs = conn.execute(sa.select(d)).all()
        refs = conn.execute(sa.select(r)).all()
    db.dispose()
    science = [x for x in jobs if x.ppid == 15]
    assert all(x.state == "done" for x in jobs)
    latest = {}
    for x in sorted(science, key=lambda x: x.attempt):
        latest[x.rid] = x
    assert len(latest) == 12  # no image lost
    assert sorted(x.exitcode for x in latest.values()) == [0] * 6 + [exitcodes.NO_REFERENCE] * 6
    # no job ran to completion twice: one manifest per image among the science jobs
    jid_rid = {x.jid: x.rid for x in science}
    products = workdir / "store" / "products" / PROCDATE
    manifests = [json.loads(p.read_text()) for p in products.glob("jid*/manifest.json")]
    per_rid = Counter(jid_rid[m["jid"]] for m in manifests if m["jid"] in jid_rid)
    assert all(n == 1 for n in per_rid.values()), per_rid
    # no product registered twice
    assert sorted(Counter(x.rid for x in diffs).values()) == [1] * 6
    assert sorted(Counter((x.field, x.fid) for x in refs).values()) == [1, 1]
    post = [x for x in jobs if x.ppid == 17]
    assert sorted(Counter(x.parent_jid for x in post if x.exitcode == 0).values()) == [1] * 6
    return {"science_rows": len(science), "manifests": len(manifests)}


@pytest.mark.slow
def test_operator_killed_mid_run_finishes_on_restart(small_survey, tmp_path, db_url):
    env = _prepare(small_survey, tmp_path, db_url)
    first = subprocess.Popen(_rapid("run", *RANGE, "--procdate", PROCDATE), env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = open_database(db_url)
    j = schema.jobs
    deadline = time.monotonic() + 120
    try:
        while True:  # until some jobs are in the engine's hands
            with db.connect() as conn:
                n = conn.execute(sa.select(sa.func.count()).select_from(j).where(
                    j.c.state.in_(("submitted", "running")))).scalar()
            if n or first.poll() is not None:
                break
            assert time.monotonic() < deadline, "no job was ever submitted"
            time.sleep(0.05)
        time.sleep(random.uniform(0.0, 1.5))
        first.send_signal(signal.SIGKILL)
        assert first.wait(timeout=10) == -signal.SIGKILL
        with db.connect() as conn:
            states = Counter(conn.execute(sa.select(j.c.state)).scalars())
    finally:
        if first.poll() is None:
            first.kill()
        db.dispose()
    assert states["done"] < 24  # it really was stopped part-way
    second = subprocess.run(_rapid("run", *RANGE, "--procdate", PROCDATE), env=env,
                            capture_output=True, text=True, timeout=400)
    assert second.returncode == 0, second.stderr[-2000:]
    _check_survey_done_once(db_url, tmp_path / "work")


@pytest.mark.slow
def test_two_operators_at_once_launch_each_image_once(small_survey, tmp_path):
    db_url = f"sqlite:///{tmp_path / 'rapid.db'}"
    env = _prepare(small_survey, tmp_path, db_url)
    procs = [subprocess.Popen(_rapid("run", *RANGE, "--procdate", PROCDATE), env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    for proc in procs:
        _, stderr = proc.communicate(timeout=400)
        assert proc.returncode == 0, stderr[-2000:]
    found = _check_survey_done_once(db_url, tmp_path / "work")
    assert found["science_rows"] == 12  # one science job attempt per image


@pytest.mark.slow
def test_operate_once_processes_a_watched_folder_then_finds_nothing_new(small_survey, tmp_path):
    db_url = f"sqlite:///{tmp_path / 'rapid.db'}"
    env = _env(tmp_path / "work", db_url)
    first = subprocess.run(_rapid("operate", "--watch", str(small_survey / "images"), "--once"),
                           env=env, capture_output=True, text=True, timeout=400)
    assert first.returncode == 0, first.stderr[-2000:]
    db = open_database(db_url)
    j = schema.jobs
    with db.connect() as conn:
        rows = conn.execute(sa.select(j.c.ppid, j.c.exitcode)).all()
    assert sorted(code for ppid, code in rows if ppid == 15) == [0] * 6 + [33] * 6
    assert [code for ppid, code in rows if ppid == 17] == [0] * 6
    again = subprocess.run(_rapid("operate", "--watch", str(small_survey / "images"), "--once"),
                           env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr[-2000:]
    with db.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(j)).scalar() == len(rows)
    db.dispose()


def test_operate_stops_cleanly_on_sigterm(tmp_path):
    env = _env(tmp_path / "work", f"sqlite:///{tmp_path / 'rapid.db'}")
    proc = subprocess.Popen(_rapid("operate", "--interval", "30"), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not (tmp_path / "rapid.db").exists():  # started and opened its database
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.1)
    time.sleep(2.0)  # its first (empty) cycle is over; it sleeps
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 0, stderr
    assert "asked to stop" in stderr and "1 cycles" in stdout
