"""Times as operators type them: ISO 8601 moments and short durations."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, tzinfo

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_UNITS = {
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
}


def parse_duration(text: str) -> timedelta:
    """``90s``, ``20m``, ``2h``, ``7d``, ``1w``."""
    found = _DURATION.match(text)
    if not found:
        raise ValueError(f"not a duration: {text!r} (examples: 90s, 20m, 2h, 7d)")
    try:
        return float(found.group(1)) * _UNITS[found.group(2)]
    except OverflowError:
        raise ValueError(f"duration too large: {text!r}") from None


def parse_moment(text: str, *, now: datetime | None = None, zone: tzinfo = UTC) -> datetime:
    """A point in time: ISO 8601 (``2026-11-20``, ``2026-11-20T01:00:00+09:00``)
    or a duration meaning that long ago (``2h``).  Times without a zone are in ``zone``.
    """
    if _DURATION.match(text):
        try:
            return (now or datetime.now(UTC)) - parse_duration(text)
        except (ValueError, OverflowError):
            raise ValueError(f"too long ago: {text!r}") from None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"not a time: {text!r} (ISO 8601 like 2026-11-20T01:00:00Z, or 2h / 7d ago)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"time out of range: {text!r}") from None
