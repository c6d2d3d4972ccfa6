"""Shared fixtures: database URLs for SQLite and for the PostgreSQL test server.

``postgres_url`` gives a URL on the server named by ``RAPID_TEST_POSTGRES_URL`` whose
``search_path`` is a fresh schema, dropped after the test, so tests run in parallel and
repeatedly without colliding. Without that variable PostgreSQL tests are skipped, unless
``RAPID_REQUIRE_POSTGRES=1``, in which case they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

POSTGRES_ENV = "RAPID_TEST_POSTGRES_URL"
REQUIRE_ENV = "RAPID_REQUIRE_POSTGRES"


def _postgres_base_url() -> str:
    url = os.environ.get(POSTGRES_ENV, "").strip()
    if url:
        return url
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{REQUIRE_ENV}=1 but {POSTGRES_ENV} is not set; set it to e.g. "
                    f"postgresql+psycopg://postgres@127.0.0.1:5432/test", pytrace=False)
    pytest.skip(f"PostgreSQL tests need {POSTGRES_ENV}")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """URL of a fresh, empty PostgreSQL schema (dropped after the test)."""
    base = sa.make_url(_postgres_base_url())
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = sa.create_engine(base, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    except sa.exc.OperationalError as exc:
        admin.dispose()
        pytest.fail(f"cannot reach the PostgreSQL server of {POSTGRES_ENV}: {exc}", pytrace=False)
    url = base.update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            # Never hang the suite on a connection a test forgot to close.
            conn.exec_driver_sql("SET lock_timeout = '10s'")
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path) -> str:  # noqa: ANN001
    """Database URL of an empty database: a SQLite file, then a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'rapid.db'}"
    return request.getfixturevalue("postgres_url")
