"""Input checks shared by the named operations; each raises ValueError naming the argument."""

from __future__ import annotations

import math
import numbers
import re
from datetime import date, datetime
from typing import Any

from rapid.db.coltypes import as_utc

__all__ = ["check_int", "check_float", "check_checksum", "check_date", "check_utc", "check_text"]

_MD5 = re.compile(r"^[0-9a-f]{32}$")


def check_int(value: Any, name: str, *, minimum: int | None = None) -> int:
    """An integer (Python or numpy, not a bool) no smaller than ``minimum``, as a Python int."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_float(value: Any, name: str) -> float:
    """A finite real number (Python or numpy), as a Python float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def check_checksum(value: Any, name: str = "checksum") -> str:
    """An md5 digest as 32 lower-case hex digits."""
    if not isinstance(value, str) or not _MD5.match(value.lower()):
        raise ValueError(f"{name} must be an md5 hex digest (32 hex digits), got {value!r}")
    return value.lower()


def check_date(value: Any, name: str = "procdate") -> date:
    """A calendar date (a datetime is refused: a processing date has no time of day)."""
    if isinstance(value, datetime) or not isinstance(value, date):
        raise ValueError(f"{name} must be a datetime.date, got {value!r}")
    return value


def check_utc(value: Any, name: str) -> datetime:
    """A timezone-aware datetime, converted to UTC."""
    return as_utc(value, name)


def check_text(value: Any, name: str) -> str:
    """A non-empty string."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return value
