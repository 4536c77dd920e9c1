"""The correlator stage: the store's feed, read in commit order, turned into alerts durably.

    writer --feed rows, in the events' transaction--> correlator --alerts, outbox--> delivery

The writer commits the detection hits of the events it stored for the first
time as feed rows of at most 1,000 items.  The correlator reads rows past its stored
position and commits, in one transaction: its new position, the window state
the round changed, the alerts raised or updated, their timeline entries and
their outbox rows.  A restart, a crash or a cluster failover therefore
continues exactly where the last commit left off: no event is read again, no
window is lost, no alert is raised twice.  A round that fails to commit is
forgotten and the state loaded again from the store; a second correlator on
the same store (a former cluster leader that has not noticed yet, a backfill
beside a running daemon) makes the other's commit fail the same way.

It runs in its own thread with its own store connection, beside the writer.
Live, each write wakes it, and it looks at the feed every ``POLL_SECS``
besides (a cluster leader is also woken by the members' NOTIFY); a backfill
correlates once every source is read, in large rounds in event-time order.
SQLite and PostgreSQL run the same code; in a cluster the member holding the
leader lock runs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, Final, TypeVar

import orjson
import structlog

from daemon.alert import Alert
from daemon.correlator.entries import alert_entries
from daemon.correlator.reviews import ClosingReviews
from daemon.gcpause import cyclic_gc_paused
from daemon.routing import Routes, routed
from daemon.rules.engine import MAX_BACKFILL_HITS, RuleEngine
from daemon.rules.hits import Hit
from daemon.store.base import CorrelationLog
from daemon.store.units import FeedMovedError, Round

log = structlog.get_logger()

FEED_ROWS: Final = 8
"""Feed rows read in one query (a row holds up to 1,000 hits)."""
ROUND_ROWS: Final = 500
ROUND_HITS: Final = 2_000
"""A live round ends at this many feed rows or hits, whichever comes first: rounds
stay short transactions under a flood (well under a second), and a stopping daemon
waits for the one under way at most."""
POLL_SECS: Final = 1.0
"""Longest wait for a wake-up before looking at the feed anyway."""
PRUNE_EVERY: Final = 100
"""Rounds between two prunings of the feed."""
RETRY_MAX_SECS: Final = 30.0
STOP_SECS: Final = 1.0
"""How long a stopping daemon goes on correlating what its last writes fed; the rest
is correlated after the next start (the feed is durable)."""
BACKFILL_ATTEMPTS: Final = 3
"""Failed rounds in a row after which a backfill gives up correlating (and says so)."""
_EVERYTHING: Final = 1 << 62

T = TypeVar("T")
JSON = dict[str, Any]


@dataclass(slots=True)
class _Correlating:
    """The correlator's connection, rules and place: used in the stage's thread only."""

    log: CorrelationLog
    engine: RuleEngine
    reviews: ClosingReviews
    position: int
    rounds: int = 0

    @classmethod
    def load(
        cls,
        open_log: Callable[[], CorrelationLog],
        engine_for: Callable[[CorrelationLog], RuleEngine],
    ) -> _Correlating:
        """Open the store and load the committed place and state."""
        store = open_log()
        try:
            engine = engine_for(store)
            engine.correlator.windows.durable(store.held_hits)
            position, state = store.correlation_state()
            engine.correlator.restore(state)
            reviews = ClosingReviews(engine.approvals.identities)
            reviews.restore(state)
        except BaseException:
            store.close()
            raise
        return cls(store, engine, reviews, position)

    def round(self, routes: Routes, *, rows: int, hits: int) -> tuple[list[Alert], bool]:
        """Correlate up to ``rows`` feed rows or ``hits`` hits (whichever comes first) and
        commit; returns the alerts and whether the feed holds more.

        The cyclic garbage collector is paused meanwhile: a round makes many small
        objects and no cycles, and the collector would walk the whole window state
        again and again (see daemon/gcpause.py)."""
        with cyclic_gc_paused():
            return self._round(routes, rows=rows, hits=hits)

    def _round(self, routes: Routes, *, rows: int, hits: int) -> tuple[list[Alert], bool]:
        taken: list[Hit] = []
        records: list[JSON] = []
        position = self.position
        read = 0
        more = True
        while more and read < rows and len(taken) < hits:
            wanted = min(FEED_ROWS, rows - read)
            page = self.log.feed_after(position, wanted)
            more = len(page) == wanted
            for seq, entry in page:
                _split(seq, entry, taken, records)
                position = seq
                read += 1
                if len(taken) >= hits:
                    more = True  # the rest of the page waits for the next round
                    break
        alerts = self.engine.correlate(taken) if taken else []
        self.reviews.note(self.log, records)
        alerts += self.reviews.due(self.log, datetime.now(UTC))
        if position == self.position and not alerts:
            return [], False
        correlator = self.engine.correlator
        held, expired, correlations = correlator.windows.changes()
        self.log.commit_round(
            Round(
                after=self.position,
                position=position,
                state=correlator.changes() | self.reviews.changes(),
                held=held,
                expired=expired,
                correlations=correlations,
                alerts=alerts,
                entries=alert_entries(alerts),
                deliveries=routed(alerts, routes),
            )
        )
        self.position = position
        self.rounds += 1
        if self.rounds % PRUNE_EVERY == 0:
            self.log.prune_feed()
        return alerts, more


def _split(seq: int, entry: bytes, hits: list[Hit], records: list[JSON]) -> None:
    """Add one feed row's hits to ``hits`` and its change record versions to ``records``.
    A row that cannot be read is logged and passed over (the writer made it, so this
    is a bug, and it must not stop correlation)."""
    try:
        items = orjson.loads(entry)
        found = [Hit.from_json(item) for item in items if "change" not in item]
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        log.error("feed_row_unreadable", seq=seq, error=str(err), error_type=type(err).__name__)
        return
    hits.extend(found)
    records.extend(item["change"] for item in items if "change" in item)


class CorrelatorStage:
    """Runs the correlator in its own thread; see the module docstring."""

    def __init__(
        self,
        open_log: Callable[[], CorrelationLog],
        engine_for: Callable[[CorrelationLog], RuleEngine],
        routes: Callable[[], Routes],
        on_alerts: Callable[[list[Alert]], None],
    ) -> None:
        self._open_log = open_log
        self._engine_for = engine_for
        self._routes = routes
        self._on_alerts = on_alerts
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="correlator")
        self._state: _Correlating | None = None
        self._wake = asyncio.Event()
        self.ready = asyncio.Event()
        """Set once the committed state is loaded and correlation runs."""

    def wake(self) -> None:
        """A write fed new rows: look at the feed now."""
        self._wake.set()

    async def run(self, stopping: asyncio.Event) -> None:
        """Correlate live until ``stopping`` is set, then catch up for ``STOP_SECS`` at most."""
        delay = 1.0
        while not stopping.is_set():
            more, failed = await self._round(rows=ROUND_ROWS, hits=ROUND_HITS)
            if failed:
                await _wait_for(stopping, delay)
                delay = min(delay * 2, RETRY_MAX_SECS)
                continue
            delay = 1.0
            if not more:
                self._wake.clear()
                await _wait_any(self._wake, stopping, POLL_SECS)
        deadline = time.monotonic() + STOP_SECS
        more = True
        while more and time.monotonic() < deadline:
            more, failed = await self._round(rows=ROUND_ROWS, hits=ROUND_HITS)
            more = more and not failed

    async def drain(self) -> bool:
        """Correlate everything the feed holds, in backfill rounds (each in event-time
        order); False when rounds kept failing (the feed keeps the rest for later)."""
        failures = 0
        more = True
        while more:
            more, failed = await self._round(rows=_EVERYTHING, hits=MAX_BACKFILL_HITS)
            if failed:
                failures += 1
                if failures >= BACKFILL_ATTEMPTS:
                    return False
                more = True
                await asyncio.sleep(failures)
        return True

    async def forget(self) -> None:
        """Drop the loaded state and connection (a former cluster leader): the next
        round loads what is committed then."""
        await self._call(self._forget)

    async def close(self) -> None:
        await self.forget()
        self._thread.shutdown(wait=True)

    async def _round(self, *, rows: int, hits: int) -> tuple[bool, bool]:
        """One round, loading the state first when needed: (more in the feed, failed)."""
        try:
            if self._state is None:
                self._state = await self._call(_Correlating.load, self._open_log, self._engine_for)
                self.ready.set()
                log.info("correlator_started", position=self._state.position)
            state = self._state
            alerts, more = await self._call(
                partial(state.round, self._routes(), rows=rows, hits=hits)
            )
        except Exception as err:  # noqa: BLE001 - a failed round is forgotten and tried again
            moved = isinstance(err, FeedMovedError)
            (log.warning if moved else log.error)(
                "correlation_round_failed", error=str(err), error_type=type(err).__name__
            )
            await self._call(self._forget)
            return True, True
        if alerts:
            for alert in alerts:
                log.info("alert", id=alert.id, rule=alert.rule_id, count=alert.count)
            self._on_alerts(alerts)
        return more, False

    def _forget(self) -> None:
        """Drop the in-memory state (it is loaded again from the store)."""
        state, self._state = self._state, None
        if state is not None:
            with contextlib.suppress(Exception):
                state.log.close()

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)


async def _wait_for(event: asyncio.Event, secs: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), secs)


async def _wait_any(first: asyncio.Event, second: asyncio.Event, secs: float) -> None:
    waits = [asyncio.ensure_future(first.wait()), asyncio.ensure_future(second.wait())]
    try:
        await asyncio.wait(waits, timeout=secs, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()
