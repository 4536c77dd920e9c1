"""Change records on the timeline.

A payload is one record in its JSON form or a list of them (sources turn
YAML, CSV and ServiceNow rows into that form).  Each record version becomes
an event, and a record that authorizes work adds the opening and the closing
of its window, so the timeline shows "CHG0031001 window opened" between the
commands it covers.  Decoding resolves times written without a zone (in
``[daemon].timezone``) and stamps ``updated`` when the record has none, so
the stored record says everything its events are made from.

A version's event (``change_recorded``) is placed at the version's own time,
its ``updated``: the source's last update of the record, or, when it has none,
the time the intake received it (``changes_files``: the file's modification
time; otherwise the time it is decoded, right after an HTTP intake took it).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from connectors.base import NormalizationError
from connectors.contracts.change_record import (
    SCOPE_AXES,
    ChangeRecord,
    InvalidChangeRecordError,
    parse_record,
)
from daemon.model import AuditEvent
from daemon.normalize import Limits, json_records
from daemon.store.units import BookEntry

DATASET = "change"
VERSION = "version"
OPENED = "window_opened"
CLOSED = "window_closed"
_ACTIONS = {
    VERSION: "change_recorded",
    OPENED: "change_window_opened",
    CLOSED: "change_window_closed",
}


def decode(payload: bytes, limits: Limits) -> list[Any]:
    """Entries ``{"kind": ..., "record": ...}``; an invalid record stays one entry
    of kind ``version`` so that normalizing it quarantines it with its reason."""
    zone = ZoneInfo(limits.timezone)
    now = datetime.now(UTC).replace(microsecond=0)
    entries: list[Any] = []
    for item in json_records(payload, limits, "change records"):
        try:
            record = parse_record(item, zone)
        except InvalidChangeRecordError:
            entries.append({"kind": VERSION, "record": item})
            continue
        data = record.to_json()
        data.setdefault("updated", _iso(now))
        entries.append({"kind": VERSION, "record": data})
        if record.authorizes:
            entries.append({"kind": OPENED, "record": data})
            entries.append({"kind": CLOSED, "record": data})
    return entries


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _parse(entry: Any) -> tuple[str, ChangeRecord]:
    if not isinstance(entry, dict) or entry.get("kind") not in _ACTIONS:
        raise NormalizationError("not a change record entry")
    try:
        return entry["kind"], parse_record(entry.get("record"))
    except InvalidChangeRecordError as err:
        raise NormalizationError(str(err)) from err


def normalize(record: Any) -> AuditEvent:
    kind, change = _parse(record)
    people = [p for p in (change.requested_by, *change.implementers, change.approved_by) if p]
    fields: dict[str, Any] = {
        "change.id": change.id,
        "change.state": change.state,
        "change.title": change.title or None,
        "change.revision": change.revision,
        "change.version": change.version,
        "change.requested_by": change.requested_by,
        "change.implementers": list(change.implementers),
        "change.approved_by": change.approved_by,
        "change.window.start": _iso(change.start),
        "change.window.end": _iso(change.end),
        "url.original": change.url,
    }
    for axis in SCOPE_AXES:
        fields[f"change.scope.{axis}"] = list(change.scope.axis(axis))
    title = f": {change.title}" if change.title else ""
    if kind == VERSION:
        moment = change.updated or change.start
        event_id = f"change:{change.id}:{change.revision}"
        message = f"{change.id} {change.state}{title}"
        types = ["change"]
    else:
        # One pair of window events per window, whichever versions repeat it.
        moment = change.start if kind == OPENED else change.end
        event_id = f"change:{change.id}:{kind}:{_iso(change.start)}:{_iso(change.end)}"
        verb = "opened" if kind == OPENED else "closed"
        message = f"{change.id} window {verb}{title}"
        if kind == OPENED and change.implementers:
            message += f" (implementers: {', '.join(change.implementers)})"
        types = ["start" if kind == OPENED else "end"]
    return AuditEvent(
        timestamp=moment,
        id=event_id,
        dataset=DATASET,
        kind="event",
        category=["configuration"],
        type=types,
        action=_ACTIONS[kind],
        outcome="success",
        provider="change",
        user_name=change.requested_by if kind == VERSION else None,
        related_user=list(dict.fromkeys(people)),
        related_hosts=[h for h in change.scope.hosts if "*" not in h and "?" not in h],
        message=message,
        fields=fields,
        original=record,
    )


def book_entry(record: Any) -> BookEntry | None:
    kind, change = _parse(record)
    if kind != VERSION:
        return None
    updated = change.updated or change.start
    return BookEntry(
        id=change.id,
        revision=change.revision,
        version=change.version,
        updated_us=_us(updated),
        start_us=_us(change.start),
        end_us=_us(change.end),
        state=change.state,
        record=orjson.dumps(change.to_json()),
    )


def _us(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)
