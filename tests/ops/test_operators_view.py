"""What operators see: time statistics, the slowest and failed jobs, the times plot, as the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from rapid import exitcodes
from rapid.db import schema
from rapid.engines.noop import NoopEngine
from rapid.ops.context import OpsContext
from rapid.ops.launch_science import launch_science
from rapid.ops.register_science import register_science
from rapid.ops.status import summary
from rapid.ops.synthetic import START, add_synthetic_images

from .conftest import ops_settings
from .test_faults import END, PROCDATE


def _day_with_times(workdir: Path) -> OpsContext:
    """Five science jobs with run times 10..50 s and queue waits 1..5 s; the last one failed."""
    ctx = OpsContext.with_engine(ops_settings(workdir, f"sqlite:///{workdir / 'rapid.db'}"),
                                 NoopEngine())
    add_synthetic_images(ctx.db, 5, nfields=1)
    launch_science(ctx, START, END, PROCDATE)
    ctx.engine.run_pending()
    register_science(ctx, PROCDATE)
    j = schema.jobs
    with ctx.db.begin() as conn:
        jids = conn.execute(sa.select(j.c.jid).order_by(j.c.jid)).scalars().all()
        for k, jid in enumerate(jids, start=1):
            conn.execute(j.update().where(j.c.jid == jid).values(elapsed=10.0 * k, qwait=1.0 * k))
        conn.execute(j.update().where(j.c.jid == jids[-1]).values(
            exitcode=exitcodes.LOST, status=0, message="exit status 3; manifest missing"))
    return ctx


def test_summary_has_time_statistics_slowest_and_failed(tmp_path):
    ctx = _day_with_times(tmp_path / "work")
    data = summary(ctx, PROCDATE)
    [sci] = data["times"]
    assert sci["pipeline"] == "science"
    assert sci["elapsed"] == {"count": 5, "mean": 30.0, "median": 30.0, "p90": 50.0, "max": 50.0}
    assert sci["qwait"]["median"] == 3.0 and sci["qwait"]["max"] == 5.0
    assert [r["elapsed"] for r in data["slowest"]] == [50.0, 40.0, 30.0, 20.0, 10.0]
    [failed] = data["failed"]
    assert failed["exitcode"] == exitcodes.LOST and "manifest missing" in failed["message"]
    assert failed["meaning"] == exitcodes.meaning(exitcodes.LOST)
    ctx.close()


def _rapid(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAPID_")}
    env.update(RAPID_WORKDIR=str(workdir), COLUMNS="200")  # wide enough for whole rows
    return subprocess.run([sys.executable, "-m", "rapid", *args], capture_output=True, text=True,
                          env=env, cwd=workdir, timeout=120)


def test_cli_jobs_failed_status_and_times_plot(tmp_path):
    workdir = tmp_path / "work"
    _day_with_times(workdir).close()
    failed = _rapid(workdir, "jobs", "--failed", PROCDATE, "--json")
    assert failed.returncode == 0, failed.stderr
    rows = json.loads(failed.stdout)
    assert [(r["exitcode"], r["attempt"]) for r in rows] == [(exitcodes.LOST, 1)]
    table = _rapid(workdir, "jobs", "--failed")
    assert "manifest missing" in table.stdout and "1 failed job attempts" in table.stdout

    status = _rapid(workdir, "status", PROCDATE)
    assert status.returncode == 0, status.stderr
    assert "times (s)" in status.stdout and "slowest: jid" in status.stdout

    png = tmp_path / "t.png"
    plot = _rapid(workdir, "plot", "times", PROCDATE, "--out", str(png))
    assert plot.returncode == 0, plot.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    empty = _rapid(workdir, "plot", "times", "20300101", "--out", str(tmp_path / "none.png"))
    assert empty.returncode == 2 and "no finished jobs" in empty.stderr
