"""Runs one delivery worker per configured output, each under a supervisor.

The service has its own store connection and thread, so a long timeline
write does not hold up deliveries (SQLite's WAL lets the two take turns).
"""

from __future__ import annotations

import asyncio
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
from daemon.delivery.worker import Backoff, OutputWorker
from daemon.store.base import Store

log = structlog.get_logger()

RESTART_CAP_SECS = 60.0


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
        self.outputs = {
            name: config for name, config in outputs.items() if isinstance(config, OutputConfig)
        }
        self.timezone = timezone
        self.backoff = backoff or Backoff()
        self.clock = clock
        self.workers: dict[str, OutputWorker] = {}
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="outbox")

    async def call(self, fn: Any, *args: Any) -> Any:
        """Run a store call in the service's store thread."""
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    def wake(self) -> None:
        """Alerts were queued: every worker looks for due rows now."""
        for worker in self.workers.values():
            worker.wake()

    async def run(self) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                for name in self.outputs:
                    group.create_task(self._supervise(name), name=f"output:{name}")
        finally:
            self._thread.shutdown(wait=True)

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

    async def _supervise(self, name: str) -> None:
        """Run one output's worker; restart it with jittered backoff when it fails."""
        config = self.outputs[name]
        bound = log.bind(component_kind="output", component_type=config.type, component_id=name)
        delay = 1.0
        while True:
            context = OutputContext(name, self.timezone)
            output: Output = registry.load(registry.OUTPUTS, config.type)(config, context)
            try:
                async with output:
                    worker = OutputWorker(
                        name,
                        config,
                        output,
                        self.store,
                        self.call,
                        zone=ZoneInfo(self.timezone),
                        backoff=self.backoff,
                        clock=self.clock,
                    )
                    self.workers[name] = worker
                    bound.info("output_started")
                    await worker.run()
            except Exception as err:  # noqa: BLE001 - one failing output must not stop the others
                bound.error("output_failed", error=str(err), error_type=type(err).__name__)
                await asyncio.sleep(random.uniform(0, delay))  # noqa: S311 - jitter, not crypto
                delay = min(delay * 2, RESTART_CAP_SECS)
