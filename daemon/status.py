"""What the HTTP API may read of the running daemon: a read-only view.

The pipeline (``daemon/pipeline.py``) implements these protocols; the API
(``daemon/api/``) is typed against them, so it reads state, lag and counters
without reaching the queues, the worker pool or the store writer.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Literal, Protocol

from prometheus_client import Histogram

from connectors.base import Source
from connectors.config import ConnectorConfig
from daemon.identity import IdentityMap

SourceState = Literal["starting", "running", "retrying", "stopped", "failed"]


class SourceStatus(Protocol):
    """One source's counts since the start, its state and its newest event time."""

    @property
    def payloads(self) -> int: ...
    @property
    def records(self) -> int: ...
    @property
    def unparsed(self) -> int: ...
    @property
    def stored(self) -> int: ...
    @property
    def duplicates(self) -> int: ...
    @property
    def quarantined(self) -> int: ...
    @property
    def failed_payloads(self) -> int: ...
    @property
    def dropped(self) -> int: ...
    @property
    def dropped_by(self) -> Mapping[str, int]: ...
    @property
    def newest(self) -> datetime | None: ...
    @property
    def state(self) -> SourceState: ...
    @property
    def errors(self) -> int: ...
    @property
    def last_error(self) -> str | None: ...


class StatsStatus(Protocol):
    """The daemon-wide counters."""

    @property
    def alerts(self) -> int: ...
    @property
    def unrecognized(self) -> Mapping[str, int]: ...
    @property
    def store_write_seconds(self) -> Histogram: ...

    def source(self, name: str) -> SourceStatus: ...


class DaemonStatus(Protocol):
    """The running daemon as ``/metrics``, ``/readyz`` and the resources read it."""

    @property
    def ready(self) -> bool:
        """Every source started and the correlator's state loaded."""
        ...

    @property
    def configs(self) -> Mapping[str, ConnectorConfig]: ...
    @property
    def running(self) -> Mapping[str, Source]: ...
    @property
    def stats(self) -> StatsStatus: ...
    @property
    def identities(self) -> IdentityMap | None: ...

    def queue_depths(self) -> Mapping[str, int]: ...
