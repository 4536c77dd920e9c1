"""The tables a store is copied as, for moving a timeline to another engine.

Both engines hold the same tables with the same columns (``schema.py``,
``pgschema.py``), so a copy is rows read from one in key order and inserted
into the other with the same statements.  Only the events need more than
their columns: the target rebuilds their full-text index from the stored
records (``stored.index_of``), since SQLite's index keeps no text to copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

Rows = Sequence[Sequence[Any]]
Statement = tuple[str, Rows | None]
"""SQL with ``?`` parameters and the rows to run it with (None: run it once, bare)."""


@dataclass(frozen=True, slots=True)
class Table:
    """One table as it is copied: its columns and the order it is read in."""

    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...]
    numbered: bool = False
    """Keyed by one integer ``id``: read in pages after the last id, not by offset."""
    view: str = ""
    """Read and counted from this view of the table's rows instead (if any)."""

    @property
    def read_from(self) -> str:
        """The table or view its rows are read and counted from."""
        return self.view or self.name

    def select(self) -> str:
        """Rows in key order: after an id (numbered) or from an offset, up to a limit."""
        head = f"SELECT {', '.join(self.columns)} FROM {self.read_from}"
        order = ", ".join(self.key)
        if self.numbered:
            return f"{head} WHERE id > ? ORDER BY id LIMIT ?"
        return f"{head} ORDER BY {order} LIMIT ? OFFSET ?"

    def insert(self) -> str:
        """Insert rows as they are; a row copied before (a resumed copy) is left alone."""
        marks = ", ".join("?" * len(self.columns))
        return (
            f"INSERT INTO {self.name} ({', '.join(self.columns)}) VALUES ({marks})"
            " ON CONFLICT DO NOTHING"
        )


EVENTS = Table("events", ("id", "eid", "source", "codec", "doc"), ("id",), numbered=True)
CODECS = Table("codecs", ("id", "created_at", "data"), ("id",), numbered=True)
TABLES = (
    Table("checkpoints", ("source", "key", "value", "updated_at"), ("source", "key")),
    Table(
        "quarantine",
        ("id", "at", "source", "origin", "position", "reason", "raw", "raw_size"),
        ("id",),
        numbered=True,
    ),
    Table(
        "change_versions",
        ("id", "revision", "received_at", "source", "record"),
        ("id", "revision"),
    ),
    Table(
        "change_records",
        ("id", "revision", "version", "updated", "window_start", "window_end", "state", "record"),
        ("id",),
    ),
    Table(
        "alerts",
        ("id", "rule_id", "severity", "first_seen", "last_seen", "updated_at", "doc"),
        ("id",),
    ),
    Table(
        "outbox",
        (
            "id",
            "alert_id",
            "output",
            "alert",
            "state",
            "enqueued_at",
            "budget_from",
            "due_at",
            "attempts",
            "leased",
            "last_error",
            "updated_at",
        ),
        ("id",),
        numbered=True,
    ),
    Table("minute_counts", ("minute", "log_type", "count"), ("minute", "log_type")),
    Table("displaced", ("home", "eid", "id"), ("home", "eid"), view="displaced_all"),
    Table("fill_marks", ("ms", "low"), ("ms",)),
)
"""Every table but events and codecs, in the order they are copied (after the events)."""

ALL = (CODECS, EVENTS, *TABLES)

MARKER = Table("store_migration", ("id", "origin", "last_key", "copied"), ("id",), numbered=True)
"""A table in the target while a copy is under way: where it came from and how far it got."""
MARKER_TABLE = (
    f"CREATE TABLE IF NOT EXISTS {MARKER.name} (id INTEGER PRIMARY KEY, origin TEXT NOT NULL,"
    " last_key BIGINT NOT NULL, copied BIGINT NOT NULL)"
)
MARKER_SAVE = (
    f"INSERT INTO {MARKER.name} (id, origin, last_key, copied) VALUES (1, ?, ?, ?)"
    " ON CONFLICT (id) DO UPDATE SET last_key = excluded.last_key, copied = excluded.copied"
)
MARKER_DROP = f"DROP TABLE IF EXISTS {MARKER.name}"


def run(execute: Any, executemany: Any, statements: Sequence[Statement]) -> None:
    """Run ``statements`` with an engine's ``execute`` and ``executemany``."""
    for sql, rows in statements:
        if rows is None:
            execute(sql)
        elif rows:
            executemany(sql, rows)
