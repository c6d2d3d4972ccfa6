"""Engine settings: SQLite foreign keys and WAL, UTC timestamps on both backends, concurrency."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from rapid.db import operations as ops
from rapid.db import schema
from rapid.db.connect import make_engine, open_database
from tests.db.dbfactory import add_l2


def test_sqlite_enforces_foreign_keys_and_uses_wal(tmp_path) -> None:  # noqa: ANN001
    engine = open_database(f"sqlite:///{tmp_path / 'deep' / 'er' / 'rapid.db'}")
    try:
        assert (tmp_path / "deep" / "er" / "rapid.db").is_file()
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
        with pytest.raises(sa.exc.IntegrityError, match="FOREIGN KEY"):
            with engine.begin() as conn:
                conn.execute(schema.refimimages.insert().values(rfid=1, rid=1))
    finally:
        engine.dispose()


def test_make_engine_validates_and_pings_postgres() -> None:
    with pytest.raises(ValueError, match="unsupported database backend 'mysql'"):
        make_engine("mysql://u@h/db")
    with pytest.raises(ValueError, match="url is not a database URL"):
        make_engine("not a url")
    with pytest.raises(ValueError, match="sqlite_begin must be one of"):
        make_engine("sqlite://", sqlite_begin="LATER")
    engine = make_engine("postgresql+psycopg://u@127.0.0.1:1/db")
    assert engine.pool._pre_ping is True  # a restarted server is reconnected, not an error
    engine.dispose()


def test_timestamps_round_trip_as_utc(engine: sa.Engine) -> None:
    # 20:30 in Los Angeles on 6 September is 03:30 UTC on 7 September.
    local = datetime(2028, 9, 6, 20, 30, 15, 123456, tzinfo=ZoneInfo("America/Los_Angeles"))
    with engine.begin() as conn:
        rid = add_l2(conn, dateobs=local)
        jid = ops.open_job(conn, ppid=15, procdate=local.date(), rid=rid)
        ops.mark_running(conn, jid, started=local)
    with engine.connect() as conn:
        row = conn.execute(sa.select(schema.l2files.c.dateobs, schema.l2files.c.created)).one()
        job = ops.get_job(conn, jid)
        # Range queries compare instants, whatever zone the bounds are given in.
        hits = ops.best_l2files_between(conn, local - timedelta(seconds=1),
                                        local.astimezone(timezone.utc))
    for value in (row.dateobs, job.started):
        assert value == datetime(2028, 9, 7, 3, 30, 15, 123456, tzinfo=timezone.utc)
        assert value.utcoffset() == timedelta(0)
    assert row.created.tzinfo is not None and job.launched.utcoffset() == timedelta(0)
    assert abs(job.launched - datetime.now(timezone.utc)) < timedelta(minutes=5)
    assert [h.rid for h in hits] == [rid]


def test_naive_timestamps_are_refused(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        jid = ops.open_job(conn, ppid=12, procdate=datetime(2028, 9, 7).date())
        with pytest.raises(ValueError, match="started must be timezone-aware"):
            ops.mark_running(conn, jid, started=datetime(2028, 9, 7, 3))
        with pytest.raises(sa.exc.StatementError, match="must be timezone-aware"):
            conn.execute(schema.jobs.update().values(ended=datetime(2028, 9, 7, 3)))


def test_concurrent_first_opens_migrate_once(db_url: str) -> None:
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            open_database(db_url).dispose()
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    engine = make_engine(db_url)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.filters)).scalar() == 8
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.swversions)).scalar() == 1
    engine.dispose()


def test_wal_switch_waits_for_a_locked_file(tmp_path) -> None:
    import sqlite3

    from rapid.db.connect import _set_wal

    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    other = sqlite3.connect(path, isolation_level=None, timeout=0)
    release = threading.Timer(0.3, lambda: holder.execute("COMMIT"))
    release.start()
    _set_wal(other.cursor(), 5.0)  # fails at once without the wait, succeeds after COMMIT
    release.join()
    assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    holder.close()
    other.close()
    # a lock held past the time-out is reported, not waited for forever
    holder = sqlite3.connect(tmp_path / "held.db", isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    other = sqlite3.connect(tmp_path / "held.db", isolation_level=None, timeout=0)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        _set_wal(other.cursor(), 0.2)
    holder.close()
    other.close()
