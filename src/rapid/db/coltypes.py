"""Column types shared by the tables: UTC timestamps and JSON stored as text."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

__all__ = ["UTCDateTime", "JSONText", "as_utc"]


def as_utc(value: datetime, name: str = "value") -> datetime:
    """Return a timezone-aware datetime converted to UTC.

    Parameters
    ----------
    value : datetime
        A timezone-aware datetime.
    name : str, optional
        Name of the argument, used in the error message.

    Returns
    -------
    datetime
        ``value`` expressed in UTC.

    Raises
    ------
    ValueError
        If ``value`` is not a datetime or has no time zone: naive timestamps are ambiguous
        and were one of RAPID's defects.
    """
    if not isinstance(value, datetime):
        raise ValueError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamp on every backend.

    PostgreSQL stores ``timestamptz`` and returns it in the session time zone, so results are
    converted to UTC. SQLite has no time zone support, so values are stored as naive UTC and
    UTC is attached when read back. Naive datetimes are refused when bound.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        utc = as_utc(value)
        if dialect.name == "sqlite":
            return utc.replace(tzinfo=None)
        return utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class JSONText(TypeDecorator[Any]):
    """A JSON document stored as text (sorted keys), so it reads the same on every backend."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return json.dumps(value, sort_keys=True)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        return json.loads(value)
