"""Set-at-a-time job operations keep the guarantees of the one-at-a-time ones."""

from __future__ import annotations

from datetime import date, datetime, timezone

import sqlalchemy as sa

from rapid.db import bulk, schema
from rapid.db import operations as ops

from .dbfactory import FIELD, add_l2, later, refrecord

DAY = date(2028, 9, 7)


def _rows(rids: list[int], attempt: int = 1) -> list[dict]:
    return [{"ppid": 15, "rid": rid, "attempt": attempt, "fid": 2, "expid": None, "sca": 1,
             "field": FIELD} for rid in rids]


def test_open_jobs_refuses_attempts_opened_already_and_keeps_the_rest(engine):
    with engine.begin() as conn:
        rids = [add_l2(conn, dateobs=later(k)) for k in range(3)]
        first = bulk.open_jobs(conn, _rows(rids[:1]), procdate=DAY)
        both = bulk.open_jobs(conn, _rows(rids), procdate=DAY)
        latest = bulk.latest_jobs_by_rid(conn, ppid=15, procdate=DAY)
    assert first[0] is not None and both[0] is None and None not in both[1:]
    assert {rid: row.jid for rid, row in latest.items()} == {rids[0]: first[0],
                                                             rids[1]: both[1], rids[2]: both[2]}
    assert all(row.attempt == 1 and row.state == "open" for row in latest.values())


def test_mark_submitted_and_running_many_leave_closed_jobs_alone(engine):
    with engine.begin() as conn:
        rids = [add_l2(conn, dateobs=later(k)) for k in range(2)]
        jids = bulk.open_jobs(conn, _rows(rids), procdate=DAY)
        ops.close_job(conn, jids[1], exitcode=73, message="gone")
        bulk.mark_submitted_many(conn, [(jid, f"e{jid}", f"file:///s/{jid}") for jid in jids],
                                 engine="local")
        started = datetime.now(timezone.utc)
        bulk.mark_running_many(conn, [(jid, started) for jid in jids])
        rows = {r.jid: r for r in conn.execute(sa.select(schema.jobs))}
    assert rows[jids[0]].state == "running" and rows[jids[0]].engine_job_id == f"e{jids[0]}"
    assert rows[jids[0]].qwait is not None and rows[jids[0]].qwait >= 0
    assert (rows[jids[1]].state, rows[jids[1]].exitcode, rows[jids[1]].engine) == ("done", 73,
                                                                                 None)


def test_best_refimages_for_takes_the_best_version_per_tile(engine):
    with engine.begin() as conn:
        add_l2(conn)  # the tile's fields row
        ops.add_refimage(conn, refrecord(tag="a"))
        newer = ops.add_refimage(conn, refrecord(tag="b"))
        best = bulk.best_refimages_for(conn, [(FIELD, 2), (FIELD, 3)])
        assert bulk.references_in_progress_for(conn, [(FIELD, 2)]) == set()
    assert list(best) == [(FIELD, 2)] and best[(FIELD, 2)].rfid == newer
