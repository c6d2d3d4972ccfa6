"""Run a database transaction again when the connection to the server was lost in the middle.

A PostgreSQL server that restarts (or an administrator who terminates RAPID's sessions) breaks the
connections in use; the transaction on them is rolled back by the server. The pool pings
connections before handing them out, so a fresh try gets a working connection. Every transaction
the operator runs this way is written to be run again from the start (it reads what it needs
inside), so retrying it is safe.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

import sqlalchemy as sa

T = TypeVar("T")

log = logging.getLogger("rapid.ops")

DEFAULT_ATTEMPTS = 5
DEFAULT_PAUSE = 0.5  # seconds before the second try; doubled for each further one


def is_disconnect(exc: BaseException) -> bool:
    """Whether ``exc`` says the connection to the database was lost (worth retrying)."""
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError))


def in_transaction(db: sa.Engine, work: Callable[[sa.Connection], T], *,
                   attempts: int = DEFAULT_ATTEMPTS, pause: float = DEFAULT_PAUSE,
                   write: bool = False, sleep: Callable[[float], None] = time.sleep) -> T:
    """Run ``work(conn)`` in one transaction, again from the start if the connection is lost.

    Parameters
    ----------
    db : sqlalchemy.Engine
    work : callable
        Takes the connection; everything it does must be safe to do again after a rollback.
    attempts : int, optional
        Tries in all. Default 5.
    pause : float, optional
        Seconds before the second try, doubled before each further one. Default 0.5.
    write : bool, optional
        Take SQLite's write lock at the start (BEGIN IMMEDIATE), so that a transaction that
        reads and then writes is never refused half-way by a concurrent writer. Default False.

    Returns
    -------
    The value of ``work``.
    """
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, got {attempts}")
    if pause < 0:
        raise ValueError(f"pause must be >= 0, got {pause}")
    for attempt in range(1, attempts + 1):
        try:
            with db.connect() as conn:
                if write:
                    conn = conn.execution_options(sqlite_begin="IMMEDIATE")
                with conn.begin():
                    return work(conn)
        except sa.exc.DBAPIError as exc:
            if attempt == attempts or not is_disconnect(exc):
                raise
            log.warning("database connection lost (%s); trying again (%d of %d)",
                        type(exc.orig).__name__ if exc.orig is not None else exc, attempt + 1,
                        attempts)
            sleep(pause * 2 ** (attempt - 1))
    raise AssertionError("unreachable")  # pragma: no cover
