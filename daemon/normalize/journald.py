"""The systemd journal: ``journalctl -o json`` entries in, ECS ``AuditEvent`` out.

An entry's fields map onto the syslog ones (``SYSLOG_IDENTIFIER`` is the
program, ``_HOSTNAME`` the host, ``PRIORITY`` and ``SYSLOG_FACILITY`` the
PRI), so the program normalizers of the ``syslog`` log type apply unchanged:
a login read from the journal is the same event as one read from auth.log.
The entry's cursor is its position in the event id.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

import orjson

from connectors.base import NormalizationError
from daemon.model import AuditEvent
from daemon.normalize import Limits
from daemon.normalize.syslog import event_of
from daemon.normalize.syslog_parse import Parsed

__all__ = ["decode", "normalize"]

_US: Final = 1_000_000


def decode(payload: bytes, limits: Limits) -> list[Any]:
    """One record per JSON line; a line that is not JSON stays text and is quarantined."""
    if len(payload) > limits.max_payload_bytes:
        raise NormalizationError(f"payload size exceeds {limits.max_payload_bytes} bytes")
    records: list[Any] = []
    for line in payload.split(b"\n"):
        if not line.strip():
            continue
        try:
            records.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            records.append(line.decode("utf-8", "replace"))
    return records


def _text(value: Any) -> str | None:
    """Journal fields are strings, or byte arrays when they are not valid UTF-8."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(b, int) and 0 <= b < 256 for b in value):
        return bytes(value).decode("utf-8", "replace")
    return None


def _microseconds(value: Any) -> datetime | None:
    text = _text(value)
    if text is None or not text.isdigit():
        return None
    try:
        return datetime.fromtimestamp(int(text) // _US, UTC).replace(microsecond=int(text) % _US)
    except (OverflowError, OSError, ValueError):
        return None


def normalize(record: Any) -> AuditEvent:
    if not isinstance(record, dict):
        raise NormalizationError(f"not a journal entry (JSON object): {str(record)[:200]!r}")
    received = _microseconds(record.get("__REALTIME_TIMESTAMP"))
    cursor = _text(record.get("__CURSOR"))
    if received is None or not cursor:
        raise NormalizationError("journal entry without __REALTIME_TIMESTAMP or __CURSOR")
    parsed = Parsed(
        timestamp=_microseconds(record.get("_SOURCE_REALTIME_TIMESTAMP")) or received,
        hostname=_text(record.get("_HOSTNAME")),
        appname=_text(record.get("SYSLOG_IDENTIFIER")) or _text(record.get("_COMM")),
        procid=_text(record.get("SYSLOG_PID")) or _text(record.get("_PID")),
        message=_text(record.get("MESSAGE")) or "",
    )
    severity = _text(record.get("PRIORITY"))
    facility = _text(record.get("SYSLOG_FACILITY"))
    if severity is not None and severity.isdigit() and int(severity) < 8:
        code = int(facility) if facility is not None and facility.isdigit() else 1  # user
        if code < 24:
            parsed.priority = code * 8 + int(severity)
    line = orjson.dumps(record).decode()
    event = event_of(parsed, {"position": cursor}, line, received)
    event.original = record
    unit = _text(record.get("_SYSTEMD_UNIT"))
    if unit:
        event.fields["systemd.unit"] = unit
    return event
