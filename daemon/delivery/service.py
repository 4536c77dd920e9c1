"""Runs one delivery worker per configured output, and the rounds that feed them.

A round is one store transaction: it records what became of the sends since
the last round and leases the due rows of every output with free send slots.
Rounds run when woken (alerts committed, a send finished) or when the next
row falls due, so the outbox costs one write per round, not two per message.
The service has its own store connection and thread, so a long timeline write
does not hold up deliveries (SQLite's WAL lets the two take turns).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import structlog

from connectors import registry
from connectors.base import Output, OutputContext
from connectors.config import ConnectorConfig, OutputConfig
from daemon.delivery.worker import GROUP_MAX, Backoff, OutputWorker
from daemon.store.base import Delivery, DeliveryRound, Outcome, Store

log = structlog.get_logger()

RESTART_CAP_SECS = 60.0
POLL_SECS = 1.0
"""Longest wait between rounds when nobody woke the service."""


def _outputs(configs: Mapping[str, ConnectorConfig]) -> dict[str, OutputConfig]:
    return {name: config for name, config in configs.items() if isinstance(config, OutputConfig)}


class DeliveryService:
    """Delivers the outbox of ``store`` to ``outputs`` until cancelled."""

    def __init__(
        self,
        store: Store,
        outputs: Mapping[str, ConnectorConfig],
        *,
        timezone: str = "UTC",
        backoff: Backoff | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.outputs = _outputs(outputs)
        self.timezone = timezone
        self.backoff = backoff or Backoff()
        self.clock = clock
        self.workers: dict[str, OutputWorker] = {}
        self._outcomes: list[Outcome] = []
        self._changed = asyncio.Event()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._group: asyncio.TaskGroup | None = None
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="outbox")

    async def call(self, fn: Any, *args: Any) -> Any:
        """Run a store call in the service's store thread."""
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    def wake(self) -> None:
        """Alerts were queued: look for due rows now instead of at the next poll."""
        self._changed.set()

    def _record(self, outcome: Outcome) -> None:
        self._outcomes.append(outcome)
        self._changed.set()

    async def run(self) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                group.create_task(self._rounds(), name="outbox")
                for name in self.outputs:
                    self._start(name)
        finally:
            self._group = None
            try:
                if self._outcomes:
                    # Sends that landed are not sent again after a restart.
                    outcomes, self._outcomes = self._outcomes, []
                    await self.call(self.store.delivery_round, outcomes, {}, self.clock())
            finally:
                self._thread.shutdown(wait=True)

    def reconfigure(self, outputs: Mapping[str, ConnectorConfig]) -> None:
        """Restart the outputs whose config changed; start new ones, stop removed ones.

        A removed output's pending rows stay in the outbox (``auditcorr alerts
        --pending`` lists them) and go out if the output comes back.
        """
        fresh = _outputs(outputs)
        stopped: dict[str, asyncio.Task[None]] = {}
        for name in list(self._tasks):
            if fresh.get(name) != self.outputs.get(name):
                stopped[name] = task = self._tasks.pop(name)
                task.cancel()
                self.workers.pop(name, None)
                change = "changed" if name in fresh else "removed"
                log.info("output_config_changed", output=name, change=change)
        self.outputs = fresh
        if self._group is None:
            return
        for name, task in stopped.items():
            if name not in fresh:
                self._group.create_task(self._retire(name, task), name=f"retire:{name}")
        for name in fresh:
            if name not in self._tasks:
                self._start(name, after=stopped.get(name))

    async def drain(self, timeout_secs: float) -> int:
        """Deliver until nothing is pending or ``timeout_secs`` passed; returns what is left."""
        deadline = time.monotonic() + timeout_secs
        runner = asyncio.create_task(self.run(), name="delivery")
        try:
            while True:
                left = await self.pending()
                if left == 0 or time.monotonic() >= deadline or runner.done():
                    return left
                await asyncio.sleep(min(0.2, max(deadline - time.monotonic(), 0)))
        finally:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)

    async def pending(self) -> int:
        counts = await self.call(self.store.delivery_counts)
        return sum(
            n
            for (output, state), n in counts.items()
            if state == "pending" and output in self.outputs
        )

    # -- rounds ----------------------------------------------------------------

    async def _rounds(self) -> None:
        """Record outcomes and lease due rows, one transaction per round, until cancelled."""
        while True:
            self._changed.clear()
            workers = dict(self.workers)
            wants = {name: w.free + GROUP_MAX for name, w in workers.items() if w.free > 0}
            outcomes, self._outcomes = self._outcomes, []
            now = self.clock()
            try:
                done: DeliveryRound = await self.call(
                    self.store.delivery_round, outcomes, wants, now
                )
            except Exception as err:  # noqa: BLE001 - a busy or full store is retried
                self._outcomes[:0] = outcomes
                log.error("outbox_round_failed", error=str(err), error_type=type(err).__name__)
                await asyncio.sleep(POLL_SECS)
                continue
            for name, rows in done.leased.items():
                worker = self.workers.get(name)
                if worker is workers[name]:
                    worker.take(rows, now)
                else:
                    # Stopped or restarted meanwhile: the rows wait for the next worker.
                    self._give_back(rows, now)
            if done.leased or self._outcomes:
                continue
            timeout = POLL_SECS
            if done.next_due is not None:
                timeout = min(timeout, max((done.next_due - self.clock()).total_seconds(), 0.0))
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
            # cancellation that arrives as the event is set, and shutdown would hang
            # (https://github.com/python/cpython/issues/86296).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._changed.wait()

    def _give_back(self, rows: list[Delivery], now: datetime) -> None:
        for due in {row.due_at for row in rows}:
            ids = tuple(row.id for row in rows if row.due_at == due)
            self._outcomes.append(Outcome(ids, "held", now, due))

    # -- workers ---------------------------------------------------------------

    def _start(self, name: str, after: asyncio.Task[None] | None = None) -> None:
        assert self._group is not None
        task = self._group.create_task(self._supervise(name, after), name=f"output:{name}")
        self._tasks[name] = task

    async def _supervise(self, name: str, after: asyncio.Task[None] | None) -> None:
        """Run one output's worker; restart it with jittered backoff when it fails.

        The component fields are bound as context variables, so every line the
        output logs (and every send its worker starts) carries them too."""
        if after is not None:
            # The old worker's leases are lifted only once it stopped sending.
            await asyncio.wait([after])
        config = self.outputs[name]
        with structlog.contextvars.bound_contextvars(
            component_kind="output", component_type=config.type, component_id=name
        ):
            await self._run_output(name, config)

    async def _run_output(self, name: str, config: OutputConfig) -> None:
        delay = 1.0
        while True:
            context = OutputContext(name, self.timezone)
            output: Output = registry.load(registry.OUTPUTS, config.type)(config, context)
            try:
                released = await self.call(self.store.release_deliveries, name)
                if released:
                    log.info("deliveries_resumed", count=released)
                async with output:
                    worker = OutputWorker(
                        name,
                        config,
                        output,
                        self._record,
                        zone=ZoneInfo(self.timezone),
                        backoff=self.backoff,
                        clock=self.clock,
                    )
                    self.workers[name] = worker
                    log.info("output_started")
                    self._changed.set()
                    try:
                        await worker.run()
                    finally:
                        if self.workers.get(name) is worker:
                            del self.workers[name]
            except Exception as err:  # noqa: BLE001 - one failing output must not stop the others
                log.error("output_failed", error=str(err), error_type=type(err).__name__)
                await asyncio.sleep(random.uniform(0, delay))  # noqa: S311 - jitter, not crypto
                delay = min(delay * 2, RESTART_CAP_SECS)

    async def _retire(self, name: str, task: asyncio.Task[None]) -> None:
        """After a removed output stopped: lift its leases and say what it left pending."""
        await asyncio.wait([task])
        await self.call(self.store.release_deliveries, name)
        counts = await self.call(self.store.delivery_counts)
        left = counts.get((name, "pending"), 0)
        if left:
            log.warning(
                "output_removed",
                output=name,
                pending=left,
                hint="its pending alerts stay in the outbox ('auditcorr alerts --pending')",
            )
        else:
            log.info("output_removed", output=name, pending=0)
