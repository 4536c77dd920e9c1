"""What ``auditcorr migrate-store`` does: copy a whole timeline from one store to another
(``daemon/cli/migrate_store.py`` is the command).

The case that matters is an SQLite file moving to PostgreSQL when one host is
no longer enough, but the copy only speaks the store interface, so any engine
goes to any other.  Events keep their row keys, codecs and stored documents
(the compression dictionaries are copied first, under the same ids); the
target builds its full-text index from the same index text ingest made.

The copy goes in key order, one target transaction per batch, and each batch
also records in the target how far it got (``transfer.MARKER``), so a copy
that was interrupted continues with ``--resume`` without doubles.  The other
tables are copied after the events with inserts that leave rows copied before
alone.  A final check compares row counts, pages of documents and searches.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any, Final, TextIO

from daemon.logtypes import index_words, normalize_record
from daemon.store import codec as codecs
from daemon.store import stored, transfer
from daemon.store.base import EventQuery, Found, Store
from daemon.store.units import Entry

PROGRESS_EVERY_SECS: Final = 5.0
SAMPLE_EVENTS: Final = 50
_FIRST_KEY: Final = -(1 << 63)


class MigrationRefusedError(Exception):
    """The copy cannot start: the target is not empty, or holds another copy."""


@dataclass
class Progress:
    """Events copied so far, printed with rate and time left every few seconds."""

    total: int
    out: TextIO = sys.stderr
    every_secs: float = PROGRESS_EVERY_SECS
    done: int = 0
    started: float = field(default_factory=time.monotonic)
    _printed: float = field(default_factory=time.monotonic)
    _first: int = 0

    def resume_at(self, done: int) -> None:
        self.done = self._first = done

    def add(self, count: int) -> None:
        self.done += count
        now = time.monotonic()
        if now - self._printed >= self.every_secs:
            self._printed = now
            self.print()

    def rate(self) -> float:
        spent = time.monotonic() - self.started
        return (self.done - self._first) / spent if spent > 0 else 0.0

    def print(self) -> None:
        rate = self.rate()
        left = max(self.total - self.done, 0)
        eta = f"{left / rate:.0f}s" if rate > 0 else "unknown"
        share = 100 * self.done / self.total if self.total else 100.0
        print(
            f"migrate-store: {self.done}/{self.total} events ({share:.0f}%),"
            f" {rate:.0f} events/s, ETA {eta}",
            file=self.out,
            flush=True,
        )


def copy_store(
    source: Store, target: Store, *, batch: int, resume: bool, progress: Progress
) -> int:
    """Copy every table of ``source`` into ``target``; returns the events copied by this run."""
    last_key, copied = _start(source, target, resume=resume)
    progress.resume_at(copied)
    origin = source.location
    # Dictionaries first: the events' documents are compressed with them.
    _copy_table(source, target, transfer.CODECS, batch)
    decoder = codecs.Codecs(source.dictionaries())
    before = copied
    while rows := source.export_rows(transfer.EVENTS, last_key, batch):
        entries = [_entry(decoder, row) for row in rows]
        last_key = int(rows[-1][0])
        copied += len(rows)
        target.import_rows([(transfer.MARKER_SAVE, [(origin, last_key, copied)])], entries)
        progress.add(len(rows))
    for table in transfer.TABLES:
        _copy_table(source, target, table, batch)
    return copied - before


def _start(source: Store, target: Store, *, resume: bool) -> tuple[int, int]:
    """Where the copy starts: (last event key copied, events copied), checking the target."""
    held = {table.name: target.table_count(table) for table in transfer.ALL}
    occupied = sum(held.values())
    if occupied and not resume:
        tables = ", ".join(f"{name} {n}" for name, n in held.items() if n)
        raise MigrationRefusedError(
            f"{target.location} is not empty ({tables}); migrate-store copies into an empty"
            " store only (--resume continues an interrupted copy into it)"
        )
    target.import_rows([(transfer.MARKER_TABLE, None)], [])
    marker = target.export_rows(transfer.MARKER, 0, 1)
    if not marker:
        if occupied:
            target.import_rows([(transfer.MARKER_DROP, None)], [])
            raise MigrationRefusedError(
                f"{target.location} holds a timeline that no interrupted migrate-store left;"
                " there is nothing to resume"
            )
        origin = source.location
        target.import_rows([(transfer.MARKER_SAVE, [(origin, _FIRST_KEY, 0)])], [])
        return _FIRST_KEY, 0
    _, origin, last_key, copied = marker[0]
    if origin != source.location:
        raise MigrationRefusedError(
            f"{target.location} holds an interrupted copy from {origin}, not from"
            f" {source.location}; resume it with that source"
        )
    return int(last_key), int(copied)


def _entry(decoder: codecs.Codecs, row: tuple[Any, ...]) -> Entry:
    key, eid, source, codec, doc = row
    log_type, text = stored.index_of(
        decoder.decompress(codec, doc), source, normalize_record, index_words
    )
    return (source, (key, eid, codec, bytes(doc)), text, log_type)


def _copy_table(source: Store, target: Store, table: transfer.Table, batch: int) -> None:
    """Copy one table in pages, each one target transaction."""
    position = 0
    insert = table.insert()
    while rows := source.export_rows(table, position, batch):
        target.import_rows([(insert, rows)], [])
        position = int(rows[-1][0]) if table.numbered else position + len(rows)


def finish(target: Store) -> None:
    """The copy is complete and checked: the target no longer holds an unfinished copy."""
    target.import_rows([(transfer.MARKER_DROP, None)], [])


# -- checking ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str


def verify(source: Store, target: Store) -> list[Check]:
    """Row counts per table, the oldest and newest pages and searches for sampled values."""
    checks = [
        Check(f"rows in {table.name}", a == b, f"{a} source, {b} target")
        for table in transfer.ALL
        for a, b in [(source.table_count(table), target.table_count(table))]
    ]
    queries = [
        EventQuery(limit=SAMPLE_EVENTS // 2, order="oldest"),
        EventQuery(limit=SAMPLE_EVENTS // 2, order="newest"),
    ]
    sampled = [found for query in queries for found in source.page(query)]
    queries.extend(_searches(sampled))
    for query in queries:
        a, b = source.page(query), target.page(query)
        checks.append(Check(f"events of {_describe(query)}", _same(a, b), f"{len(a)} events"))
    return checks


def _searches(sampled: list[Found]) -> list[EventQuery]:
    """Field and text searches for values of the sampled events, each asked once."""
    # dicts as ordered sets: each value once, in the order first seen
    actions: dict[str, None] = {}
    users: dict[str, None] = {}
    ips: dict[str, None] = {}
    hosts: dict[str, None] = {}
    for found in sampled:
        doc = found.document
        for seen, value in (
            (actions, doc.get("event", {}).get("action")),
            (users, doc.get("user", {}).get("name")),
            (ips, doc.get("source", {}).get("ip")),
            (hosts, doc.get("host", {}).get("name")),
        ):
            if value:
                seen[value] = None
    limit = SAMPLE_EVENTS
    return [
        *(EventQuery(action=value, limit=limit) for value in actions),
        *(EventQuery(user=value, limit=limit) for value in users),
        *(EventQuery(text=value, limit=limit) for value in users),
        *(EventQuery(ip=value, limit=limit) for value in ips),
        *(EventQuery(host=value, limit=limit) for value in hosts),
    ]


def _describe(query: EventQuery) -> str:
    asked = [
        f"{name}={getattr(query, name)}"
        for name in ("text", "action", "user", "ip", "host")
        if getattr(query, name)
    ]
    return " ".join(asked) or f"the {query.order} page"


def _same(a: list[Found], b: list[Found]) -> bool:
    return [(f.key, f.source, f.log_type, f.document) for f in a] == [
        (f.key, f.source, f.log_type, f.document) for f in b
    ]
