"""What the rest of the daemon knows about a timeline store.

One interface per concern (writing the timeline, reading it, the change book,
alerts and their outbox, the correlator's feed and state, copying), one
implementation per engine that has them all; callers never learn which
engine they have, and name only the concerns they use.  Calls are
synchronous: the pipeline runs writes in the store's single writer thread,
the correlator in its own thread with its own connection, and queries in
worker threads, never on the event loop.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from daemon.alert import Alert
from daemon.store.transfer import Statement, Table
from daemon.store.units import Batch, Entry, Round
from daemon.store.writing import Sorted

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
    """What one store write did: totals, and each source's share of them."""

    stored: int
    duplicates: int
    quarantined: int
    expired: int
    stored_by_source: Mapping[str, int] = field(default_factory=dict)
    """Events stored, by the id of the source that read them."""
    duplicates_by_source: Mapping[str, int] = field(default_factory=dict)
    """Events the store held already, by source."""

    @classmethod
    def of(cls, rows: Sorted, quarantined: int) -> WriteResult:
        """The result of a write whose events ``rows`` sorted and placed."""
        stored = rows.stored()
        return cls(
            stored=stored.total(),
            duplicates=rows.duplicates.total(),
            quarantined=quarantined,
            expired=rows.expired,
            stored_by_source=dict(stored),
            duplicates_by_source=dict(rows.duplicates),
        )


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


DeliveryState = Literal["pending", "sent", "failed"]


@dataclass(frozen=True, slots=True)
class Delivery:
    """One outbox row: an alert on its way to one output."""

    id: int
    alert_id: str
    output: str
    alert: JSON
    """The alert document (``Alert.to_json``) as it was when queued."""
    state: DeliveryState
    enqueued_at: datetime
    budget_from: datetime
    """Start of the retry budget (``max_age_secs``): queueing, or the last manual retry."""
    due_at: datetime
    attempts: int
    last_error: str | None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of leased outbox rows; recorded with the next lease, in one transaction.

    ``sent`` and ``failed`` end the rows; ``retry`` counts an attempt and makes
    them due again at ``due``; ``held`` lifts the lease without counting one
    (quiet hours, rate limit, no free send slot).
    """

    ids: tuple[int, ...]
    state: Literal["sent", "retry", "held", "failed"]
    at: datetime
    due: datetime | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class DeliveryRound:
    """What one round leased, per output, and when the next unleased row of those falls due."""

    leased: dict[str, list[Delivery]]
    next_due: datetime | None


class StoreUnavailableError(Exception):
    """The store's database cannot be reached now; a write is retried later."""


class TimelineWriter(Protocol):
    """The writer's view: events, checkpoints, quarantine, change versions and the feed."""

    location: str
    """Where the store is, for logs and summaries (never with a password)."""

    def dictionaries(self) -> Callable[[int], bytes]:
        """A function that reads a compression dictionary by id, for decoding
        workers in other processes (it pickles)."""

    @property
    def codec(self) -> int:
        """The codec new records should be compressed with."""

    @property
    def wants_samples(self) -> bool:
        """True while the store collects records to train a dictionary on."""

    def write(self, batches: Sequence[Batch]) -> WriteResult:
        """Store events, quarantine entries, checkpoints and change record versions, and
        feed the correlator the items of the events stored for the first time and the
        change record versions kept, in one transaction."""

    def checkpoints(self, source: str) -> dict[str, JSON]: ...

    def checkpoint_times(self, source: str) -> dict[str, datetime]:
        """When each checkpoint of ``source`` was last committed, by key."""

    def prune(self, now: datetime) -> int:
        """Drop events older than the retention period; returns how many."""

    def close(self) -> None: ...


class TimelineReader(Protocol):
    """What pages, searches and the CLI read of the timeline."""

    location: str

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

    def event_by_id(
        self, event_id: str, *, since: datetime | None = None, until: datetime | None = None
    ) -> JSON | None:
        """The ECS document of one event by ``event.id``.  Event ids are not
        indexed: ``since``/``until`` narrow the scan."""

    def find_event(
        self, event_id: str, *, since: datetime | None = None, until: datetime | None = None
    ) -> Found | None:
        """As ``event_by_id``, with the event's row key, source and log type."""

    def count(self) -> int: ...

    def quarantine_count(self) -> int: ...

    def close(self) -> None: ...


class ChangeBook(Protocol):
    """The change records the writer keeps from each batch's ``changes``."""

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

    def change_record(self, change_id: str) -> JSON | None:
        """The current version of one change record."""

    def change_history(self, change_id: str) -> list[JSON]:
        """Every version of one change record received, oldest first."""


class AlertBook(Protocol):
    """Stored alerts and their outbox (``daemon/store/outbox.py``)."""

    def alerts(
        self,
        *,
        since: datetime | None = None,
        rule: str | None = None,
        severities: Sequence[str] | None = None,
        limit: int = 1000,
        newest_first: bool = False,
    ) -> list[Alert]:
        """Stored alerts whose last event is at or after ``since`` (and whose severity is
        one of ``severities`` when given): by their first event, oldest first, or with
        ``newest_first`` by their last event, newest first."""

    def alert(self, alert_id: str) -> Alert | None: ...

    def write_alerts(self, deliveries: Sequence[tuple[Alert, str]]) -> int:
        """Queue ``deliveries`` (alert, output id) in the outbox, in one transaction.

        Returns the outbox rows queued.  An alert already queued for an output
        refreshes its pending row; a sent or failed one is left alone.
        """

    def delivery_round(
        self, outcomes: Sequence[Outcome], wants: Mapping[str, int], now: datetime
    ) -> DeliveryRound:
        """Record ``outcomes``, then lease up to ``wants[output]`` pending rows of each
        output due by ``now`` (oldest first), all in one transaction."""

    def release_deliveries(self, output: str) -> int:
        """Lift every lease of ``output`` (leases do not outlive a daemon)."""

    def deliveries(
        self, state: DeliveryState, *, output: str | None = None, limit: int = 100
    ) -> list[Delivery]: ...

    def alert_deliveries(self, alert_id: str) -> list[Delivery]:
        """The outbox rows of one alert, one per output it was routed to."""

    def delivery_counts(self) -> dict[tuple[str, DeliveryState], int]:
        """Rows per (output, state)."""

    def retry_deliveries(self, ids: Sequence[int] | None, now: datetime) -> int:
        """Failed rows (all when ``ids`` is None) back to pending, due now, fresh budget."""

    def close(self) -> None: ...


class CorrelationLog(Protocol):
    """The correlator's view: the feed in commit order, its durable state, its commits."""

    location: str

    def feed_after(self, position: int, limit: int) -> list[tuple[int, bytes]]:
        """Feed rows past ``position``, oldest first: (sequence number, entry).  An
        entry is a JSON array of one write's feed items, then ``{"change": record}``
        for each change record version it kept."""

    def correlation_state(self) -> tuple[int, dict[str, bytes]]:
        """The correlator's stored feed position and state rows."""

    def held_hits(self, groups: Collection[tuple[str, str]]) -> dict[tuple[str, str], list[bytes]]:
        """The committed hits of (correlation, group) keys, as ``Round.held`` wrote them;
        a group holding none is left out."""

    def commit_round(self, done: Round) -> None:
        """Commit a correlator round in one transaction: its position and state, its
        alerts with their timeline entries, and their outbox rows.  Raises
        ``FeedMovedError`` (and commits nothing) when the stored position is not
        ``done.after``: another correlator moved it."""

    def prune_feed(self) -> int:
        """Drop the feed rows the correlator is done with."""

    # What judging changes and reviewing closed records read (see ChangeBook, TimelineReader).

    def change_records(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> list[JSON]: ...

    def change_record(self, change_id: str) -> JSON | None: ...

    def change_history(self, change_id: str) -> list[JSON]: ...

    def page(self, query: EventQuery) -> list[Found]: ...

    def close(self) -> None: ...


class StoreCopy(Protocol):
    """Copying a store to another (``daemon/migrate_store.py``)."""

    def export_rows(self, table: Table, position: int, limit: int) -> list[tuple[Any, ...]]:
        """Up to ``limit`` rows of ``table`` in key order, from ``position``: the last id
        read for a numbered table, the rows read so far for the others."""

    def table_count(self, table: Table) -> int: ...

    def import_rows(self, statements: Sequence[Statement], events: Sequence[Entry]) -> None:
        """One transaction of a copy: ``events`` as stored elsewhere (same keys, codecs and
        documents) with their index rebuilt from their index text, then ``statements``."""


class Store(
    TimelineWriter, TimelineReader, ChangeBook, AlertBook, CorrelationLog, StoreCopy, Protocol
):
    """Every concern at once: what an engine implements (and what tests open)."""
