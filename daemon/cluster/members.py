"""The members table: who runs, who leads, how far each one's sources got.

Each member writes its row every ``heartbeat_secs``; ``auditcorr cluster
status`` reads them all, and shows a member silent for more than three
heartbeats as gone.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import psycopg
import structlog

from connectors.base import JSON
from daemon.cluster import session

log = structlog.get_logger()

GONE_AFTER_BEATS = 3


def heartbeat_secs(failover_secs: float) -> float:
    """How often members write their row: as often as followers try the lock."""
    return failover_secs / 3


def _us(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


def _at(us: int | None) -> str | None:
    return None if us is None else datetime.fromtimestamp(us / 1e6, UTC).isoformat()


async def heartbeat(
    dsn: str,
    member: str,
    every_secs: float,
    leading: Callable[[], bool],
    newest: Callable[[], dict[str, datetime | None]],
) -> None:
    """Write this member's row every ``every_secs`` until cancelled."""
    started = time.time_ns() // 1000
    while True:
        try:
            async with await session.connect(dsn) as db:
                while True:
                    await write_heartbeat(db, member, started, is_leader=leading(), newest=newest())
                    await asyncio.sleep(every_secs)
        except Exception as err:  # noqa: BLE001 - a missed heartbeat must not stop ingestion
            log.error(
                "heartbeat_failed", member=member, error=str(err), error_type=type(err).__name__
            )
            await asyncio.sleep(every_secs)


async def write_heartbeat(
    db: psycopg.AsyncConnection,
    member: str,
    started: int,
    *,
    is_leader: bool,
    newest: dict[str, datetime | None],
) -> None:
    """This member's row as it stands now: leadership, and each source's newest event
    and last checkpoint."""
    cursor = await db.execute(
        "SELECT source, max(updated_at) FROM checkpoints WHERE source = ANY(%s) GROUP BY source",
        (list(newest),),
    )
    checkpoints = {source: int(at) for source, at in await cursor.fetchall()}
    sources = {
        name: {
            "newest_event": None if at is None else at.isoformat(),
            "checkpoint_at": _at(checkpoints.get(name)),
        }
        for name, at in newest.items()
    }
    await db.execute(
        "INSERT INTO members (member, host, pid, started, last_seen, is_leader, sources)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (member) DO UPDATE SET"
        " host = excluded.host, pid = excluded.pid, started = excluded.started,"
        " last_seen = excluded.last_seen, is_leader = excluded.is_leader,"
        " sources = excluded.sources",
        (
            member,
            socket.gethostname(),
            os.getpid(),
            started,
            time.time_ns() // 1000,
            is_leader,
            orjson.dumps(sources),
        ),
    )


def listing(db: psycopg.Connection, failover_secs: float, now: datetime) -> list[JSON]:
    """Every member that ever beat, with its state (``running`` or ``gone``) and source lags."""
    gone_us = GONE_AFTER_BEATS * heartbeat_secs(failover_secs) * 1_000_000
    rows = db.execute(
        "SELECT member, host, pid, started, last_seen, is_leader, sources FROM members"
        " ORDER BY member"
    ).fetchall()
    found = []
    for member, host, pid, started, last_seen, is_leader, sources in rows:
        alive = _us(now) - last_seen <= gone_us
        found.append(
            {
                "member": member,
                "host": host,
                "pid": pid,
                "started": _at(started),
                "last_seen": _at(last_seen),
                "state": "running" if alive else "gone",
                "leader": bool(is_leader) and alive,
                "sources": {
                    name: {**info, "lag_secs": _lag(info["newest_event"], now)}
                    for name, info in orjson.loads(sources).items()
                },
            }
        )
    return found


def _lag(newest: Any, now: datetime) -> float | None:
    if newest is None:
        return None
    return round((now - datetime.fromisoformat(newest)).total_seconds(), 1)
