"""One normalizer per log type: raw payloads in, ``AuditEvent`` out.

A log type's module offers two functions, looked up through ``LOG_TYPES``:

``decode(payload: bytes, limits: Limits) -> list[Any]``
    Split one payload (a whole file or object as the source read it) into
    records.  Raises ``NormalizationError`` when the payload as a whole is
    unusable (truncated gzip, not JSON, wrong shape, over a size limit).

``normalize(record: Any) -> AuditEvent``
    Map one record to the ECS model.  Raises ``NormalizationError`` for one
    bad record; the caller quarantines it and goes on.

``selector(settings: Mapping[str, Any]) -> Callable[[Any], str | None] | None`` (optional)
    The check a source's selection settings (``SourceConfig.selection()``) make
    on each decoded record before it is normalized: it answers the name of the
    setting that drops the record, or None to keep it.  None when the settings
    select nothing.

``RAW_FIELDS: Mapping[str, Callable[[Any], str | None]]`` (optional)
    Readers of filter fields (``action``, ``dataset``, ...) on a decoded record,
    each giving exactly what ``normalize`` would set: when a source's ``keep``
    and ``drop`` read only these fields (and ``source``), they are decided
    before normalizing.

``book_entry(record: Any) -> BookEntry | None`` (optional; ``daemon/store/units.py``)
    The change record a decoded record carries, which the store keeps in its
    change book in the same transaction as the record's event.

An event whose program the normalizer knows but whose message it does not
carries the label ``UNRECOGNIZED``; the pipeline counts those per
``process.name`` for ``/metrics``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import orjson

from connectors.base import NormalizationError
from daemon.model import AuditEvent

UNRECOGNIZED = "unrecognized"
"""The label of an event whose message no form of its program matched."""

LOG_TYPES: dict[str, str] = {
    "alert": "daemon.normalize.alert",
    "audit": "daemon.normalize.audit",
    "auditd": "daemon.normalize.auditd",
    "cloudtrail": "daemon.normalize.cloudtrail",
    "ecs": "daemon.normalize.ecs",
    "change": "daemon.normalize.change",
    "journald": "daemon.normalize.journald",
    "syslog": "daemon.normalize.syslog",
}


@dataclass(frozen=True, slots=True)
class Limits:
    """Size limits that apply to every input, whatever its transport."""

    max_payload_bytes: int = 512 * 1024 * 1024
    """Largest decompressed file or object accepted."""
    max_record_bytes: int = 1024 * 1024
    """Largest single record (serialized) accepted."""
    timezone: str = "UTC"
    """``[daemon].timezone``: the zone of times written without one (change records)."""


def json_records(payload: bytes, limits: Limits, what: str) -> list[Any]:
    """A payload holding one JSON record or a list of them, ``what`` naming them in
    the error."""
    if len(payload) > limits.max_payload_bytes:
        raise NormalizationError(f"payload size exceeds {limits.max_payload_bytes} bytes")
    try:
        parsed = orjson.loads(payload)
    except orjson.JSONDecodeError as err:
        raise NormalizationError(f"{what} are not JSON: {err}") from err
    return parsed if isinstance(parsed, list) else [parsed]


def module_for(log_type: str) -> ModuleType:
    try:
        return importlib.import_module(LOG_TYPES[log_type])
    except KeyError:
        raise ValueError(f"no normalizer for log type {log_type!r}") from None


def normalize_record(log_type: str, record: Any) -> AuditEvent:
    """One record through its log type's normalizer: what a store is handed to make
    ECS documents on read."""
    event: AuditEvent = module_for(log_type).normalize(record)
    return event
