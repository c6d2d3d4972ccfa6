"""Fixtures of the operations-database tests: an engine on a migrated, seeded database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from rapid.db.connect import open_database


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    eng = open_database(db_url)
    try:
        yield eng
    finally:
        eng.dispose()
