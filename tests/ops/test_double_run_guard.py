"""The start handshake that keeps a job from running beside its relaunch.

A launcher that dies after the engine accepted a job but before recording it leaves the job's row
"open". The operator withdraws such a job (tombstone) and then looks for its "started" marker; the
job writes its marker and then looks for the tombstone. These tests play both sides in one process:
the engine is the no-op engine (which never runs a job by itself) and the job is
:func:`rapid.jobs.run.run_job` with the science step replaced by a stand-in that counts its runs.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlparse

import pytest
import sqlalchemy as sa

from rapid import exitcodes, store
from rapid.db import schema
from rapid.engines.noop import NoopEngine
from rapid.jobs import run as jobrun
from rapid.jobs.spec import Manifest
from rapid.ops import wait as opswait
from rapid.ops.context import OpsContext
from rapid.ops.launch_science import launch_science
from rapid.ops.register_science import register_science
from rapid.ops.synthetic import START, add_synthetic_images
from rapid.ops.wait import wait_for_jobs

from .conftest import ops_settings

PROCDATE = "20280907"
END = START + timedelta(days=1)


def _jobs(ctx: OpsContext) -> list:
    with ctx.db.connect() as conn:
        return conn.execute(sa.select(schema.jobs).order_by(schema.jobs.c.jid)).all()


def _path(uri: str) -> Path:
    return Path(urlparse(uri).path)


class FakeScience:
    """Stands in for ``run_science``: counts its runs, optionally holds until released."""

    def __init__(self, *, hold: bool = False) -> None:
        self.runs: list[int] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        if not hold:
            self.release.set()

    def __call__(self, spec):  # noqa: ANN001, ANN204
        self.runs.append(spec.jid)
        self.entered.set()
        assert self.release.wait(timeout=30), "the test never released the job"
        now = datetime.now(timezone.utc)
        return Manifest(kind=spec.kind, jid=spec.jid, exitcode=0, started=now, ended=now,
                        message="fake science")


@pytest.fixture
def fake_science(monkeypatch) -> FakeScience:  # noqa: ANN001
    import rapid.science.job

    fake = FakeScience()
    monkeypatch.setattr(rapid.science.job, "run_science", fake)
    return fake


def _launched_then_launcher_died(tmp_path: Path, *, run_timeout: float = 600.0,
                                 opened_ago: timedelta = timedelta(hours=1)) -> tuple:
    """One science job written and submitted, its row left "open" as by a dead launcher."""
    base = ops_settings(tmp_path / "work", f"sqlite:///{tmp_path / 'r.db'}")
    settings = replace(base, operator=replace(base.operator, run_timeout_seconds=run_timeout))
    ctx = OpsContext.with_engine(settings, NoopEngine())
    add_synthetic_images(ctx.db, 1, nfields=1)
    [jid] = launch_science(ctx, START, END, PROCDATE).launched
    with ctx.db.begin() as conn:  # as if the launcher died before recording the submission
        conn.execute(schema.jobs.update().values(
            state="open", engine=None, engine_job_id=None, submitted=None,
            launched=datetime.now(timezone.utc) - opened_ago))
    return ctx, jid, ctx.layout.spec_uri(PROCDATE, jid)


def test_job_withdrawn_before_it_starts_does_nothing(tmp_path, fake_science, capsys):
    ctx, jid, spec_uri = _launched_then_launcher_died(tmp_path)
    store.write_bytes(ctx.layout.withdrawn_uri(PROCDATE, jid), b"{}")
    assert jobrun.run_job(spec_uri) == jobrun.WITHDRAWN
    assert fake_science.runs == []
    assert not store.exists(ctx.layout.manifest_uri(PROCDATE, jid))
    assert not store.exists(ctx.layout.log_uri(PROCDATE, jid))
    # its products folder holds the marker of its start and nothing else
    products = _path(ctx.layout.product_prefix(PROCDATE, jid))
    assert sorted(p.name for p in products.iterdir()) == ["started.json"]
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"job {jid} was withdrawn" in err[0]

    # the same job without a tombstone runs and writes its manifest
    _path(ctx.layout.withdrawn_uri(PROCDATE, jid)).unlink()
    assert jobrun.run_job(spec_uri) == 0
    assert fake_science.runs == [jid]
    assert Manifest.from_json(store.read_bytes(ctx.layout.manifest_uri(PROCDATE, jid))).jid == jid
    ctx.close()


def test_stale_open_job_that_started_is_adopted_and_registered_not_relaunched(
        tmp_path, monkeypatch):
    import rapid.science.job

    fake = FakeScience(hold=True)
    monkeypatch.setattr(rapid.science.job, "run_science", fake)
    ctx, jid, spec_uri = _launched_then_launcher_died(tmp_path)
    # the engine started the job: marker written, no tombstone yet, science under way
    statuses: list[int] = []
    job = threading.Thread(target=lambda: statuses.append(jobrun.run_job(spec_uri)))
    job.start()
    assert fake.entered.wait(timeout=30)
    assert store.exists(ctx.layout.started_uri(PROCDATE, jid))

    seen: list[tuple] = []

    def sleep(_seconds: float) -> None:
        if not seen:  # first poll: adopted, waited for, not closed
            [row] = _jobs(ctx)
            early = register_science(ctx, PROCDATE)
            seen.append((row.state, row.engine_job_id, early.closed, early.pending))
            fake.release.set()  # the job finishes: its manifest appears
            job.join(timeout=30)

    assert wait_for_jobs(ctx, PROCDATE, 15, sleep=sleep) == 0
    assert seen == [("submitted", "unrecorded", {}, 1)]
    assert store.exists(ctx.layout.withdrawn_uri(PROCDATE, jid))  # written before the look
    assert statuses == [0] and fake.runs == [jid]
    report = register_science(ctx, PROCDATE)
    assert report.closed == {jid: 0} and report.problems == {}
    [row] = _jobs(ctx)
    assert (row.state, row.exitcode, row.engine_job_id) == ("done", 0, "unrecorded")
    assert row.manifest_uri == ctx.layout.manifest_uri(PROCDATE, jid)
    # no second attempt: the image is done
    again = launch_science(ctx, START, END, PROCDATE)
    assert again.launched == [] and again.skipped == 1
    assert len(_jobs(ctx)) == 1
    ctx.close()


def test_stale_open_job_not_started_is_closed_and_does_nothing_when_it_starts(
        tmp_path, fake_science):
    ctx, jid, spec_uri = _launched_then_launcher_died(tmp_path)
    assert wait_for_jobs(ctx, PROCDATE, 15, sleep=lambda s: None) == 1
    [row] = _jobs(ctx)
    assert (row.state, row.exitcode) == ("done", exitcodes.NOT_SUBMITTED)
    assert "never submitted" in row.message
    assert store.exists(ctx.layout.withdrawn_uri(PROCDATE, jid))
    # the engine had the job after all and starts it now
    assert jobrun.run_job(spec_uri) == jobrun.WITHDRAWN
    assert fake_science.runs == []
    assert not store.exists(ctx.layout.manifest_uri(PROCDATE, jid))
    # the relaunch is a new attempt, and it is the only one that runs
    relaunched = launch_science(ctx, START, END, PROCDATE).launched
    assert len(relaunched) == 1 and relaunched[0] != jid
    assert jobrun.run_job(ctx.layout.spec_uri(PROCDATE, relaunched[0])) == 0
    assert fake_science.runs == relaunched
    ctx.close()


def test_stale_open_row_whose_spec_was_never_written_is_closed(tmp_path, fake_science):
    ctx, jid, spec_uri = _launched_then_launcher_died(tmp_path)
    _path(spec_uri).unlink()
    assert wait_for_jobs(ctx, PROCDATE, 15, sleep=lambda s: None) == 1
    [row] = _jobs(ctx)
    assert (row.state, row.exitcode) == ("done", exitcodes.NOT_SUBMITTED)
    ctx.close()


def test_adopted_job_without_manifest_is_closed_timed_out_after_the_run_timeout(tmp_path):
    timeout = 1.5
    ctx, jid, _ = _launched_then_launcher_died(tmp_path, run_timeout=timeout)
    # started (marker), then lost without a manifest
    store.write_bytes(ctx.layout.started_uri(PROCDATE, jid), b'{"jid": %d}' % jid)
    polls: list[tuple] = []

    def sleep(seconds: float) -> None:
        if not polls:
            early = register_science(ctx, PROCDATE)
            polls.append((early.closed, early.pending))
        polls.append(None)
        threading.Event().wait(0.1)

    assert wait_for_jobs(ctx, PROCDATE, 15, sleep=sleep) == 0
    [row] = _jobs(ctx)
    assert polls[0] == ({}, 1)  # still waited for within the timeout
    assert row.state == "submitted" and row.engine_job_id == "unrecorded"
    waited = (datetime.now(timezone.utc) - row.submitted).total_seconds()
    assert waited > timeout and len(polls) > 2
    report = register_science(ctx, PROCDATE)
    assert report.closed == {jid: exitcodes.TIMED_OUT} and report.pending == 0
    [row] = _jobs(ctx)
    assert row.exitcode == exitcodes.TIMED_OUT and row.message.startswith("timed out")
    ctx.close()


def test_young_open_row_is_waited_for_until_it_is_settled(tmp_path, monkeypatch):
    monkeypatch.setattr(opswait, "OPEN_GRACE", timedelta(seconds=0.5))
    began = time.monotonic()
    ctx, jid, _ = _launched_then_launcher_died(tmp_path, opened_ago=timedelta(0))
    polls = []
    assert wait_for_jobs(ctx, PROCDATE, 15,
                         sleep=lambda s: polls.append(threading.Event().wait(0.05))) == 1
    # waited (polling) for the grace to pass, rather than leaving the row open or closing it early;
    # wall time rather than a poll count, which depends on how fast the machine queries
    assert polls and time.monotonic() - began >= opswait.OPEN_GRACE.total_seconds()
    [row] = _jobs(ctx)
    assert (row.state, row.exitcode) == ("done", exitcodes.NOT_SUBMITTED)
    ctx.close()
