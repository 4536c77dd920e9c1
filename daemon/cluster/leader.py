"""The cluster's correlator: run by whichever member holds the leader lock.

A session-level advisory lock elects the leader; a member that cannot take
it tries again every third of ``failover_secs``.  The leader runs the same
correlator stage as a single daemon (``daemon/correlator/stage.py``), woken
by the members' NOTIFY on the feed: it continues from the place and window
state its predecessor committed.  A former leader that has not noticed it
lost the lock cannot commit over its successor: a round commits only from
the feed position it started at.
"""

from __future__ import annotations

import asyncio

import psycopg
import structlog

from daemon.cluster import session
from daemon.correlator.stage import CorrelatorStage
from daemon.store.pgfeed import CHANNEL

log = structlog.get_logger()

LEADER_LOCK = 0x6175646C  # "audl"
POLL_SECS = 1.0
"""Longest wait for a NOTIFY before making sure the session still lives."""


class Leader:
    """Takes the leader lock when it is free and correlates while holding it."""

    def __init__(
        self,
        dsn: str,
        member: str,
        failover_secs: float,
        correlator: CorrelatorStage | None,
    ) -> None:
        self._dsn = dsn
        self.member = member
        self._retry_secs = failover_secs / 3
        self._correlator = correlator
        self.leading = False

    async def run(self) -> None:
        """Contend for leadership until cancelled; a lost connection means contend again."""
        try:
            await self._contend()
        finally:
            if self._correlator is not None:
                await self._correlator.close()

    async def _contend(self) -> None:
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
                # another one takes it and continues from the committed state.
                log.error(
                    "leadership_lost",
                    member=self.member,
                    error=str(err),
                    error_type=type(err).__name__,
                )
                await asyncio.sleep(self._retry_secs)

    async def _lead(self, db: psycopg.AsyncConnection) -> None:
        """Correlate while the session (and with it the lock) lives."""
        correlator = self._correlator
        if correlator is None:
            while True:  # nothing to correlate: hold the lock while the session lives
                await _wait(db)
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(correlator.run(asyncio.Event()), name="correlator")
                while True:  # ends by raising when the session dies
                    await _wait(db)
                    correlator.wake()
        finally:
            await correlator.forget()


async def _try_lock(db: psycopg.AsyncConnection) -> bool:
    cursor = await db.execute("SELECT pg_try_advisory_lock(%s)", (LEADER_LOCK,))
    row = await cursor.fetchone()
    return bool(row and row[0])


async def _wait(db: psycopg.AsyncConnection) -> None:
    """Until a member NOTIFYs or the poll interval passes; raises when the session died."""
    async for _ in db.notifies(timeout=POLL_SECS, stop_after=1):
        pass
    await db.execute("SELECT 1")
