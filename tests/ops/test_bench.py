"""`rapid bench ops`: N no-op jobs launched and registered, one JSON line of figures."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from rapid.ops.bench import bench_ops


def test_bench_launches_and_registers_every_job_on_sqlite():
    figures = bench_ops(300)
    assert figures["backend"] == "sqlite"
    assert (figures["jobs"], figures["launched"], figures["registered"]) == (300, 300, 300)
    assert figures["problems"] == 0
    # far below what it reaches (about 900 and 400 jobs/s for 10,000 jobs), so never flaky
    assert figures["launch_jobs_per_s"] > 30 and figures["register_jobs_per_s"] > 30


@pytest.mark.postgres
def test_bench_on_postgresql_uses_and_drops_a_schema_of_its_own(postgres_url):
    import sqlalchemy as sa

    from tests.conftest import _postgres_base_url

    base = _postgres_base_url()
    figures = bench_ops(200, database_url=base)
    assert figures["backend"] == "postgresql"
    assert figures["launched"] == figures["registered"] == 200 and figures["problems"] == 0
    engine = sa.create_engine(base)
    with engine.connect() as conn:
        left = conn.execute(sa.text("SELECT count(*) FROM information_schema.schemata "
                                    "WHERE schema_name LIKE 'rapid_bench_%'")).scalar()
    engine.dispose()
    assert left == 0
    del postgres_url


def test_cli_prints_one_json_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAPID_")}
    env["RAPID_WORKDIR"] = str(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "rapid", "bench", "ops", "--jobs", "40"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    [line] = proc.stdout.strip().splitlines()
    data = json.loads(line)
    assert data["bench"] == "ops" and data["launched"] == data["registered"] == 40
    bad = subprocess.run([sys.executable, "-m", "rapid", "bench", "ops", "--jobs", "0"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert bad.returncode == 2 and "--jobs" in bad.stderr
