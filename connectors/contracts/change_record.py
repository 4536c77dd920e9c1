"""The change-record contract: what was approved, by whom, for which systems, in which window.

This module and the JSON Schema beside it (``change-record.schema.json``) are
the one definition of a change record.  Shared by the change sources (files,
HTTP intake, ServiceNow), which validate what they receive so that a bad
record is refused where it came from, and by the daemon, which puts records on
the timeline and answers coverage queries.
Only the standard library is used, so decoding workers load it cheaply.

Users validate their records against the schema
(``connectors/contracts/change-record.schema.json``, installed with the
package); a test checks that it and :func:`parse_record` agree.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

JSON = dict[str, Any]

STATES = ("draft", "requested", "approved", "implementing", "completed", "cancelled", "rejected")
AUTHORIZING = frozenset({"approved", "implementing", "completed"})
"""Only records in these states authorize anything."""
CLOUD_AXES = (
    "aws_accounts",
    "aws_regions",
    "gcp_projects",
)
"""Scope axes of cloud accounts, projects and regions, one line each; the log type
whose events an axis restricts says which event field it is (``daemon/logtypes/``)."""
SCOPE_AXES = ("hosts", *CLOUD_AXES, "resources", "actions")

CSV_COLUMNS = ("id", "state", "window_start", "window_end")
"""Columns every CSV file of change records must have."""
CSV_OPTIONAL = (
    "title",
    "requested_by",
    "implementers",
    "approved_by",
    "url",
    "version",
    "updated",
    *SCOPE_AXES,
)
"""Further columns understood; list cells are separated by ``;`` or ``,``."""

_FIELDS = frozenset(
    {"id", "title", "state", "requested_by", "implementers", "approved_by", "window", "scope"}
    | {"url", "version", "updated"}
)
MAX_ID_CHARS = 128


class InvalidChangeRecordError(ValueError):
    """A record that cannot be used; ``problems`` lists every reason found."""

    def __init__(self, problems: list[str], record_id: str | None = None) -> None:
        self.problems = problems
        self.record_id = record_id
        where = f"change record {record_id!r}" if record_id else "change record"
        super().__init__(f"{where}: " + "; ".join(problems))


@dataclass(frozen=True, slots=True)
class Scope:
    """What a record covers; an empty axis means no restriction on that axis."""

    hosts: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()
    cloud: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """The cloud axes (``CLOUD_AXES``) the record restricts, with their patterns."""

    def axis(self, name: str) -> tuple[str, ...]:
        """The patterns of one axis of ``SCOPE_AXES``; empty: no restriction."""
        if name in CLOUD_AXES:
            return next((patterns for axis, patterns in self.cloud if axis == name), ())
        found: tuple[str, ...] = getattr(self, name)
        return found


@dataclass(frozen=True, slots=True)
class ChangeRecord:
    """One version of a change record, times aware and in UTC."""

    id: str
    state: str
    start: datetime
    end: datetime
    title: str = ""
    requested_by: str | None = None
    implementers: tuple[str, ...] = ()
    approved_by: str | None = None
    scope: Scope = Scope()
    url: str | None = None
    version: int | None = None
    """The source's version number, when it has one (ServiceNow ``sys_mod_count``)."""
    updated: datetime | None = None
    """When this version was made; the daemon sets it at ingest when absent."""

    @property
    def authorizes(self) -> bool:
        return self.state in AUTHORIZING

    @property
    def revision(self) -> str:
        """Names this version by its content (``updated`` left out), so a
        re-read of the same record is recognized as the same version."""
        content = self.to_json()
        content.pop("updated", None)
        digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()
        return digest[:16]

    def to_json(self) -> JSON:
        """The record in its documented JSON form, times in UTC."""
        out: JSON = {"id": self.id, "title": self.title, "state": self.state}
        if self.requested_by:
            out["requested_by"] = self.requested_by
        out["implementers"] = list(self.implementers)
        if self.approved_by:
            out["approved_by"] = self.approved_by
        out["window"] = {"start": _iso(self.start), "end": _iso(self.end)}
        out["scope"] = {
            axis: list(self.scope.axis(axis)) for axis in SCOPE_AXES if self.scope.axis(axis)
        }
        if self.url:
            out["url"] = self.url
        if self.version is not None:
            out["version"] = self.version
        if self.updated is not None:
            out["updated"] = _iso(self.updated)
        return out


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_record(data: Any, zone: tzinfo = UTC) -> ChangeRecord:
    """Validate one record in its JSON form; times without a zone are in ``zone``.

    Raises :class:`InvalidChangeRecordError` listing every problem at once.
    """
    if not isinstance(data, Mapping):
        raise InvalidChangeRecordError([f"expected a JSON object, got {type(data).__name__}"])
    problems: list[str] = []
    record_id = _text(data, "id", problems, required=True)
    if record_id and len(record_id) > MAX_ID_CHARS:
        problems.append(f"id longer than {MAX_ID_CHARS} characters")
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        problems.append(f"unknown field(s) {', '.join(unknown)}")
    state = _text(data, "state", problems, required=True)
    if state is not None and state not in STATES:
        problems.append(f"unknown state {state!r} (one of {', '.join(STATES)})")
    start = end = None
    window = data.get("window")
    if window is None:
        problems.append("missing window (an object with start and end)")
    elif not isinstance(window, Mapping):
        problems.append("window must be an object with start and end")
    else:
        start = _moment(window.get("start"), "window.start", zone, problems)
        end = _moment(window.get("end"), "window.end", zone, problems)
        if start and end and end <= start:
            problems.append(f"window ends ({_iso(end)}) before it starts ({_iso(start)})")
    scope = _scope(data.get("scope"), problems)
    implementers = _names(data.get("implementers"), "implementers", problems)
    version = data.get("version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
        problems.append(f"version must be an integer, got {version!r}")
        version = None
    updated = data.get("updated")
    updated_at = _moment(updated, "updated", zone, problems) if updated is not None else None
    title = _text(data, "title", problems) or ""
    requested_by = _text(data, "requested_by", problems)
    approved_by = _text(data, "approved_by", problems)
    url = _text(data, "url", problems)
    if problems or record_id is None or state is None or start is None or end is None:
        raise InvalidChangeRecordError(problems, record_id)
    return ChangeRecord(
        id=record_id,
        state=state,
        start=start,
        end=end,
        title=title,
        requested_by=requested_by,
        implementers=implementers,
        approved_by=approved_by,
        scope=scope,
        url=url,
        version=version,
        updated=updated_at,
    )


def _text(
    data: Mapping[str, Any], key: str, problems: list[str], *, required: bool = False
) -> str | None:
    value = data.get(key)
    if value is None or value == "":
        if required:
            problems.append(f"missing {key}")
        return None
    if not isinstance(value, str):
        problems.append(f"{key} must be a string, got {value!r}")
        return None
    return value.strip() or None


def _moment(value: Any, where: str, zone: tzinfo, problems: list[str]) -> datetime | None:
    if value is None or value == "":
        problems.append(f"missing {where}")
        return None
    if not isinstance(value, str):
        problems.append(f"{where} must be an ISO 8601 time, got {value!r}")
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        problems.append(f"{where} is not an ISO 8601 time: {value!r}")
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)


def _names(value: Any, where: str, problems: list[str]) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(f"{where} must be a list of strings, got {value!r}")
        return ()
    return tuple(v.strip() for v in value if v.strip())


def _scope(value: Any, problems: list[str]) -> Scope:
    if value is None:
        return Scope()
    if not isinstance(value, Mapping):
        problems.append("scope must be an object")
        return Scope()
    unknown = sorted(set(value) - set(SCOPE_AXES))
    if unknown:
        problems.append(
            f"unknown scope field(s) {', '.join(unknown)} (known: {', '.join(SCOPE_AXES)})"
        )
    names = {axis: _names(value.get(axis), f"scope.{axis}", problems) for axis in SCOPE_AXES}
    return Scope(
        hosts=names["hosts"],
        resources=names["resources"],
        actions=names["actions"],
        cloud=tuple((axis, names[axis]) for axis in CLOUD_AXES if names[axis]),
    )


def stamp_received(records: list[Any], moment: datetime) -> list[Any]:
    """``records`` (JSON form, not yet validated) with ``updated`` set to ``moment`` where
    they have none.

    A version's time on the timeline is its ``updated``: when it was made.  A source
    that cannot tell stamps when the version reached it (a file's modification time),
    so a record read later (a backfill, a daemon that was down) keeps its own time.
    """
    stamp = _iso(moment.replace(microsecond=0))
    return [
        {**record, "updated": stamp}
        if isinstance(record, dict) and record.get("updated") in (None, "")
        else record
        for record in records
    ]


def from_columns(row: Mapping[str, str | None]) -> JSON:
    """A record in JSON form from one CSV row (see :data:`CSV_COLUMNS`)."""

    def cell(name: str) -> str:
        return (row.get(name) or "").strip()

    def cells(name: str) -> list[str]:
        return [part.strip() for part in cell(name).replace(";", ",").split(",") if part.strip()]

    record: JSON = {
        "id": cell("id"),
        "state": cell("state"),
        "window": {"start": cell("window_start"), "end": cell("window_end")},
        "implementers": cells("implementers"),
        "scope": {axis: cells(axis) for axis in SCOPE_AXES if cells(axis)},
    }
    for name in ("title", "requested_by", "approved_by", "url", "updated"):
        if cell(name):
            record[name] = cell(name)
    if cell("version"):
        version = cell("version")
        record["version"] = int(version) if version.isdigit() else version
    return record


def missing_columns(header: list[str] | None) -> list[str]:
    """The required CSV columns a header lacks."""
    present = {name.strip() for name in header or []}
    return [name for name in CSV_COLUMNS if name not in present]
