"""Seed rows: 8 filters in RAPID's fid order, 18 SCAs, 3 pipelines, one software version."""

from __future__ import annotations

import sqlalchemy as sa

from rapid.db import schema
from rapid.db.connect import open_database
from rapid.db.seed import current_svid, seed, software_version


def _snapshot(conn: sa.Connection) -> dict:
    return {
        "filters": conn.execute(sa.select(schema.filters).order_by(schema.filters.c.fid)).all(),
        "scas": conn.execute(sa.select(schema.scas).order_by(schema.scas.c.sca)).all(),
        "pipelines": conn.execute(sa.select(schema.pipelines.c.ppid, schema.pipelines.c.name)
                                  .order_by(schema.pipelines.c.ppid)).all(),
        "swversions": conn.execute(sa.select(schema.swversions.c.svid, schema.swversions.c.version,
                                             schema.swversions.c.githash)).all(),
    }


def test_seed_rows(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        snap = _snapshot(conn)
    assert [tuple(r) for r in snap["filters"]] == [
        (1, "F184"), (2, "H158"), (3, "J129"), (4, "K213"), (5, "R062"), (6, "Y106"),
        (7, "Z087"), (8, "W146")]
    assert [r.sca for r in snap["scas"]] == list(range(1, 19))
    assert snap["scas"][0].name == "WFI01"
    assert [tuple(r) for r in snap["pipelines"]] == [
        (12, "reference image"), (15, "science"), (17, "post-processing")]
    assert len(snap["swversions"]) == 1
    version, githash = software_version()
    assert snap["swversions"][0].version == version
    assert snap["swversions"][0].githash == githash
    assert githash is None or len(githash) == 40


def test_seed_and_open_are_idempotent(engine: sa.Engine, db_url: str) -> None:
    with engine.connect() as conn:
        before = _snapshot(conn)
    with engine.begin() as conn:
        seed(conn)
        seed(conn)
        svid = current_svid(conn)
    open_database(db_url).dispose()
    with engine.connect() as conn:
        after = _snapshot(conn)
    assert after == before
    assert svid == before["swversions"][0].svid
