"""The ``rapid`` command as a new user meets it: simulate, ingest, run, status, and bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def rapid(*args: str, workdir: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAPID_")}
    env.update({"RAPID_WORKDIR": str(workdir), "RAPID_POLL_SECONDS": "0.2"})
    proc = subprocess.run([sys.executable, "-m", "rapid", *args], capture_output=True, text=True,
                          env=env, cwd=workdir.parent, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"rapid {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
    return proc


@pytest.mark.slow
def test_simulate_ingest_run_status(tmp_path):
    work = tmp_path / "work"
    rapid("simulate", "--out", str(tmp_path / "sv"), "--epochs", "4", "--size", "160",
          "--seed", "3", workdir=work)
    images = sorted((tmp_path / "sv" / "images").rglob("*.fits"))
    assert len(images) == 8
    out = rapid("ingest", str(tmp_path / "sv" / "images"), workdir=work).stdout
    assert "ingested 8 new, 0 unchanged, 0 failed" in out
    again = rapid("ingest", str(tmp_path / "sv" / "images"), workdir=work).stdout
    assert "ingested 0 new, 8 unchanged" in again
    run = rapid("run", "--start", "2028-09-01 00:00:00", "--end", "2028-12-01 00:00:00",
                "--procdate", "20281001", workdir=work)
    assert "2 reference images, 2 difference images" in run.stdout
    status = json.loads(rapid("status", "20281001", "--json", workdir=work).stdout)
    science = {(row["state"], row["exitcode"]): row["count"] for row in status["jobs"]
               if row["ppid"] == 15}
    assert science == {("done", 0): 2, ("done", 33): 6}
    assert status["diffimages"] == 2 and status["refimages"] == 2
    table = rapid("status", workdir=work).stdout
    assert "no reference image possible" in table
    evaluation = json.loads(rapid("evaluate", "--truth", str(tmp_path / "sv" / "truth.parquet"),
                                  "--procdate", "20281001", "--json", workdir=work).stdout)
    overall = evaluation["overall"]
    assert overall["images"] == 2
    assert overall["candidates"] == status["candidates"]
    assert overall["found"] <= overall["objects"] and overall["fp_per_image"] <= 10


def test_config_show_masks_password(tmp_path):
    env_url = "postgresql+psycopg://ops:hunter2@127.0.0.1:1/rapid"
    proc = subprocess.run([sys.executable, "-m", "rapid", "config", "show", "--json"],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "RAPID_DATABASE_URL": env_url,
                               "RAPID_WORKDIR": str(tmp_path)})
    shown = json.loads(proc.stdout)
    assert shown["database"]["url"] == "postgresql+psycopg://ops:***@127.0.0.1:1/rapid"
    assert "hunter2" not in proc.stdout + proc.stderr


def test_bad_inputs_give_one_clear_line(tmp_path):
    work = tmp_path / "work"
    corrupt = tmp_path / "corrupt.fits"
    corrupt.write_bytes(b"\x00" * 100)
    proc = rapid("ingest", str(corrupt), workdir=work, check=False)
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and str(corrupt) in errors[0] and "FITS" in errors[0]

    proc = rapid("launch", "science", "--start", "07/09/2028", "--end", "2028-09-08 00:00:00",
                 workdir=work, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("rapid: error: --start must look like '2028-09-07 00:00:00' "
                                   "(UTC), got '07/09/2028'")

    proc = rapid("register", "science", "2028-09-07", workdir=work, check=False)
    assert proc.returncode == 2 and "YYYYMMDD" in proc.stderr and len(proc.stderr.splitlines()) == 1

    proc = rapid("launch", "science", "--start", "2030-01-01 00:00:00", "--end",
                 "2030-01-02 00:00:00", workdir=work, check=False)
    assert proc.returncode == 2 and "no L2 images observed" in proc.stderr

    proc = rapid("run", "--start", "2030-01-02 00:00:00", "--end", "2030-01-01 00:00:00",
                 workdir=work, check=False)
    assert proc.returncode == 2 and "before --start" in proc.stderr

    proc = rapid("ingest", str(tmp_path / "absent"), workdir=work, check=False)
    assert proc.returncode == 2 and "no such file or folder" in proc.stderr


def test_sky_field_prints_the_published_tile(tmp_path):
    proc = rapid("sky", "field", "11.1", "-43.8", "--json", workdir=tmp_path / "w")
    info = json.loads(proc.stdout)
    assert info["field"] == 5321355
    assert info["ra0"] == pytest.approx(11.067073, abs=1e-5)
    assert info["dec_min"] == pytest.approx(-43.85415, abs=1e-5)


@pytest.mark.slow
def test_demo_injects_the_transients_asked_for(tmp_path):
    from rapid.jobs.products import read_table

    work = tmp_path / "work"
    out = rapid("demo", "--size", "160", "--epochs", "4", "--transients", "3", "--seed", "5",
                workdir=work).stdout
    truth = read_table(str(work / "demo-survey" / "truth.parquet")).to_pydict()
    images = set(truth["filename"])
    assert len(images) == 8
    for name in images:
        kinds = [k for f, k in zip(truth["filename"], truth["kind"]) if f == name]
        assert kinds.count("transient") == 3
    assert "difference images: 2" in out
    bad = rapid("demo", "--transients", "-1", workdir=work, check=False)
    assert bad.returncode == 2 and "--transients must be >= 0" in bad.stderr
