"""When an exposure started, from a FITS header: DATE-OBS (with TIME-OBS) or MJD-OBS."""

from __future__ import annotations

from datetime import datetime, timezone

from astropy.io import fits
from astropy.time import Time


def _utc(text: str) -> datetime:
    """An ISO 8601 time (UTC when it names no zone)."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"DATE-OBS {text!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def _mjd(value: object) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"MJD-OBS {value!r} is not a number") from None


def observation_time(header: fits.Header) -> tuple[datetime, float]:
    """Start of the exposure (UTC) and its MJD.

    DATE-OBS gives the moment (a DATE-OBS holding only the date takes its time from TIME-OBS,
    the older convention); MJD-OBS, when present, gives the MJD, and the moment where there is
    no DATE-OBS.

    Raises
    ------
    ValueError
        Naming the keyword that is missing or unreadable.
    """
    mjd = _mjd(header["MJD-OBS"]) if "MJD-OBS" in header else None
    if "DATE-OBS" in header:
        text = str(header["DATE-OBS"]).strip()
        if "T" not in text and " " not in text and header.get("TIME-OBS"):
            text = f"{text}T{str(header['TIME-OBS']).strip()}"
        moment = _utc(text)
        return moment, (mjd if mjd is not None else float(Time(moment).mjd))
    if mjd is not None:
        return Time(mjd, format="mjd", scale="utc").to_datetime(timezone=timezone.utc), mjd
    raise ValueError("missing DATE-OBS (or MJD-OBS)")


def observation_mjd(header: fits.Header) -> float | None:
    """The MJD of :func:`observation_time`, or None when the header does not say it."""
    try:
        return observation_time(header)[1]
    except ValueError:
        return None
