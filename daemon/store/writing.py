"""What a store write does before and around its SQL, the same for every engine.

Sorting a write's rows into new ones, repeats and expired ones; counting the
events whose row key another event holds once ``placing`` stored them; the
rows of minute counts, checkpoints and quarantine entries; collecting
dictionary samples.  The
engines differ only in how they run the statements.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from daemon.store import codec as codecs
from daemon.store import placing
from daemon.store.keys import HASH_BITS, key_floor, key_minute
from daemon.store.units import Batch, Entry

FEED_ROW_ITEMS = 1000
"""Feed items (hits, change record versions) in one feed row at most."""


@dataclass(slots=True)
class Sorted:
    """A write's rows: new ones in key order, those placing stores (their key another
    event took, or their millisecond is crowded), and the counts.

    Repeats and stored events are counted by source, because one transaction
    carries the batches of several sources and each source's counts must be its own.
    """

    fresh: dict[int, Entry] = field(default_factory=dict)
    collisions: list[Entry] = field(default_factory=list)
    duplicates: Counter[str] = field(default_factory=Counter)
    placed: Counter[str] = field(default_factory=Counter)
    """Events of ``collisions`` stored by placing, by source."""
    placed_eids: set[int] = field(default_factory=set)
    expired: int = 0

    def drop(self, keys: Iterable[int]) -> None:
        """Count the events of ``keys`` as repeats (their change record version was kept)."""
        for key in keys:
            entry = self.fresh.pop(key, None)
            if entry is not None:
                self.duplicates[entry[0]] += 1

    def settle(self, existing: Iterable[tuple[int, int]]) -> None:
        """Take out the keys the store holds: a repeat when the same event holds it."""
        for key, eid in existing:
            entry = self.fresh.pop(key)
            if entry[1][1] == eid:
                self.duplicates[entry[0]] += 1
            else:
                self.collisions.append(entry)

    def crowd(self, access: placing.Access) -> None:
        """Hand the events of crowded milliseconds to placing, which looks for them
        where they may be (see ``placing``), before the natural keys are looked up."""
        marked = placing.crowded(access, {key >> HASH_BITS for key in self.fresh})
        for key in [key for key in self.fresh if key >> HASH_BITS in marked]:
            self.collisions.append(self.fresh.pop(key))

    def place_collisions(self, access: placing.Access) -> Counter[tuple[int, str]]:
        """Store each event of ``collisions`` (see ``placing``); returns the minute
        counts of those stored."""
        keys = placing.place(self.collisions, access)
        pairs = list(zip(keys, self.collisions, strict=True))
        placed = [(key, entry) for key, entry in pairs if key is not None]
        self.duplicates.update(entry[0] for key, entry in pairs if key is None)
        self.placed.update(entry[0] for _, entry in placed)
        self.placed_eids.update(entry[1][1] for _, entry in placed)
        return minute_counts(placed)

    def stored_eids(self) -> set[int]:
        """Hashes of the events stored, once the write placed its collisions."""
        return {entry[1][1] for entry in self.fresh.values()} | self.placed_eids

    def stored(self) -> Counter[str]:
        """Events stored by source, once the write placed its collisions."""
        return Counter(entry[0] for entry in self.fresh.values()) + self.placed


def sort_rows(batches: Sequence[Batch], floor: int) -> Sorted:
    """Rows of all batches by key; repeats within the write and events past ``floor`` counted."""
    out = Sorted()
    for batch in batches:
        source = batch.source
        for row, text in zip(batch.rows, batch.texts, strict=True):
            key = row[0]
            if key < floor:
                out.expired += 1
                continue
            seen = out.fresh.get(key)
            if seen is None:
                out.fresh[key] = (source, row, text, batch.log_type)
            elif seen[1][1] == row[1]:
                out.duplicates[source] += 1
            else:
                out.collisions.append((source, row, text, batch.log_type))
    # In key order: the rows and their full-text entries go in as appends, and
    # SQLite's FTS5 starts a new index segment whenever a rowid goes down.
    out.fresh = dict(sorted(out.fresh.items()))
    return out


_KEEP_VERSION = (
    "INSERT INTO change_versions (id, revision, received_at, source, record)"
    " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)
_KEEP_RECORD = (
    "INSERT INTO change_records (id, revision, version, updated, window_start,"
    " window_end, state, record) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (id) DO UPDATE SET revision = excluded.revision,"
    " version = excluded.version, updated = excluded.updated,"
    " window_start = excluded.window_start, window_end = excluded.window_end,"
    " state = excluded.state, record = excluded.record"
    " WHERE (coalesce(excluded.version, -1), excluded.updated)"
    " >= (coalesce(change_records.version, -1), change_records.updated)"
)


def book(
    batches: Sequence[Batch], now_us: int, execute: Callable[[str, Sequence[Any]], int]
) -> tuple[list[int], list[bytes]]:
    """Keep change record versions; returns the event keys of versions already kept,
    and the records (JSON) of the versions kept now.

    ``execute`` runs one statement with ``?`` parameters in the write's
    transaction and returns how many rows it changed.  The highest version
    number wins; without numbers, the latest update.
    """
    repeated = []
    kept = []
    for batch in batches:
        for key, entry in batch.changes:
            if not execute(
                _KEEP_VERSION, (entry.id, entry.revision, now_us, batch.source, entry.record)
            ):
                repeated.append(key)
                continue
            kept.append(entry.record)
            execute(
                _KEEP_RECORD,
                (
                    entry.id,
                    entry.revision,
                    entry.version,
                    entry.updated_us,
                    entry.start_us,
                    entry.end_us,
                    entry.state,
                    entry.record,
                ),
            )
    return repeated, kept


def minute_counts(placed: Iterable[tuple[int, Entry]]) -> Counter[tuple[int, str]]:
    """Events per (minute, log type) of the stored ``(key, entry)`` pairs."""
    return Counter((key_minute(key), entry[3]) for key, entry in placed)


def checkpoint_rows(batches: Sequence[Batch], now_us: int) -> list[tuple[str, str, bytes, int]]:
    """(source, key, value, updated_at) of every checkpoint in the write."""
    return [
        (batch.source, cp.key, orjson.dumps(cp.value), now_us)
        for batch in batches
        for cp in batch.checkpoints
    ]


QuarantineRow = tuple[int, str, str, int | None, str, bytes, int]


def quarantine_rows(batches: Sequence[Batch], now_us: int) -> list[QuarantineRow]:
    """(at, source, origin, position, reason, raw, raw_size) of every quarantined record."""
    return [
        (now_us, batch.source, q.origin, q.position, q.reason, q.raw, q.raw_size)
        for batch in batches
        for q in batch.quarantined
    ]


def retention_floor(retention_days: int, now: datetime | None = None) -> int:
    """The smallest row key retention keeps; 0 keeps everything."""
    if retention_days <= 0:
        return 0
    moment = (now or datetime.now(UTC)) - timedelta(days=retention_days)
    return key_floor(moment)


def collect_samples(samples: list[bytes], batches: Sequence[Batch]) -> bool:
    """Add the batches' training documents to ``samples``; True once there are enough."""
    for batch in batches:
        samples.extend(batch.samples[: codecs.TRAIN_SAMPLES - len(samples)])
    return len(samples) >= codecs.TRAIN_SAMPLES


def feed_entries(
    batches: Sequence[Batch], stored: set[int], changes: Sequence[bytes] = ()
) -> list[bytes]:
    """The feed rows of a write: JSON arrays of the feed items of the events it
    ``stored`` (by eid), then ``{"change": record}`` for each change record version
    it kept, ``FEED_ROW_ITEMS`` to a row, so that the correlator's rounds stay short.

    An event read twice in one write (two sources, or twice in one payload)
    gives its items once: those of its first run of items.
    """
    taken: list[bytes] = []
    done: set[int] = set()
    for batch in batches:
        run: int | None = None
        last: int | None = None
        for eid, item in batch.feed:
            if eid != last:
                if run is not None:
                    done.add(run)
                run = eid if eid in stored and eid not in done else None
                last = eid
            if run is not None:
                taken.append(item)
        if run is not None:
            done.add(run)
    taken.extend(b'{"change":' + record + b"}" for record in changes)
    return [
        b"[" + b",".join(taken[start : start + FEED_ROW_ITEMS]) + b"]"
        for start in range(0, len(taken), FEED_ROW_ITEMS)
    ]
