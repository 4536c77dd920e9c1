"""The base of every AWS source: boto3 calls in the source's own threads, and the
``auditcorr doctor`` checks every AWS source makes.

Imports go one way: :mod:`connectors.aws.access` (credentials, clients, errors)
<- :mod:`connectors.aws.checks` (doctor's dry calls) <- this module.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Self

from botocore.exceptions import BotoCoreError, ClientError

from connectors.aws.access import AwsAccess, AwsAccessConfig, translate
from connectors.aws.checks import Probe, run_checks
from connectors.base import Check, Source


class Pacer:
    """At most ``rate`` calls per second, spaced evenly."""

    def __init__(self, rate: float) -> None:
        self._gap = 1.0 / rate
        self._next = 0.0

    async def wait(self) -> None:
        now = time.monotonic()
        if self._next > now:
            await asyncio.sleep(self._next - now)
        self._next = max(now, self._next) + self._gap


class AwsSource(Source):
    """A source whose boto3 calls run in a pool of its own threads, never on the loop."""

    config: AwsAccessConfig

    def threads(self) -> int:
        """Threads (and HTTP connections) of the source's pool."""
        return 2

    async def open(self) -> None:
        """Make the clients the source needs (with ``self.call``)."""

    async def __aenter__(self) -> Self:
        size = self.threads()
        self._pool = ThreadPoolExecutor(size, thread_name_prefix=self.context.source_id)
        self.aws = AwsAccess(
            self.config, session_name=f"auditcorr-{self.context.source_id}", pool_size=size
        )
        try:
            await self.open()
        except BaseException:
            self._pool.shutdown(wait=False, cancel_futures=True)
            raise
        return self

    async def aclose(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def checks(self) -> list[Check]:
        """Credentials, clock, roles, then each dry call of ``probes`` (see ``checks``)."""
        access = AwsAccess(self.config, session_name=f"auditcorr-doctor-{self.context.source_id}")
        return await asyncio.to_thread(run_checks, self.config, access, lambda: self.probes(access))

    def probes(self, access: AwsAccess) -> list[Probe]:
        """The dry calls ``auditcorr doctor`` makes for this source (blocking)."""
        return []

    async def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn`` in the source's threads; boto3 errors come back translated."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, lambda: fn(*args, **kwargs))
        except (ClientError, BotoCoreError) as err:
            raise translate(err, getattr(fn, "__name__", "aws call")) from err
