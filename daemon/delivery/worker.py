"""One output's delivery loop: lease due outbox rows, send, record the outcome.

At most ``concurrency`` sends are in flight.  A failed send is retried with
exponential backoff and full jitter (or after the peer's ``Retry-After``);
past ``max_age_secs`` the row is marked failed and kept for ``auditcorr
alerts retry``.  Quiet hours hold rows until they end, then send them as one
digest; over the rate limit, waiting rows go out as one summary.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import structlog

from connectors.base import AuthError, Notification, Output, PermanentError, ThrottledError
from connectors.config import OutputConfig
from daemon.delivery.routing import RateLimit, holds_in_quiet_hours, quiet_until
from daemon.store.base import Delivery, Store

log = structlog.get_logger()

StoreCall = Callable[..., Awaitable[Any]]
"""Runs a store method off the event loop (in the store's thread)."""

POLL_SECS = 1.0
"""Longest wait before looking for due rows when nobody woke the worker."""
GROUP_MAX = 200
"""Rows leased beyond the free send slots, so a digest or summary can take them."""
AUTH_BACKOFF_SECS = 60.0


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter: a random wait in [0, min(cap, base·2^n))."""

    base_secs: float = 1.0
    cap_secs: float = 300.0

    def delay(self, attempts: int) -> float:
        ceiling = min(self.cap_secs, self.base_secs * 2 ** min(attempts, 30))
        return random.uniform(0, ceiling)  # noqa: S311 - jitter, not crypto


@dataclass
class DeliveryStats:
    """Counters per output: logged when the output stops, ready for /metrics."""

    delivered: int = 0
    retried: int = 0
    failed: int = 0
    messages: int = 0
    grouped: int = 0


@dataclass
class _Message:
    notification: Notification
    rows: list[Delivery]
    attempts: int = field(init=False)

    def __post_init__(self) -> None:
        self.attempts = max(row.attempts for row in self.rows)


def _group_key(kind: str, rows: Sequence[Delivery]) -> str:
    """A stable key for a group: the same rows make the same key on a retry."""
    seed = kind + "\x1f" + "\x1f".join(sorted(row.alert_id for row in rows))
    return hashlib.blake2b(seed.encode(), digest_size=16).hexdigest()


def _message(kind: Literal["alert", "digest", "summary"], rows: list[Delivery]) -> _Message:
    if kind == "alert":
        (row,) = rows
        return _Message(Notification("alert", [row.alert], row.alert_id), rows)
    return _Message(Notification(kind, [row.alert for row in rows], _group_key(kind, rows)), rows)


def _was_held(row: Delivery) -> bool:
    """Held back by quiet hours or the rate limit, never tried."""
    return row.attempts == 0 and row.due_at > row.enqueued_at


class OutputWorker:
    """Delivers one output's outbox rows until cancelled."""

    def __init__(
        self,
        name: str,
        config: OutputConfig,
        output: Output,
        store: Store,
        call: StoreCall,
        *,
        zone: ZoneInfo,
        backoff: Backoff,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.name = name
        self.config = config
        self.output = output
        self.stats = DeliveryStats()
        self._store = store
        self._call = call
        self._zone = zone
        self._backoff = backoff
        self._clock = clock
        self._rate = RateLimit(config.max_messages_per_minute)
        self._busy = 0
        self._changed = asyncio.Event()
        self._log = log.bind(component_kind="output", component_type=config.type, component_id=name)

    def wake(self) -> None:
        """New rows may be due: look now instead of at the next poll."""
        self._changed.set()

    async def run(self) -> None:
        released = await self._call(self._store.release_deliveries, self.name)
        if released:
            self._log.info("deliveries_resumed", count=released)
        try:
            async with asyncio.TaskGroup() as group:
                while True:
                    self._changed.clear()
                    free = self.config.concurrency - self._busy
                    sent_any = False
                    if free > 0:
                        sent_any = await self._round(group, free)
                    if not sent_any or free <= 0:
                        await self._wait()
        finally:
            self._log.info("output_stopped", **asdict(self.stats))

    async def _wait(self) -> None:
        timeout = POLL_SECS
        if self._busy < self.config.concurrency:
            due = await self._call(self._store.next_due, self.name)
            if due is not None:
                timeout = min(timeout, max((due - self._clock()).total_seconds(), 0.0))
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
        # cancellation that arrives as the event is set, and shutdown would hang
        # (https://github.com/python/cpython/issues/86296).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._changed.wait()

    async def _round(self, group: asyncio.TaskGroup, free: int) -> bool:
        """Lease due rows and start sending them; False when none were due."""
        now = self._clock()
        rows: list[Delivery] = await self._call(
            self._store.claim_deliveries, self.name, now, free + GROUP_MAX
        )
        if not rows:
            return False
        rows = await self._expire(rows, now)
        rows = await self._hold_for_quiet_hours(rows, now)
        messages, spare = self._plan(rows, free)
        if not messages:
            due = now + timedelta(seconds=self._rate.wait_secs())
            await self._call(self._store.mark_held, [row.id for row in spare], due, now)
        elif spare:
            # No free slot for them: back to the queue as they were.
            for due in {row.due_at for row in spare}:
                ids = [row.id for row in spare if row.due_at == due]
                await self._call(self._store.mark_held, ids, due, now)
        for message in messages:
            self._busy += 1
            self._rate.take()
            group.create_task(self._deliver(message), name=f"deliver:{self.name}")
        return bool(messages)

    async def _expire(self, rows: list[Delivery], now: datetime) -> list[Delivery]:
        budget = timedelta(seconds=self.config.max_age_secs)
        expired = [row for row in rows if now - row.budget_from >= budget]
        if expired:
            last = next((row.last_error for row in expired if row.last_error), None)
            reason = f"not delivered within max_age_secs={self.config.max_age_secs:g}"
            error = f"{reason}; last error: {last}" if last else reason
            await self._call(self._store.mark_failed, [row.id for row in expired], error, now)
            self.stats.failed += len(expired)
            self._log.error("alert_delivery_given_up", count=len(expired), reason=error)
        return [row for row in rows if now - row.budget_from < budget]

    async def _hold_for_quiet_hours(self, rows: list[Delivery], now: datetime) -> list[Delivery]:
        until = quiet_until(self.config, now, self._zone)
        if until is None:
            return rows
        held = [row for row in rows if holds_in_quiet_hours(self.config, row.alert["severity"])]
        if held:
            await self._call(self._store.mark_held, [row.id for row in held], until, now)
            self._log.info("alerts_held", count=len(held), reason="quiet hours", until=str(until))
        return [row for row in rows if row not in held]

    def _plan(self, rows: list[Delivery], free: int) -> tuple[list[_Message], list[Delivery]]:
        """Messages to send now, and rows left for later.

        With no message to send (rate limit reached) the rows left wait for it;
        otherwise they are rows without a free send slot.
        """
        held = [row for row in rows if _was_held(row)]
        singles = [row for row in rows if not _was_held(row)]
        messages: list[_Message] = []
        if len(held) > 1:
            kind: Literal["digest", "summary"] = "digest" if self._after_quiet(held) else "summary"
            messages.append(_message(kind, held))
        else:
            singles = held + singles
        messages.extend(_message("alert", [row]) for row in singles)
        budget = self._rate.available()
        if len(messages) <= min(free, budget):
            return messages, []
        if budget == 0:
            return [], rows
        if budget <= free:
            # Over the rate limit: what the budget cannot carry goes as one summary.
            rest = [row for message in messages[budget - 1 :] for row in message.rows]
            last = _message("summary", rest) if len(rest) > 1 else _message("alert", rest)
            return [*messages[: budget - 1], last], []
        return messages[:free], [row for message in messages[free:] for row in message.rows]

    def _after_quiet(self, rows: list[Delivery]) -> bool:
        span = self.config.quiet_span()
        if span is None:
            return False
        local = rows[0].due_at.astimezone(self._zone)
        return local.hour * 60 + local.minute == span[1]

    async def _deliver(self, message: _Message) -> None:
        ids = [row.id for row in message.rows]
        notification = message.notification
        try:
            async with asyncio.timeout(self.config.timeout_secs):
                await self.output.send(notification)
        except PermanentError as err:
            now = self._clock()
            await self._call(self._store.mark_failed, ids, _describe(err), now)
            self.stats.failed += len(ids)
            self._log.error("alert_delivery_rejected", count=len(ids), error=_describe(err))
        except Exception as err:  # noqa: BLE001 - every other failure is retried
            await self._retry(message, err)
        else:
            await self._call(self._store.mark_sent, ids, self._clock())
            self.stats.delivered += len(ids)
            self.stats.messages += 1
            self.stats.grouped += len(ids) if notification.kind != "alert" else 0
            self._log.info(
                "alert_delivered", kind=notification.kind, count=len(ids), key=notification.key
            )
        finally:
            self._busy -= 1
            self._changed.set()

    async def _retry(self, message: _Message, err: Exception) -> None:
        if isinstance(err, ThrottledError) and err.retry_after_secs is not None:
            wait = err.retry_after_secs
        elif isinstance(err, AuthError):
            wait = max(AUTH_BACKOFF_SECS, self._backoff.delay(message.attempts))
        else:
            wait = self._backoff.delay(message.attempts)
        now = self._clock()
        ids = [row.id for row in message.rows]
        await self._call(
            self._store.mark_retry, ids, now + timedelta(seconds=wait), _describe(err), now
        )
        self.stats.retried += len(ids)
        event = "alert_delivery_refused" if isinstance(err, AuthError) else "alert_delivery_failed"
        self._log.warning(
            event,
            count=len(ids),
            error=_describe(err),
            error_type=type(err).__name__,
            attempt=message.attempts + 1,
            retry_in_secs=round(wait, 2),
        )


def _describe(err: BaseException) -> str:
    if isinstance(err, TimeoutError):
        return "timed out"
    return str(err) or type(err).__name__
