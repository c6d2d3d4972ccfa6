"""Engines, migrations and opening the operations database (SQLite or PostgreSQL)."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from rapid.db.seed import seed

__all__ = [
    "SchemaOutOfDateError", "make_engine", "alembic_config", "head_revision", "current_revision",
    "upgrade", "downgrade", "open_database", "migration_transaction",
]

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
SQLITE_BEGIN_MODES = ("DEFERRED", "IMMEDIATE", "EXCLUSIVE")
# Arbitrary constant key of the PostgreSQL advisory lock that serialises migrations.
_PG_MIGRATION_LOCK = 0x52415049  # "RAPI"


class SchemaOutOfDateError(RuntimeError):
    """The database is not at the migration head and migration was not requested."""


def _as_url(url: str | sa.URL, name: str = "url") -> sa.URL:
    if isinstance(url, sa.URL):
        return url
    if not isinstance(url, str) or not url:
        raise ValueError(f"{name} must be a non-empty database URL, got {url!r}")
    try:
        return sa.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise ValueError(f"{name} is not a database URL: {url!r}") from exc


def make_engine(url: str | sa.URL, *, sqlite_busy_timeout_s: float = 30.0,
                sqlite_begin: str = "DEFERRED", echo: bool = False) -> sa.Engine:
    """Create an engine with the settings the operations database needs.

    SQLite: foreign keys enforced, WAL journal (readers do not block the writer), a busy
    timeout, the parent folder of the file created, and SQLAlchemy (not the sqlite3 module)
    emitting BEGIN so that SAVEPOINTs behave. PostgreSQL: connections are pinged before use so
    that a restarted server is reconnected transparently.

    Parameters
    ----------
    url : str or sqlalchemy.URL
        e.g. ``sqlite:///work/rapid.db`` or ``postgresql+psycopg://user@host:5432/db``.
    sqlite_busy_timeout_s : float, optional
        Seconds SQLite waits for a lock held by another connection. Default 30.
    sqlite_begin : {"DEFERRED", "IMMEDIATE", "EXCLUSIVE"}, optional
        How SQLite transactions begin by default; a connection can override it with the
        execution option ``sqlite_begin``. Default "DEFERRED".
    echo : bool, optional
        Log SQL statements. Default False.

    Returns
    -------
    sqlalchemy.Engine
    """
    u = _as_url(url)
    if sqlite_begin not in SQLITE_BEGIN_MODES:
        raise ValueError(f"sqlite_begin must be one of {SQLITE_BEGIN_MODES}, got {sqlite_begin!r}")
    if not sqlite_busy_timeout_s >= 0:
        raise ValueError(f"sqlite_busy_timeout_s must be >= 0, got {sqlite_busy_timeout_s!r}")
    backend = u.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(u, sqlite_busy_timeout_s, sqlite_begin, echo)
    if backend == "postgresql":
        return sa.create_engine(u, pool_pre_ping=True, echo=echo)
    raise ValueError(f"url: unsupported database backend {backend!r} (sqlite or postgresql)")


def _set_wal(cursor: Any, busy_timeout_s: float) -> None:
    """Switch the file to WAL, waiting for other first connections to let go.

    Changing the journal mode needs the file to itself, and SQLite may answer "database is
    locked" at once, without its busy handler, while another connection opens the same new
    file; the mode is kept in the file, so once one connection has set it the others only
    read it.
    """
    deadline = time.monotonic() + max(busy_timeout_s, 1.0)
    delay = 0.01
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


def _sqlite_engine(u: sa.URL, busy_timeout_s: float, begin: str, echo: bool) -> sa.Engine:
    database = u.database or ""
    in_memory = database in ("", ":memory:") or database.startswith("file::memory:")
    if not in_memory:
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(u, echo=echo, execution_options={"sqlite_begin": begin})

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, record: Any) -> None:
        # Stop sqlite3 from managing transactions itself; the "begin" hook below does it.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            if not in_memory:
                _set_wal(cursor, busy_timeout_s)
        finally:
            cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        if mode not in SQLITE_BEGIN_MODES:
            raise ValueError(f"sqlite_begin must be one of {SQLITE_BEGIN_MODES}, got {mode!r}")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def alembic_config() -> Config:
    """Alembic configuration pointing at the migrations shipped inside the package.

    Returns
    -------
    alembic.config.Config
    """
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("version_locations", str(MIGRATIONS / "versions"))
    cfg.set_main_option("path_separator", "os")
    return cfg


def head_revision() -> str:
    """The newest migration revision shipped with this package.

    Returns
    -------
    str
    """
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found under {MIGRATIONS}")
    return head


def current_revision(bind: sa.Engine | sa.Connection) -> str | None:
    """Migration revision the database is at, or None for an empty database.

    Parameters
    ----------
    bind : sqlalchemy.Engine or sqlalchemy.Connection

    Returns
    -------
    str or None
    """
    if isinstance(bind, sa.Connection):
        return MigrationContext.configure(bind).get_current_revision()
    if not isinstance(bind, sa.Engine):
        raise ValueError(f"bind must be an Engine or Connection, got {type(bind).__name__}")
    with bind.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@contextlib.contextmanager
def migration_transaction(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A transaction that holds the database's migration lock until it ends.

    SQLite takes its write lock at BEGIN IMMEDIATE; PostgreSQL takes a transaction-scoped
    advisory lock. Two processes opening a new database at once therefore migrate and seed
    one after the other instead of colliding.

    Parameters
    ----------
    engine : sqlalchemy.Engine

    Yields
    ------
    sqlalchemy.Connection
        Connection inside the transaction; committed on normal exit.
    """
    with engine.connect() as conn:
        conn.execution_options(sqlite_begin="IMMEDIATE")
        with conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"),
                             {"key": _PG_MIGRATION_LOCK})
            yield conn


@contextlib.contextmanager
def _engine_for(bind: sa.Engine | str | sa.URL, name: str) -> Iterator[sa.Engine]:
    if isinstance(bind, sa.Engine):
        yield bind
        return
    engine = make_engine(_as_url(bind, name))
    try:
        yield engine
    finally:
        engine.dispose()


def _migrate(conn: sa.Connection, direction: str, revision: str) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = conn
    getattr(command, direction)(cfg, revision)


def upgrade(engine_or_url: sa.Engine | str | sa.URL, revision: str = "head") -> None:
    """Migrate the database up to ``revision`` (default: the newest).

    Parameters
    ----------
    engine_or_url : sqlalchemy.Engine, str or sqlalchemy.URL
        The database; an engine made here from a URL is disposed of afterwards.
    revision : str, optional
        Target revision. Default "head".
    """
    with _engine_for(engine_or_url, "engine_or_url") as engine:
        with migration_transaction(engine) as conn:
            _migrate(conn, "upgrade", revision)


def downgrade(engine_or_url: sa.Engine | str | sa.URL, revision: str = "base") -> None:
    """Migrate the database down to ``revision`` (default: empty, "base").

    Parameters
    ----------
    engine_or_url : sqlalchemy.Engine, str or sqlalchemy.URL
        The database; an engine made here from a URL is disposed of afterwards.
    revision : str, optional
        Target revision. Default "base".
    """
    with _engine_for(engine_or_url, "engine_or_url") as engine:
        with migration_transaction(engine) as conn:
            _migrate(conn, "downgrade", revision)


def open_database(url: str | sa.URL, *, migrate: bool = True, **engine_options: Any) -> sa.Engine:
    """Engine on the operations database, migrated to head and seeded.

    Parameters
    ----------
    url : str or sqlalchemy.URL
        Database URL (see :func:`make_engine`).
    migrate : bool, optional
        Migrate to head and insert the seed rows when needed (cheap when already done).
        When False the database must already be at head. Default True.
    **engine_options
        Keyword options of :func:`make_engine`.

    Returns
    -------
    sqlalchemy.Engine

    Raises
    ------
    SchemaOutOfDateError
        If ``migrate`` is False and the database is not at the head revision.
    """
    engine = make_engine(url, **engine_options)
    head = head_revision()
    try:
        if migrate:
            with migration_transaction(engine) as conn:
                if current_revision(conn) != head:
                    _migrate(conn, "upgrade", "head")
                seed(conn)
        else:
            found = current_revision(engine)
            if found != head:
                raise SchemaOutOfDateError(
                    f"database {engine.url.render_as_string(hide_password=True)} is at revision "
                    f"{found!r}, expected {head!r}; open it with migrate=True")
    except BaseException:
        engine.dispose()
        raise
    return engine
