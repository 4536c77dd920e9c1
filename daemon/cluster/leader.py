"""The cluster's correlator: run by whichever member holds the leader lock.

A session-level advisory lock elects the leader; a member that cannot take
it tries again every third of ``failover_secs``.  The leader restores the
correlation state from the timeline, then reads the feed (``pgfeed``) from the
place the previous leader stored, woken by NOTIFY or a short poll, and writes
each round's alerts, their outbox rows and its new place in one transaction.
A leader that dies mid-round leaves the place where its last commit put it,
so its successor replays at most one round: alert ids are deterministic and
alerts are upserted, so a replay changes nothing twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import psycopg
import structlog

from daemon.alert import Alert
from daemon.cluster import entries, session
from daemon.rules.engine import RuleEngine
from daemon.store.base import Routes
from daemon.store.pgfeed import CHANNEL
from daemon.store.postgres import PostgresStore

log = structlog.get_logger()

LEADER_LOCK = 0x6175646C  # "audl"
FEED_ROWS = 500
"""Feed rows correlated and committed together at most."""
POLL_SECS = 1.0
"""Longest wait for a NOTIFY before looking at the feed anyway."""
PRUNE_EVERY = 100
"""Rounds between two prunings of the feed."""


class Leader:
    """Takes the leader lock when it is free and correlates while holding it."""

    def __init__(
        self,
        dsn: str,
        member: str,
        failover_secs: float,
        *,
        open_store: Callable[[], PostgresStore],
        rules_for: Callable[[PostgresStore], RuleEngine | None],
        routes: Callable[[], Routes],
        on_alerts: Callable[[list[Alert]], None],
    ) -> None:
        self._dsn = dsn
        self.member = member
        self._retry_secs = failover_secs / 3
        self._open_store = open_store
        self._rules_for = rules_for
        self._routes = routes
        self._on_alerts = on_alerts
        self.leading = False

    async def run(self) -> None:
        """Contend for leadership until cancelled; a lost connection means contend again."""
        while True:
            try:
                async with await session.connect(self._dsn) as db:
                    locked = await _try_lock(db)
                    while not locked:
                        await asyncio.sleep(self._retry_secs)
                        locked = await _try_lock(db)
                    await db.execute(f"LISTEN {CHANNEL}")
                    self.leading = True
                    log.info("leadership_gained", member=self.member)
                    try:
                        await self._lead(db)
                    finally:
                        self.leading = False
            except Exception as err:  # noqa: BLE001 - a failed round must not stop ingestion
                # The session is closed, so the lock is free: this member or
                # another one takes it and rebuilds the state from the store.
                log.error(
                    "leadership_lost",
                    member=self.member,
                    error=str(err),
                    error_type=type(err).__name__,
                )
                await asyncio.sleep(self._retry_secs)

    async def _lead(self, db: psycopg.AsyncConnection) -> None:
        pool = ThreadPoolExecutor(1, thread_name_prefix="correlator")
        loop = asyncio.get_running_loop()

        def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            return loop.run_in_executor(pool, partial(fn, *args, **kwargs))

        store: PostgresStore | None = None
        try:
            store = await call(self._open_store)
            engine = await call(self._rules_for, store)
            if engine is None:
                while True:  # nothing to correlate: hold the lock while the session lives
                    await _wait(db)
            position = await call(store.feed_position)
            await self._commit(call, store, await call(engine.rebuild, store), position)
            rounds = 0
            while True:
                rows = await call(store.feed_after, position, FEED_ROWS)
                if rows:
                    position = rows[-1][0]
                    alerts = await call(_correlate, engine, rows)
                    await self._commit(call, store, alerts, position)
                    rounds += 1
                    if rounds % PRUNE_EVERY == 0:
                        await call(store.prune_feed)
                if len(rows) < FEED_ROWS:
                    await _wait(db)
        finally:
            if store is not None:
                await call(store.close)
            pool.shutdown(wait=False)

    async def _commit(
        self, call: Callable[..., Any], store: PostgresStore, alerts: list[Alert], position: int
    ) -> None:
        await call(store.write, [], alerts, self._routes(), position=position)
        if alerts:
            for alert in alerts:
                log.info("alert", id=alert.id, rule=alert.rule_id, count=alert.count)
            self._on_alerts(alerts)


async def _try_lock(db: psycopg.AsyncConnection) -> bool:
    cursor = await db.execute("SELECT pg_try_advisory_lock(%s)", (LEADER_LOCK,))
    row = await cursor.fetchone()
    return bool(row and row[0])


async def _wait(db: psycopg.AsyncConnection) -> None:
    """Until a member NOTIFYs or the poll interval passes; raises when the session died."""
    async for _ in db.notifies(timeout=POLL_SECS, stop_after=1):
        pass
    await db.execute("SELECT 1")


def _correlate(engine: RuleEngine, rows: list[tuple[int, bytes]]) -> list[Alert]:
    """The alerts a run of feed rows raises or updates, each once, latest state."""
    touched: dict[str, Alert] = {}
    for _, entry in rows:
        hits, changes = entries.decode(entry)
        for alert in engine.correlate(hits, changes):
            touched[alert.id] = alert
    return list(touched.values())
