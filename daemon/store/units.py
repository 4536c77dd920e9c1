"""What the store is handed to write: its own types, so that it imports no layer above it.

The decoding workers fill a ``Batch`` (``daemon/process.py`` extends it with
their counters), the writer hands batches to ``write``; the correlator hands
a ``Round`` to ``commit_round``.  Everything here is plain data that pickles
cheaply between processes.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from connectors.base import Checkpoint
from daemon.alert import Alert
from daemon.model import AuditEvent

Row = tuple[int, int, int, bytes]
"""key, eid, codec, compressed stored record (see store/stored.py)"""
Text = tuple[str, str]
"""searchable text, field tags (see store/text.py)"""
Entry = tuple[str, Row, Text, str]
"""source id, row, index text, log type: one event as a write places it"""

Normalize = Callable[[str, Any], AuditEvent]
"""The normalizer of a log type applied to one original record; raises
``NormalizationError`` for a record it rejects.  Handed to a store that reads
documents: the store keeps originals and makes ECS documents on read."""

IndexWords = Callable[[AuditEvent], list[Any]]
"""The words an event's log type adds to its index text (``text.search_text``),
handed in where a store's index is rebuilt from stored records."""


@dataclass(slots=True)
class Quarantined:
    origin: str
    position: int | None
    reason: str
    raw: bytes
    raw_size: int


@dataclass(frozen=True, slots=True)
class BookEntry:
    """One version of a change record, as the store's change book keeps it."""

    id: str
    revision: str
    version: int | None
    updated_us: int
    start_us: int
    end_us: int
    state: str
    record: bytes
    """The record's JSON form (times in UTC)."""


@dataclass(slots=True)
class Batch:
    """What one payload adds to the store, written with others in one transaction."""

    source: str
    origin: str
    log_type: str = ""
    """The batch's log type: the timeline histogram counts rows by it."""
    rows: list[Row] = field(default_factory=list)
    texts: list[Text] = field(default_factory=list)
    quarantined: list[Quarantined] = field(default_factory=list)
    checkpoints: list[Checkpoint] = field(default_factory=list)
    samples: list[bytes] = field(default_factory=list)
    """Uncompressed stored records for dictionary training, sent while the store has none."""
    changes: list[tuple[int, BookEntry]] = field(default_factory=list)
    """Change record versions with the key of the event each one made."""
    feed: list[tuple[int, bytes]] = field(default_factory=list)
    """(eid, JSON document) of what the correlator must see of an event (its detection
    hits); appended to the feed only when the write stores that event for the first
    time, so a re-read event reaches the correlator once."""


Held = tuple[str, str, str, int, bytes | None]
"""A hit a correlation group holds: correlation, group, hit name (unique in the
group), event time in µs since the epoch, the hit's JSON (None: no longer held)."""


@dataclass(frozen=True, slots=True)
class Round:
    """One round of the correlator, committed in one transaction: its feed position,
    the state it changed, the alerts it raised or updated with their timeline entries,
    and their outbox rows."""

    after: int
    """The feed position the round started from: the commit fails with
    ``FeedMovedError`` when the stored position is no longer this one."""
    position: int
    state: Mapping[str, bytes | None] = field(default_factory=dict)
    """State rows written (None: deleted)."""
    held: Sequence[Held] = ()
    expired: Mapping[str, int] = field(default_factory=dict)
    """Per correlation, the event time (µs) before which the hits it holds go."""
    correlations: Collection[str] | None = None
    """When set, the correlations whose held hits stay: the others' go (rules removed)."""
    alerts: Sequence[Alert] = ()
    entries: Sequence[Entry] = ()
    """The alerts' timeline entries; one already stored is left alone."""
    deliveries: Sequence[tuple[Alert, str]] = ()
    """(alert, output id) to queue in the outbox."""


class FeedMovedError(Exception):
    """Another correlator committed past the position this round started from."""
