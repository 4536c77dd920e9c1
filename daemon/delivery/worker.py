"""One output's sends: rows the delivery service leased go out, outcomes go back.

The worker never touches the store: the service leases rows for every output
and records what became of them in one transaction per round.  At most
``concurrency`` sends are in flight.  A failed send is retried with
exponential backoff and full jitter (or after the peer's ``Retry-After``);
past ``max_age_secs`` the row is marked failed and kept for ``auditcorr
alerts retry``.  Quiet hours hold rows until they end, then send them as one
digest; over the rate limit, waiting rows go out as one summary.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import structlog

from connectors.base import AuthError, Notification, Output, PermanentError, ThrottledError
from connectors.config import OutputConfig
from daemon.routing import RateLimit, holds_in_quiet_hours, quiet_until
from daemon.store.base import Delivery, Outcome

log = structlog.get_logger()

Record = Callable[[Outcome], None]
"""Hands an outcome to the service, which stores it with its next round."""

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


def _ids(rows: Sequence[Delivery]) -> tuple[int, ...]:
    return tuple(row.id for row in rows)


class OutputWorker:
    """Sends one output's leased rows until cancelled."""

    def __init__(
        self,
        name: str,
        config: OutputConfig,
        output: Output,
        record: Record,
        *,
        zone: ZoneInfo,
        backoff: Backoff,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.name = name
        self.config = config
        self.output = output
        self.stats = DeliveryStats()
        self._record = record
        self._zone = zone
        self._backoff = backoff
        self._clock = clock
        self._rate = RateLimit(config.max_messages_per_minute)
        self._busy = 0
        self._group: asyncio.TaskGroup | None = None
        self._log = log.bind(component_kind="output", component_type=config.type, component_id=name)
        self._context = contextvars.copy_context()
        """The supervisor's context (its component fields): ``take`` is called by the
        dispatcher, so the sends it starts get a copy of this one, not the dispatcher's."""

    @property
    def free(self) -> int:
        """Send slots open now (none before ``run`` started)."""
        return self.config.concurrency - self._busy if self._group is not None else 0

    async def run(self) -> None:
        """Hold the sends ``take`` starts; cancellation stops them (their rows stay pending)."""
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                await asyncio.get_running_loop().create_future()
        finally:
            self._group = None
            self._log.info("output_stopped", **asdict(self.stats))

    def take(self, rows: list[Delivery], now: datetime) -> None:
        """Start sending leased ``rows``; what cannot go now is handed back as held."""
        group = self._group
        assert group is not None, "take() before run()"
        rows = self._expire(rows, now)
        rows = self._hold_for_quiet_hours(rows, now)
        if not rows:
            return
        messages, spare = self._plan(rows, self.free)
        if not messages:
            due = now + timedelta(seconds=self._rate.wait_secs())
            self._record(Outcome(_ids(spare), "held", now, due))
        else:
            # No free slot for them: back to the queue as they were.
            for due in {row.due_at for row in spare}:
                self._record(Outcome(_ids([r for r in spare if r.due_at == due]), "held", now, due))
        for message in messages:
            self._busy += 1
            self._rate.take()
            group.create_task(
                self._deliver(message), name=f"deliver:{self.name}", context=self._context.copy()
            )

    def _expire(self, rows: list[Delivery], now: datetime) -> list[Delivery]:
        budget = timedelta(seconds=self.config.max_age_secs)
        expired = [row for row in rows if now - row.budget_from >= budget]
        if expired:
            last = next((row.last_error for row in expired if row.last_error), None)
            reason = f"not delivered within max_age_secs={self.config.max_age_secs:g}"
            error = f"{reason}; last error: {last}" if last else reason
            self._record(Outcome(_ids(expired), "failed", now, error=error))
            self.stats.failed += len(expired)
            self._log.error("alert_delivery_given_up", count=len(expired), reason=error)
        return [row for row in rows if now - row.budget_from < budget]

    def _hold_for_quiet_hours(self, rows: list[Delivery], now: datetime) -> list[Delivery]:
        until = quiet_until(self.config, now, self._zone)
        if until is None:
            return rows
        held = [row for row in rows if holds_in_quiet_hours(self.config, row.alert["severity"])]
        if held:
            self._record(Outcome(_ids(held), "held", now, until))
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
        ids = _ids(message.rows)
        notification = message.notification
        try:
            async with asyncio.timeout(self.config.timeout_secs):
                await self.output.send(notification)
        except PermanentError as err:
            self._record(Outcome(ids, "failed", self._clock(), error=_describe(err)))
            self.stats.failed += len(ids)
            self._log.error("alert_delivery_rejected", count=len(ids), error=_describe(err))
        except Exception as err:  # noqa: BLE001 - every other failure is retried
            self._retry(message, err)
        else:
            self._record(Outcome(ids, "sent", self._clock()))
            self.stats.delivered += len(ids)
            self.stats.messages += 1
            self.stats.grouped += len(ids) if notification.kind != "alert" else 0
            self._log.info(
                "alert_delivered", kind=notification.kind, count=len(ids), key=notification.key
            )
        finally:
            self._busy -= 1

    def _retry(self, message: _Message, err: Exception) -> None:
        if isinstance(err, ThrottledError) and err.retry_after_secs is not None:
            wait = err.retry_after_secs
        elif isinstance(err, AuthError):
            wait = max(AUTH_BACKOFF_SECS, self._backoff.delay(message.attempts))
        else:
            wait = self._backoff.delay(message.attempts)
        now = self._clock()
        ids = _ids(message.rows)
        self._record(Outcome(ids, "retry", now, now + timedelta(seconds=wait), _describe(err)))
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
