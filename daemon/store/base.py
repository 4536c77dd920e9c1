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

from daemon.alert import Alert
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

    def write(self, batches: Sequence[Processed], alerts: Sequence[Alert] = ()) -> WriteResult:
        """Store events, quarantine entries, checkpoints and alerts in one transaction."""

    def checkpoints(self, source: str) -> dict[str, JSON]: ...

    def search(self, query: EventQuery) -> list[JSON]:
        """ECS documents matching ``query``, in the query's order."""

    def alerts(
        self, *, since: datetime | None = None, rule: str | None = None, limit: int = 1000
    ) -> list[Alert]:
        """Stored alerts whose last event is at or after ``since``, oldest first."""

    def quarantine(
        self, *, source: str | None = None, limit: int = 100
    ) -> list[QuarantineEntry]: ...

    def event(
        self, event_id: str, *, since: datetime | None = None, until: datetime | None = None
    ) -> JSON | None:
        """The ECS document of one event by ``event.id``.  Event ids are not
        indexed: ``since``/``until`` narrow the scan."""

    def change_records(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> list[JSON]:
        """Current version of every change record whose window overlaps
        ``since..until`` (either open), in its JSON form, by window start.

        ``write`` keeps them: each batch's ``changes`` go into the history of
        versions; a new version replaces the current one when its ``version``
        number is higher, or, without numbers, when it was updated later.
        The event of a version kept before is not stored again.
        """

    def change_history(self, change_id: str) -> list[JSON]:
        """Every version of one change record received, oldest first."""

    def prune(self, now: datetime) -> int:
        """Drop events older than the retention period; returns how many."""

    def count(self) -> int: ...

    def quarantine_count(self) -> int: ...

    def close(self) -> None: ...
