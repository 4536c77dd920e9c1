"""What a stored event is: its original record, and the ECS document made from it on read.

Only the record as the source delivered it is kept, with the little the
record itself cannot say (its log type, when it was ingested).  The ECS
document is the normalizer's output for that record, made again when the
event is read: ingest skips building and compressing a document twice the
size of the record, and the store keeps the exact original.  The index
(text and field tags) is made at ingest from the same normalizer output.

The store knows no normalizer: whoever opens it hands one in (``Normalize``);
a store opened without one shows each record as stored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from connectors.base import NormalizationError
from daemon.model import AuditEvent, format_timestamp, parse_timestamp
from daemon.store.text import event_tags, search_text, tag
from daemon.store.units import IndexWords, Normalize

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


NOT_NORMALIZED = "read without a normalizer"
"""The reason a document shows only its original when the store has no normalizer."""


def read(data: bytes, event_time: datetime, normalize: Normalize | None) -> tuple[str, JSON]:
    """The log type and the ECS document of a stored record.

    A record the current normalizer rejects (it changed since ingest) is still
    shown: with its original, its time from the store key and the reason.
    """
    stored = orjson.loads(data)
    return stored["log_type"], _document(stored, event_time, normalize)


def index_of(
    data: bytes, source: str, normalize: Normalize, words: IndexWords
) -> tuple[str, tuple[str, str]]:
    """The log type and index text (text, tags) of a stored record, as ingest made them.

    A store copied to another engine rebuilds its index from these.  A record
    the current normalizer rejects keeps only its source tag, as it is shown
    without normalized fields.
    """
    stored = orjson.loads(data)
    log_type: str = stored["log_type"]
    try:
        event = _event(stored, normalize)
    except NormalizationError:
        return log_type, ("", tag("source", source))
    return log_type, (search_text(event, words(event)), event_tags(event, source))


def _event(stored: JSON, normalize: Normalize | None) -> AuditEvent:
    """The normalized event of a stored record, with what ingest added."""
    if normalize is None:
        raise NormalizationError(NOT_NORMALIZED)
    event = normalize(stored["log_type"], stored["original"])
    event.ingested = parse_timestamp(stored["ingested"])
    event.actor = stored.get("actor", event.actor)
    event.labels = stored.get("labels", event.labels)
    return event


def _document(stored: JSON, event_time: datetime, normalize: Normalize | None) -> JSON:
    try:
        event = _event(stored, normalize)
    except NormalizationError as err:
        return {
            "@timestamp": format_timestamp(event_time),
            "event": {"kind": "event", "ingested": stored["ingested"]},
            "labels": {"normalization_error": err.reason},
            "original": stored["original"],
        }
    return event.to_document()
