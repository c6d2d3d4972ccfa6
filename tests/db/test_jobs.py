"""Jobs: every launch attempt is a new row, state changes, closing rules, day listings."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from rapid.db import jobs as jobs_module
from rapid.db import operations as ops
from rapid.db import schema
from tests.db.dbfactory import FIELD, add_l2, later

DAY = date(2028, 9, 7)


def test_relaunch_is_attempt_two_and_leaves_the_first_row_untouched(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        rid = add_l2(conn, sca=5)
        jid1 = ops.open_job(conn, ppid=15, procdate=DAY, rid=rid)
        ops.mark_submitted(conn, jid1, engine="local", engine_job_id="p-1", spec_uri="s3://x/1")
        ops.close_job(conn, jid1, exitcode=70, message="lost")
        first = tuple(ops.get_job(conn, jid1))
        jid2 = ops.open_job(conn, ppid=15, procdate=DAY, rid=rid)
        ops.mark_submitted(conn, jid2, engine="local", engine_job_id="p-2", spec_uri="s3://x/2")
        job1, job2 = ops.get_job(conn, jid1), ops.get_job(conn, jid2)
    assert tuple(job1) == first
    assert (job1.attempt, job1.state, job1.exitcode, job1.engine_job_id) == (1, "done", 70, "p-1")
    assert (job2.attempt, job2.state, job2.engine_job_id) == (2, "submitted", "p-2")
    # fid, expid, sca and field come from the image.
    assert (job2.sca, job2.fid, job2.field) == (5, 2, FIELD)
    assert job2.svid is not None and job2.launched.tzinfo is not None


def test_attempts_count_per_job_and_day(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        rid_a, rid_b = add_l2(conn, sca=1), add_l2(conn, sca=2)
        assert ops.get_job(conn, ops.open_job(conn, ppid=15, procdate=DAY, rid=rid_a)).attempt == 1
        assert ops.get_job(conn, ops.open_job(conn, ppid=15, procdate=DAY, rid=rid_b)).attempt == 1
        nextday = DAY + timedelta(days=1)
        assert ops.get_job(conn, ops.open_job(conn, ppid=15, procdate=nextday,
                                              rid=rid_a)).attempt == 1
        # Stand-alone reference jobs have no image: attempts count per (field, fid).
        ref1 = ops.open_job(conn, ppid=12, procdate=DAY, field=FIELD, fid=2)
        ref2 = ops.open_job(conn, ppid=12, procdate=DAY, field=FIELD, fid=2)
        ref3 = ops.open_job(conn, ppid=12, procdate=DAY, field=FIELD, fid=8)
        assert [ops.get_job(conn, j).attempt for j in (ref1, ref2, ref3)] == [1, 2, 1]


def test_state_changes_and_times(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        rid = add_l2(conn)
        jid = ops.open_job(conn, ppid=15, procdate=DAY, rid=rid)
        assert ops.get_job(conn, jid).state == "open"
        ops.mark_submitted(conn, jid, engine="dask", engine_job_id="d-9", spec_uri="s3://s")
        ops.mark_submitted(conn, jid, engine="dask", engine_job_id="d-9", spec_uri="s3://s")
        with pytest.raises(ValueError, match="cannot be marked submitted"):
            ops.mark_submitted(conn, jid, engine="dask", engine_job_id="d-10", spec_uri="s3://s")
        submitted = ops.get_job(conn, jid).submitted
        started = submitted + timedelta(seconds=42)
        ops.mark_running(conn, jid, started=started)
        job = ops.get_job(conn, jid)
        assert (job.state, job.started, job.qwait) == ("running", started, pytest.approx(42.0))
        ops.close_job(conn, jid, exitcode=0, ended=started + timedelta(seconds=300),
                      manifest_uri="s3://m")
        job = ops.get_job(conn, jid)
    assert (job.state, job.exitcode, job.status, job.manifest_uri) == ("done", 0, 1, "s3://m")
    assert job.elapsed == pytest.approx(300.0) and job.qwait == pytest.approx(42.0)
    assert job.ended.utcoffset() == timedelta(0)


def test_close_job_status_follows_exit_code(engine: sa.Engine) -> None:
    expected = {0: 1, 31: 1, 32: 1, 33: 0, 64: 0, -9: 0}
    with engine.begin() as conn:
        for exitcode in expected:
            jid = ops.open_job(conn, ppid=12, procdate=DAY, field=None, fid=None)
            ops.close_job(conn, jid, exitcode=exitcode)
            assert ops.get_job(conn, jid).status == expected[exitcode], exitcode


def test_close_job_twice(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        jid = ops.open_job(conn, ppid=15, procdate=DAY, rid=add_l2(conn))
        # Closing an open job (the launch failed before submission) is allowed.
        ops.close_job(conn, jid, exitcode=73, message="submission failed",
                      started=later(0), ended=later(1))
        before = tuple(ops.get_job(conn, jid))
        ops.close_job(conn, jid, exitcode=73, message="other words", ended=later(9))
        assert tuple(ops.get_job(conn, jid)) == before
        with pytest.raises(ValueError, match="already done with exit code 73"):
            ops.close_job(conn, jid, exitcode=0)
        with pytest.raises(ValueError, match="already done"):
            ops.mark_running(conn, jid, started=later(2))
        job = ops.get_job(conn, jid)
        assert (job.message, job.elapsed, job.status) == ("submission failed", 60.0, 0)


def test_close_job_validates(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        jid = ops.open_job(conn, ppid=15, procdate=DAY, rid=add_l2(conn))
        with pytest.raises(ValueError, match="exitcode must be an integer"):
            ops.close_job(conn, jid, exitcode="0")
        with pytest.raises(ValueError, match="ended must be timezone-aware"):
            ops.close_job(conn, jid, exitcode=0, ended=datetime(2028, 9, 7))
        with pytest.raises(ValueError, match="ended must not precede started"):
            ops.close_job(conn, jid, exitcode=0, started=later(5), ended=later(1))
        with pytest.raises(ValueError, match="jid: no job"):
            ops.close_job(conn, 10_000, exitcode=0)
        with pytest.raises(ValueError, match="procdate must be a datetime.date"):
            ops.open_job(conn, ppid=15, procdate=datetime(2028, 9, 7, tzinfo=timezone.utc))
        with pytest.raises(ValueError, match="rid: no L2 image"):
            ops.open_job(conn, ppid=15, procdate=DAY, rid=999)


def test_jobs_for_procdate_gives_latest_attempts(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        rid_a, rid_b = add_l2(conn, sca=1), add_l2(conn, sca=2)
        a1 = ops.open_job(conn, ppid=15, procdate=DAY, rid=rid_a)
        ops.close_job(conn, a1, exitcode=70)
        a2 = ops.open_job(conn, ppid=15, procdate=DAY, rid=rid_a)
        b1 = ops.open_job(conn, ppid=15, procdate=DAY, rid=rid_b)
        ops.close_job(conn, b1, exitcode=0)
        post = ops.open_job(conn, ppid=17, procdate=DAY, rid=rid_b, parent_jid=b1)
        ops.open_job(conn, ppid=15, procdate=DAY + timedelta(days=1), rid=rid_a)
        assert [j.jid for j in ops.jobs_for_procdate(conn, DAY)] == [a2, b1, post]
        assert [j.jid for j in ops.jobs_for_procdate(conn, DAY, ppid=15)] == [a2, b1]
        # The state filter applies to the latest attempt: a1 is done but superseded.
        assert [j.jid for j in ops.jobs_for_procdate(conn, DAY, ppid=15, states=["done"])] == [b1]
        assert [j.jid for j in ops.jobs_for_procdate(conn, DAY, ppid=15,
                                                     all_attempts=True)] == [a1, a2, b1]
        assert ops.get_job(conn, post).parent_jid == b1
        assert ops.latest_job(conn, ppid=15, rid=rid_a, procdate=DAY).jid == a2
        assert ops.latest_job(conn, ppid=17, rid=rid_a, procdate=DAY) is None
        with pytest.raises(ValueError, match="states must be"):
            ops.jobs_for_procdate(conn, DAY, states=["finished"])


def test_reference_in_progress(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        rid = add_l2(conn)
        assert not ops.reference_in_progress(conn, field=FIELD, fid=2)
        jid = ops.open_job(conn, ppid=15, procdate=DAY, rid=rid)
        assert ops.reference_in_progress(conn, field=FIELD, fid=2)
        assert not ops.reference_in_progress(conn, field=FIELD, fid=3)
        ops.close_job(conn, jid, exitcode=0)
        assert not ops.reference_in_progress(conn, field=FIELD, fid=2)


def test_a_concurrent_duplicate_attempt_leaves_the_transaction_usable(
        engine: sa.Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    real_svid = jobs_module.current_svid
    with engine.begin() as conn:
        rid = add_l2(conn)

        def racing(c: sa.Connection) -> int:
            # Another launcher opens attempt 1 between open_job's max() and its insert.
            c.execute(schema.jobs.insert().values(ppid=15, rid=rid, procdate=DAY, attempt=1))
            return real_svid(c)

        monkeypatch.setattr(jobs_module, "current_svid", racing)
        with pytest.raises(IntegrityError):
            ops.open_job(conn, ppid=15, procdate=DAY, rid=rid)
        monkeypatch.setattr(jobs_module, "current_svid", real_svid)
        # On PostgreSQL this only works because the failed insert was inside a savepoint.
        jid = ops.open_job(conn, ppid=15, procdate=DAY, rid=rid)
        assert ops.get_job(conn, jid).attempt == 2
    with engine.connect() as conn:
        assert len(ops.jobs_for_procdate(conn, DAY, all_attempts=True)) == 2
