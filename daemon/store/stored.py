"""What a stored event is: its original record, and the ECS document made from it on read.

Only the record as the source delivered it is kept, with the little the
record itself cannot say (its log type, when it was ingested).  The ECS
document is the normalizer's output for that record, made again when the
event is read: ingest skips building and compressing a document twice the
size of the record, and the store keeps the exact original.  The index
(text and field tags) is made at ingest from the same normalizer output.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from connectors.base import NormalizationError
from daemon.model import AuditEvent, format_timestamp, parse_timestamp
from daemon.normalize import module_for

JSON = dict[str, Any]


def encode(log_type: str, ingested: str, record: Any, event: AuditEvent | None = None) -> bytes:
    """The stored form of one record (before compression).

    What ingest added that the record cannot say again (the person from the
    identity map, labels) travels beside it.
    """
    stored: JSON = {"log_type": log_type, "ingested": ingested, "original": record}
    if event is not None:
        if event.actor:
            stored["actor"] = event.actor
        if event.labels:
            stored["labels"] = event.labels
    return orjson.dumps(stored)


def document(data: bytes, event_time: datetime) -> JSON:
    """The ECS document of a stored record.

    A record the current normalizer rejects (it changed since ingest) is still
    shown: with its original, its time from the store key and the reason.
    """
    return read(data, event_time)[1]


def read(data: bytes, event_time: datetime) -> tuple[str, JSON]:
    """The log type and the ECS document of a stored record (see ``document``)."""
    stored = orjson.loads(data)
    return stored["log_type"], _document(stored, event_time)


def _document(stored: JSON, event_time: datetime) -> JSON:
    try:
        event: AuditEvent = module_for(stored["log_type"]).normalize(stored["original"])
    except NormalizationError as err:
        return {
            "@timestamp": format_timestamp(event_time),
            "event": {"kind": "event", "ingested": stored["ingested"]},
            "labels": {"normalization_error": err.reason},
            "original": stored["original"],
        }
    event.ingested = parse_timestamp(stored["ingested"])
    event.actor = stored.get("actor", event.actor)
    event.labels = stored.get("labels", event.labels)
    return event.to_document()
