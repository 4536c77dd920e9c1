"""The commit-order feed of a cluster: what each member's write gives the correlator.

Every member appends one row at the end of each write transaction that
stored hits or change records, under one transaction-scoped advisory lock,
so rows get their sequence numbers in commit order across all members: a
reader that has seen row N has seen every write committed before it.  The
correlating member keeps its place in ``cluster_state``, written in the
transaction that stores the alerts the rows raised.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import psycopg

from daemon.cluster import entries
from daemon.process import Processed

FEED_LOCK = 0x61756466  # "audf": held from a row's insert to its commit
CHANNEL = "auditcorr_feed"
"""NOTIFY channel that wakes the correlator."""
_PLACE = "correlator"


def append(db: psycopg.Connection, batches: Sequence[Processed], member: str) -> None:
    """Add the write's entry, last in the caller's open transaction."""
    entry = entries.encode(batches)
    if entry is None:
        return
    db.execute("SELECT pg_advisory_xact_lock(%s)", (FEED_LOCK,))
    db.execute(
        "INSERT INTO ingest_feed (member, at, entry) VALUES (%s, %s, %s)",
        (member, time.time_ns() // 1000, entry),
    )
    db.execute(f"NOTIFY {CHANNEL}")


def after(db: psycopg.Connection, position: int, limit: int) -> list[tuple[int, bytes]]:
    """Rows past ``position``, oldest first."""
    rows = db.execute(
        "SELECT seq, entry FROM ingest_feed WHERE seq > %s ORDER BY seq LIMIT %s",
        (position, limit),
    ).fetchall()
    return [(int(seq), bytes(entry)) for seq, entry in rows]


def position(db: psycopg.Connection) -> int:
    """The last row the correlator has taken into account (0: none)."""
    row = db.execute("SELECT position FROM cluster_state WHERE name = %s", (_PLACE,)).fetchone()
    return int(row[0]) if row else 0


def save_position(db: psycopg.Connection, seq: int) -> None:
    """Move the correlator's place forward, inside the caller's transaction.

    Never back: a leader that lost its lock and has not noticed yet cannot
    undo its successor's progress."""
    db.execute(
        "INSERT INTO cluster_state (name, position) VALUES (%s, %s) ON CONFLICT (name)"
        " DO UPDATE SET position = greatest(cluster_state.position, excluded.position)",
        (_PLACE, seq),
    )


def prune(db: psycopg.Connection) -> int:
    """Drop the rows the correlator is done with."""
    return max(
        db.execute(
            "DELETE FROM ingest_feed WHERE seq <= (SELECT coalesce(max(position), 0)"
            " FROM cluster_state WHERE name = %s)",
            (_PLACE,),
        ).rowcount,
        0,
    )
