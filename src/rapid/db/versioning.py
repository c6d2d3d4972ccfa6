"""RAPID's product versioning, one helper for every versioned table.

A new product for a natural key gets ``version = max + 1``. ``vbest`` is 0 (not best), 1 (best)
or 2 (locked best). Each natural key has exactly one best row: a new version becomes best and
demotes the previous best, unless that one is locked, in which case the new version gets 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from rapid.db import schema

__all__ = ["VersionedTable", "VERSIONED", "NewVersion", "insert_version", "set_best"]

NOT_BEST, BEST, LOCKED_BEST = 0, 1, 2


@dataclass(frozen=True)
class VersionedTable:
    """A versioned product table: its primary key and the columns of its natural key."""

    table: sa.Table
    pk: str
    key: tuple[str, ...]


VERSIONED: dict[str, VersionedTable] = {
    "l2files": VersionedTable(schema.l2files, "rid", ("expid", "sca")),
    "refimages": VersionedTable(schema.refimages, "rfid", ("field", "fid", "ppid")),
    "diffimages": VersionedTable(schema.diffimages, "pid", ("rid", "ppid")),
    "psfs": VersionedTable(schema.psfs, "psfid", ("fid", "sca")),
}


@dataclass(frozen=True)
class NewVersion:
    """Primary key, version and vbest of a freshly inserted product row."""

    pk: int
    version: int
    vbest: int


def _spec(kind: str) -> VersionedTable:
    try:
        return VERSIONED[kind]
    except KeyError:
        raise ValueError(f"kind must be one of {sorted(VERSIONED)}, got {kind!r}") from None


def _key_clause(spec: VersionedTable, values: Mapping[str, Any]) -> sa.ColumnElement[bool]:
    missing = [name for name in spec.key if values.get(name) is None]
    if missing:
        raise ValueError(f"values must give the natural key {spec.key}; missing {missing}")
    return sa.and_(*(spec.table.c[name] == values[name] for name in spec.key))


def insert_version(conn: sa.Connection, kind: str, values: Mapping[str, Any]) -> NewVersion:
    """Insert a new version of a product and keep exactly one best row for its natural key.

    Parameters
    ----------
    conn : sqlalchemy.Connection
        Connection in the caller's transaction.
    kind : {"l2files", "refimages", "diffimages", "psfs"}
        The versioned table.
    values : mapping
        Column values of the new row, including the natural key; ``version`` and ``vbest``
        are decided here and must not be given.

    Returns
    -------
    NewVersion
    """
    spec = _spec(kind)
    if "version" in values or "vbest" in values:
        raise ValueError("values must not set version or vbest; they are decided here")
    t = spec.table
    where = _key_clause(spec, values)
    # FOR UPDATE (PostgreSQL) serialises two writers of the same key; SQLite ignores it and
    # relies on its single writer.
    rows = conn.execute(sa.select(t.c[spec.pk], t.c.version, t.c.vbest).where(where)
                        .with_for_update()).all()
    version = max((row.version for row in rows), default=0) + 1
    locked = any(row.vbest == LOCKED_BEST for row in rows)
    vbest = NOT_BEST if locked else BEST
    if not locked:
        conn.execute(t.update().where(where, t.c.vbest == BEST).values(vbest=NOT_BEST))
    pk = conn.execute(t.insert().values(**values, version=version, vbest=vbest)
                      .returning(t.c[spec.pk])).scalar_one()
    return NewVersion(pk=int(pk), version=version, vbest=vbest)


def set_best(conn: sa.Connection, kind: str, pk: int, *, lock: bool = False) -> None:
    """Make one version the best of its natural key (vbest 1, or 2 when locked).

    Every other version of the key, locked or not, becomes 0: this is how an operator
    overrides a locked best.

    Parameters
    ----------
    conn : sqlalchemy.Connection
        Connection in the caller's transaction.
    kind : {"l2files", "refimages", "diffimages", "psfs"}
        The versioned table.
    pk : int
        Primary key of the version to promote.
    lock : bool, optional
        Lock it (vbest 2) so later versions do not demote it. Default False.
    """
    spec = _spec(kind)
    t = spec.table
    row = conn.execute(sa.select(*(t.c[name] for name in spec.key))
                       .where(t.c[spec.pk] == pk)).mappings().first()
    if row is None:
        raise ValueError(f"pk: no {kind} row with {spec.pk}={pk!r}")
    where = _key_clause(spec, row)
    conn.execute(t.update().where(where, t.c[spec.pk] != pk, t.c.vbest != NOT_BEST)
                 .values(vbest=NOT_BEST))
    conn.execute(t.update().where(t.c[spec.pk] == pk)
                 .values(vbest=LOCKED_BEST if lock else BEST))
