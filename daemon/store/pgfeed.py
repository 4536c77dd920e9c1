"""The commit-order feed in PostgreSQL: what each write gives the correlator.

Every write that stored events with detection hits appends its rows at the
end of its transaction, under one transaction-scoped advisory lock, so rows
get their sequence numbers in commit order across all cluster members: a
reader that has seen row N has seen every write committed before it.  The
correlator keeps its place in ``cluster_state``, its state in
``correlator_state`` and the hits its windows hold in ``held_hits``, all
written in the transaction that stores the alerts the rows raised.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence

import psycopg

from daemon.store.units import FeedMovedError, Round

FEED_LOCK = 0x61756466  # "audf": held from a row's insert to its commit
CHANNEL = "auditcorr_feed"
"""NOTIFY channel that wakes the correlator."""
_PLACE = "correlator"


def append(db: psycopg.Connection, entries: Sequence[bytes], member: str) -> None:
    """Add a write's feed rows, last in the caller's open transaction."""
    db.execute("SELECT pg_advisory_xact_lock(%s)", (FEED_LOCK,))
    at = time.time_ns() // 1000
    with db.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO ingest_feed (member, at, entry) VALUES (%s, %s, %s)",
            [(member, at, entry) for entry in entries],
        )
    db.execute(f"NOTIFY {CHANNEL}")


def after(db: psycopg.Connection, position: int, limit: int) -> list[tuple[int, bytes]]:
    """Rows past ``position``, oldest first."""
    rows = db.execute(
        "SELECT seq, entry FROM ingest_feed WHERE seq > %s ORDER BY seq LIMIT %s",
        (position, limit),
    ).fetchall()
    return [(int(seq), bytes(entry)) for seq, entry in rows]


def state(db: psycopg.Connection) -> tuple[int, dict[str, bytes]]:
    """The correlator's place and state rows, read in one snapshot."""
    with db.transaction():
        db.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        row = db.execute("SELECT position FROM cluster_state WHERE name = %s", (_PLACE,)).fetchone()
        rows = db.execute("SELECT key, value FROM correlator_state").fetchall()
    return (int(row[0]) if row else 0), {key: bytes(value) for key, value in rows}


def move(
    db: psycopg.Connection, expected: int, position: int, changed: Mapping[str, bytes | None]
) -> None:
    """Move the correlator's place from ``expected`` to ``position`` and write its changed
    state, inside the caller's transaction; ``FeedMovedError`` when another correlator
    (a former leader that has not noticed yet) moved the place meanwhile."""
    db.execute(
        "INSERT INTO cluster_state (name, position) VALUES (%s, 0) ON CONFLICT DO NOTHING",
        (_PLACE,),
    )
    row = db.execute(
        "SELECT position FROM cluster_state WHERE name = %s FOR UPDATE", (_PLACE,)
    ).fetchone()
    if row is None or int(row[0]) != expected:
        raise FeedMovedError("the correlator's feed position moved on")
    db.execute("UPDATE cluster_state SET position = %s WHERE name = %s", (position, _PLACE))
    written = [(key, value) for key, value in changed.items() if value is not None]
    gone = [key for key, value in changed.items() if value is None]
    with db.cursor() as cursor:
        if written:
            cursor.executemany(
                "INSERT INTO correlator_state (key, value) VALUES (%s, %s)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                written,
            )
        if gone:
            cursor.execute("DELETE FROM correlator_state WHERE key = ANY(%s)", (gone,))


def held(
    db: psycopg.Connection, groups: Collection[tuple[str, str]]
) -> dict[tuple[str, str], list[bytes]]:
    """The hits the groups hold, in one query."""
    found: dict[tuple[str, str], list[bytes]] = {}
    rows = db.execute(
        "SELECT h.correlation, h.grp, h.value FROM held_hits AS h"
        " JOIN unnest(%s::text[], %s::text[]) AS k (correlation, grp) USING (correlation, grp)",
        ([key[0] for key in groups], [key[1] for key in groups]),
    )
    for correlation, group, value in rows:
        found.setdefault((correlation, group), []).append(bytes(value))
    return found


def hold(db: psycopg.Connection, done: Round) -> None:
    """Write what the round's groups hold or let go, inside the caller's transaction."""
    written = [row for row in done.held if row[4] is not None]
    gone = [row[:3] for row in done.held if row[4] is None]
    if written:
        db.execute(
            "INSERT INTO held_hits (correlation, grp, hit, at, value)"
            " SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::bigint[], %s::bytea[])"
            " ON CONFLICT (correlation, grp, hit) DO UPDATE"
            " SET at = excluded.at, value = excluded.value",
            tuple(list(column) for column in zip(*written, strict=True)),
        )
    if gone:
        db.execute(
            "DELETE FROM held_hits WHERE (correlation, grp, hit) IN"
            " (SELECT * FROM unnest(%s::text[], %s::text[], %s::text[]))",
            tuple(list(column) for column in zip(*gone, strict=True)),
        )
    with db.cursor() as cursor:
        if done.expired:
            cursor.executemany(
                "DELETE FROM held_hits WHERE correlation = %s AND at < %s",
                list(done.expired.items()),
            )
    if done.correlations is not None:
        db.execute(
            "DELETE FROM held_hits WHERE NOT (correlation = ANY(%s))", (list(done.correlations),)
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
