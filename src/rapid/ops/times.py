"""Processing dates and observation times, validated with one clear message each.

The processing date (``YYYYMMDD``) keys a day's work: object-store prefixes, log names and registration
all use it. Like RAPID, today's processing date is the calendar date in America/Los_Angeles. Unlike
RAPID, each job row stores its procdate, so registration never derives it from launch or end times.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

PACIFIC = ZoneInfo("America/Los_Angeles")


def procdate_today(now: datetime | None = None) -> str:
    """Today's processing date in America/Los_Angeles, as ``YYYYMMDD``."""
    now = now or datetime.now(timezone.utc)
    return now.astimezone(PACIFIC).strftime("%Y%m%d")


def parse_procdate(text: str) -> str:
    """Validate a processing date given as ``YYYYMMDD``; returns it unchanged."""
    text = str(text).strip()
    if len(text) != 8 or not text.isdigit():
        raise ValueError(f"processing date must be YYYYMMDD (e.g. 20280907), got {text!r}")
    try:
        datetime.strptime(text, "%Y%m%d")
    except ValueError:
        raise ValueError(f"processing date {text!r} is not a calendar date") from None
    return text


def procdate_as_date(text: str) -> date:
    return datetime.strptime(parse_procdate(text), "%Y%m%d").date()


def date_as_procdate(value: date) -> str:
    return value.strftime("%Y%m%d")


def parse_obs_time(text: str, *, name: str = "time") -> datetime:
    """An observation time ``YYYY-MM-DD HH:MM:SS`` (or ISO 8601), UTC unless it names a zone."""
    raw = str(text).strip()
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{name} must look like '2028-09-07 00:00:00' (UTC), got {raw!r}") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def parse_range(start: str, end: str) -> tuple[datetime, datetime]:
    """Validated observation range; the end must not precede the start."""
    t0 = parse_obs_time(start, name="--start")
    t1 = parse_obs_time(end, name="--end")
    if t1 < t0:
        raise ValueError(f"--end {end!r} is before --start {start!r}")
    return t0, t1
