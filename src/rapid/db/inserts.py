"""Insert-if-absent on either backend, safe against a concurrent insert of the same key."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

__all__ = ["insert_missing"]


def insert_missing(conn: sa.Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]], *,
                   index_elements: Sequence[str]) -> int:
    """Insert the rows whose key is not in the table yet; leave existing rows untouched.

    Parameters
    ----------
    conn : sqlalchemy.Connection
        Connection in the caller's transaction.
    table : sqlalchemy.Table
        Target table.
    rows : sequence of mapping
        Column values of each row.
    index_elements : sequence of str
        Columns of the primary key or unique constraint that decides "already there".

    Returns
    -------
    int
        Number of rows inserted.
    """
    if not rows:
        return 0
    if not index_elements:
        raise ValueError("index_elements must name at least one column")
    name = conn.dialect.name
    if name == "postgresql":
        stmt = postgresql.insert(table).on_conflict_do_nothing(index_elements=list(index_elements))
    elif name == "sqlite":
        stmt = sqlite.insert(table).on_conflict_do_nothing(index_elements=list(index_elements))
    else:
        raise ValueError(f"conn: unsupported database dialect {name!r}")
    inserted = 0
    # One statement per row: rowcount of an executemany is not reliable on every driver.
    for row in rows:
        inserted += conn.execute(stmt, dict(row)).rowcount
    return inserted
