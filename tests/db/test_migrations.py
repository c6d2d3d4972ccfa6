"""Migrations run to head and back to base on SQLite and PostgreSQL, and match the schema."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from rapid.db import schema
from rapid.db.connect import (SchemaOutOfDateError, current_revision, downgrade, head_revision,
                              make_engine, open_database, upgrade)

TABLES = {"filters", "scas", "fields", "exposures", "l2files", "l2filemeta", "pipelines",
          "swversions", "jobs", "refimages", "refimmeta", "refimimages", "refimcatalogs",
          "diffimages", "diffimmeta", "psfs"}

UNIQUES = {
    "filters": {("filter",)},
    "exposures": {("dateobs",)},
    "l2files": {("expid", "sca", "version")},
    "swversions": {("version", "githash")},
    "jobs": {("ppid", "rid", "procdate", "attempt")},
    "refimages": {("field", "fid", "ppid", "version")},
    "refimcatalogs": {("rfid", "ppid", "cattype")},
    "diffimages": {("rid", "ppid", "version")},
    "psfs": {("fid", "sca", "version")},
}


def test_upgrade_creates_tables_and_unique_constraints(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        assert current_revision(engine) is None
        upgrade(engine)
        assert current_revision(engine) == head_revision() == "0001"
        inspector = sa.inspect(engine)
        assert TABLES <= set(inspector.get_table_names())
        for table, expected in UNIQUES.items():
            found = {tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)}
            assert expected <= found, table
        assert {tuple(i["column_names"]) for i in inspector.get_indexes("jobs")} >= {
            ("procdate", "ppid"), ("state",)}
        fks = {(fk["constrained_columns"][0], fk["referred_table"])
               for fk in inspector.get_foreign_keys("jobs")}
        assert fks == {("ppid", "pipelines"), ("rid", "l2files"), ("parent_jid", "jobs"),
                       ("svid", "swversions")}
        columns = {c["name"]: c for c in inspector.get_columns("fields")}
        assert isinstance(columns["field"]["type"], sa.BigInteger)
    finally:
        engine.dispose()


def test_migrated_database_matches_schema_module(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine)
        with engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn), schema.metadata)
        assert diffs == []
    finally:
        engine.dispose()


def test_downgrade_to_base_removes_every_table(db_url: str) -> None:
    engine = open_database(db_url)
    try:
        downgrade(engine)
        assert current_revision(engine) is None
        assert set(sa.inspect(engine).get_table_names()) & TABLES == set()
        upgrade(engine)  # and up again from scratch
        assert TABLES <= set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_open_database_without_migrate_refuses_an_empty_database(db_url: str) -> None:
    with pytest.raises(SchemaOutOfDateError, match="expected '0001'"):
        open_database(db_url, migrate=False)
    open_database(db_url).dispose()
    engine = open_database(db_url, migrate=False)
    assert current_revision(engine) == "0001"
    engine.dispose()


def test_upgrade_accepts_a_url(db_url: str) -> None:
    upgrade(db_url)
    engine = make_engine(db_url)
    assert current_revision(engine) == "0001"
    engine.dispose()
