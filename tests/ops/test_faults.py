"""Faults and bad input: each one closed with a reason, retried where it is worth retrying."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlparse

import pytest
import sqlalchemy as sa

from rapid import exitcodes, store
from rapid.db import schema
from rapid.engines.base import EngineJob, EngineState
from rapid.engines.local import LocalEngine
from rapid.engines.noop import NoopEngine
from rapid.ops.context import OpsContext
from rapid.ops.launch_science import launch_science
from rapid.ops.register_science import register_science
from rapid.ops.synthetic import START, add_synthetic_images
from rapid.ops.wait import wait_for_jobs

from .conftest import ops_settings
from .fakejobs import fake_job_command, set_actions

PROCDATE = "20280907"
END = START + timedelta(days=1)


def _jobs(ctx: OpsContext) -> list:
    with ctx.db.connect() as conn:
        return conn.execute(sa.select(schema.jobs).order_by(schema.jobs.c.jid)).all()


def _local(tmp_path, db_url: str, actions: dict, n: int):  # noqa: ANN001, ANN202
    settings = ops_settings(tmp_path / "work", db_url)
    command = fake_job_command(tmp_path / "fake", actions)
    engine = LocalEngine(settings.workpath / "engine", max_workers=2, command=command)
    ctx = OpsContext.with_engine(settings, engine)
    rids = add_synthetic_images(ctx.db, n, nfields=1)
    return ctx, command, rids


def test_crash_missing_and_corrupt_manifests_are_closed_with_reasons_then_retried(tmp_path):
    ctx, command, rids = _local(tmp_path, f"sqlite:///{tmp_path / 'r.db'}", {}, 4)
    ok, crash, missing, corrupt = rids
    set_actions(command, {ok: "ok", crash: "crash", missing: "nomanifest", corrupt: "corrupt"})
    assert len(launch_science(ctx, START, END, PROCDATE).launched) == 4
    wait_for_jobs(ctx, PROCDATE, 15)
    report = register_science(ctx, PROCDATE)
    by_rid = {job.rid: job for job in _jobs(ctx)}
    assert by_rid[ok].exitcode == 0 and by_rid[ok].status == 1
    assert by_rid[crash].exitcode == exitcodes.LOST
    assert "exit status 3" in by_rid[crash].message and "manifest missing" in by_rid[crash].message
    assert by_rid[missing].exitcode == exitcodes.BAD_MANIFEST
    assert by_rid[missing].message.startswith("manifest missing")
    assert by_rid[corrupt].exitcode == exitcodes.BAD_MANIFEST
    assert by_rid[corrupt].message.startswith("manifest corrupt")
    assert set(report.problems) == {by_rid[r].jid for r in (crash, missing, corrupt)}
    # nothing of the failed jobs is registered (these jobs make no products at all)
    with ctx.db.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.diffimages)).scalar() == 0

    # the next launch retries the three failures (attempt 2); then they have used max_attempts
    set_actions(command, {"*": "ok"})
    again = launch_science(ctx, START, END, PROCDATE)
    assert len(again.launched) == 3 and again.skipped == 1
    wait_for_jobs(ctx, PROCDATE, 15)
    register_science(ctx, PROCDATE)
    jobs = _jobs(ctx)
    assert sorted((j.rid, j.attempt) for j in jobs if j.attempt == 2) == sorted(
        (r, 2) for r in (crash, missing, corrupt))
    assert all(j.exitcode == 0 for j in jobs if j.attempt == 2)
    third = launch_science(ctx, START, END, PROCDATE)
    assert third.launched == [] and third.skipped == 4
    ctx.close()


def test_job_ending_after_midnight_is_registered_under_its_procdate(tmp_path):
    ctx, command, rids = _local(tmp_path, f"sqlite:///{tmp_path / 'r.db'}", {"*": "nextday"}, 1)
    launch_science(ctx, START, END, PROCDATE)
    wait_for_jobs(ctx, PROCDATE, 15)
    report = register_science(ctx, PROCDATE)
    [job] = _jobs(ctx)
    assert report.closed == {job.jid: 0}
    assert job.procdate.strftime("%Y%m%d") == PROCDATE
    assert job.ended.date() == datetime(2028, 9, 8).date()  # the next day
    assert job.elapsed == pytest.approx(30 * 60)
    ctx.close()


class FailingEngine(NoopEngine):
    """Accepts jobs, then reports every one FAILED (a host lost under them)."""

    def poll(self, job_ids):  # noqa: ANN001, ANN201
        return {i: EngineJob(i, EngineState.FAILED, reason="host terminated") for i in job_ids}


def test_engine_reporting_failed_closes_jobs_as_lost_with_its_reason(tmp_path):
    settings = ops_settings(tmp_path / "work", f"sqlite:///{tmp_path / 'r.db'}")
    ctx = OpsContext.with_engine(settings, FailingEngine())
    add_synthetic_images(ctx.db, 3, nfields=1)
    assert len(launch_science(ctx, START, END, PROCDATE).launched) == 3
    assert wait_for_jobs(ctx, PROCDATE, 15) == 0  # nothing to wait for: all finished
    report = register_science(ctx, PROCDATE)
    jobs = _jobs(ctx)
    assert [j.exitcode for j in jobs] == [exitcodes.LOST] * 3
    assert all(j.message.startswith("host terminated; manifest missing") for j in jobs)
    assert len(report.problems) == 3
    ctx.close()


def test_storage_unavailable_at_launch_closes_rows_and_the_next_launch_retries(tmp_path,
                                                                                monkeypatch):
    settings = ops_settings(tmp_path / "work", f"sqlite:///{tmp_path / 'r.db'}")
    ctx = OpsContext.with_engine(settings, NoopEngine())
    add_synthetic_images(ctx.db, 3, nfields=1)

    def down(url: str, data: bytes) -> None:
        raise store.StoreError(f"cannot write {url}: connection refused")

    real_write = store.write_bytes
    monkeypatch.setattr(store, "write_bytes", down)
    first = launch_science(ctx, START, END, PROCDATE)
    assert first.launched == [] and len(first.failed_submit) == 3
    jobs = _jobs(ctx)
    assert [j.exitcode for j in jobs] == [exitcodes.NOT_SUBMITTED] * 3
    assert all("StoreError" in j.message and "connection refused" in j.message for j in jobs)
    assert wait_for_jobs(ctx, PROCDATE, 15) == 0  # never waits on a job never submitted

    monkeypatch.setattr(store, "write_bytes", real_write)
    second = launch_science(ctx, START, END, PROCDATE)
    assert len(second.launched) == 3
    assert sorted(j.attempt for j in _jobs(ctx)) == [1, 1, 1, 2, 2, 2]
    ctx.close()


def test_storage_unavailable_at_registration_leaves_jobs_open_until_it_returns(tmp_path,
                                                                             monkeypatch):
    settings = ops_settings(tmp_path / "work", f"sqlite:///{tmp_path / 'r.db'}")
    ctx = OpsContext.with_engine(settings, NoopEngine())
    add_synthetic_images(ctx.db, 3, nfields=1)
    launch_science(ctx, START, END, PROCDATE)
    ctx.engine.run_pending()

    def down(url: str) -> bytes:
        raise store.StoreError(f"cannot read {url}: connection refused")

    real_read = store.read_bytes
    monkeypatch.setattr(store, "read_bytes", down)
    report = register_science(ctx, PROCDATE)
    assert report.closed == {} and report.pending == 3
    assert [j.state for j in _jobs(ctx)] == ["submitted"] * 3

    monkeypatch.setattr(store, "read_bytes", real_read)
    report = register_science(ctx, PROCDATE)
    assert sorted(report.closed.values()) == [0, 0, 0] and report.pending == 0
    ctx.close()


@pytest.mark.postgres
def test_database_connections_killed_mid_registration_are_retried(postgres_url, tmp_path):
    settings = ops_settings(tmp_path / "work", postgres_url)
    ctx = OpsContext.with_engine(settings, NoopEngine())
    add_synthetic_images(ctx.db, 60, nfields=2)
    assert len(launch_science(ctx, START, END, PROCDATE).launched) == 60
    ctx.engine.run_pending()

    pids: set[int] = set()
    sa.event.listen(ctx.db, "connect",
                    lambda dbapi_conn, _rec: pids.add(dbapi_conn.info.backend_pid))
    with ctx.db.connect() as conn:  # the connection already in the pool
        pids.add(conn.connection.dbapi_connection.info.backend_pid)
    admin = sa.create_engine(sa.make_url(postgres_url), poolclass=sa.pool.NullPool,
                             isolation_level="AUTOCOMMIT")
    updates = {"n": 0, "killed": 0}

    def kill_on_the_25th_close(conn, cursor, statement, *args):  # noqa: ANN001, ANN202
        if statement.lstrip().upper().startswith("UPDATE JOBS"):
            updates["n"] += 1
            if updates["n"] == 25 and not updates["killed"]:
                with admin.connect() as a:  # as a server restart does: every session goes
                    updates["killed"] = a.execute(sa.text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE pid = ANY(:pids)"), {"pids": sorted(pids)}).scalar()

    sa.event.listen(ctx.db, "before_cursor_execute", kill_on_the_25th_close)
    report = register_science(ctx, PROCDATE, chunk=20)
    admin.dispose()
    assert updates["killed"] >= 1
    assert len(report.closed) == 60 and report.problems == {}
    jobs = _jobs(ctx)
    assert len(jobs) == 60 and all(j.state == "done" and j.exitcode == 0 for j in jobs)
    ctx.close()


def test_job_stuck_in_the_queue_is_cancelled_and_closed_timed_out(tmp_path):
    base = ops_settings(tmp_path / "work", f"sqlite:///{tmp_path / 'r.db'}")
    settings = replace(base, operator=replace(base.operator, queue_timeout_seconds=0.0))
    ctx = OpsContext.with_engine(settings, NoopEngine())  # its jobs stay queued until run
    add_synthetic_images(ctx.db, 2, nfields=1)
    launched = launch_science(ctx, START, END, PROCDATE).launched
    assert wait_for_jobs(ctx, PROCDATE, 15, sleep=lambda s: None) == 2
    jobs = _jobs(ctx)
    assert [j.exitcode for j in jobs] == [exitcodes.TIMED_OUT] * 2
    assert all(j.message.startswith("timed out: queued for more than") for j in jobs)
    polled = ctx.engine.poll([j.engine_job_id for j in jobs])
    assert all(p.state is EngineState.FAILED for p in polled.values())  # cancelled
    assert len(launched) == 2
    ctx.close()


def test_rows_left_open_by_a_dead_launcher_are_closed_or_registered(tmp_path):
    """Never waited on: closed 73, unless its manifest shows it ran (then registered)."""
    settings = ops_settings(tmp_path / "work", f"sqlite:///{tmp_path / 'r.db'}")
    ctx = OpsContext.with_engine(settings, NoopEngine())
    add_synthetic_images(ctx.db, 2, nfields=1)
    launch_science(ctx, START, END, PROCDATE)
    ctx.engine.run_pending()  # both ran and wrote manifests
    j = schema.jobs
    jids = [job.jid for job in _jobs(ctx)]
    manifest = ctx.layout.manifest_uri(PROCDATE, jids[1])
    Path(urlparse(manifest).path).unlink()
    with ctx.db.begin() as conn:  # as if the launcher died before recording the submission
        conn.execute(j.update().values(state="open", engine=None, engine_job_id=None,
                                       launched=datetime.now(timezone.utc) - timedelta(hours=1)))
    assert wait_for_jobs(ctx, PROCDATE, 15, sleep=lambda s: None) == 1
    report = register_science(ctx, PROCDATE)
    first, second = _jobs(ctx)
    assert (first.exitcode, first.engine_job_id) == (0, "unrecorded") and report.closed == {
        first.jid: 0}
    assert second.exitcode == exitcodes.NOT_SUBMITTED and "never submitted" in second.message
    ctx.close()
