"""What the rest of the daemon knows about a timeline store.

One interface, one implementation per engine; callers never learn which one
they have.  Calls are synchronous: the pipeline runs writes in the store's
single writer thread and queries in worker threads, never on the event loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from daemon.process import Processed

JSON = dict[str, Any]


@dataclass(frozen=True, slots=True)
class EventQuery:
    """Filters of the timeline; all given filters must hold."""

    since: datetime | None = None
    until: datetime | None = None
    text: str | None = None
    actor: str | None = None
    user: str | None = None
    ip: str | None = None
    host: str | None = None
    account: str | None = None
    region: str | None = None
    dataset: str | None = None
    action: str | None = None
    outcome: str | None = None
    source: str | None = None
    limit: int = 100
    order: Literal["newest", "oldest"] = "newest"
    after: int | None = None
    """Row key of the last event of the previous page: continue past it, in ``order``."""


@dataclass(frozen=True, slots=True)
class Found:
    """One event as a page of the timeline lists it."""

    key: int
    """The row key: the event's address in this store (``events/{key}`` in the API)."""
    source: str
    """Id of the source that read it."""
    log_type: str
    document: JSON


@dataclass(frozen=True, slots=True)
class WriteResult:
    stored: int
    duplicates: int
    quarantined: int
    expired: int


@dataclass(frozen=True, slots=True)
class QuarantineEntry:
    id: int
    at: datetime
    source: str
    origin: str
    position: int | None
    reason: str
    raw: bytes
    raw_size: int


class Store(Protocol):
    path: Path
    """Where decoding workers read compression dictionaries from."""

    @property
    def codec(self) -> int:
        """The codec new records should be compressed with."""

    @property
    def wants_samples(self) -> bool:
        """True while the store collects records to train a dictionary on."""

    def write(self, batches: Sequence[Processed]) -> WriteResult:
        """Store events, quarantine entries and checkpoints in one transaction."""

    def checkpoints(self, source: str) -> dict[str, JSON]: ...

    def search(self, query: EventQuery) -> list[JSON]:
        """ECS documents matching ``query``, in the query's order."""

    def page(self, query: EventQuery) -> list[Found]:
        """Like ``search``, with each event's row key, source and log type."""

    def event(self, key: int) -> Found | None:
        """The event stored under row key ``key``."""

    def histogram(
        self, since: datetime, until: datetime, bucket_minutes: int
    ) -> list[tuple[datetime, str, int]]:
        """Events per (bucket start, log type) with events in ``[since, until]``."""

    def interrupt(self) -> None:
        """Abort the query running on this store's connection (from another thread)."""

    def quarantine(
        self, *, source: str | None = None, limit: int = 100
    ) -> list[QuarantineEntry]: ...

    def prune(self, now: datetime) -> int:
        """Drop events older than the retention period; returns how many."""

    def count(self) -> int: ...

    def quarantine_count(self) -> int: ...

    def close(self) -> None: ...
