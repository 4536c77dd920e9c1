"""CloudTrail events from the CloudWatch Logs log group a trail delivers to.

Each log event's message is one CloudTrail record.  Every log stream (one per
account and region) has its own checkpoint: the newest event timestamp read.
Events can reach a stream a little out of time order, so every poll reads
again from ``lookback_secs`` before that timestamp; what was already stored is
recognized by its eventID.  FilterLogEvents allows 5 requests per second per
account and region: the source paces every call below ``max_requests_per_sec``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

import structlog
from pydantic import Field

from connectors.aws.access import AwsAccess, AwsAccessConfig
from connectors.aws.checks import Probe
from connectors.aws.source import AwsSource, Pacer
from connectors.base import Checkpoint, Emit
from connectors.cloudtrail.records import record_batches
from connectors.config import CloudtrailSourceConfig

log = structlog.get_logger()


class CloudtrailCloudwatchConfig(CloudtrailSourceConfig, AwsAccessConfig):
    type: Literal["cloudtrail_cloudwatch"] = "cloudtrail_cloudwatch"
    log_group: str = Field(min_length=1, max_length=512)
    """The log group the trail sends to (the trail's CloudWatch Logs setting)."""
    log_stream_prefix: str = ""
    """Read only streams whose names start with this (e.g. ``111111111111_CloudTrail_``)."""
    poll_interval_secs: float = Field(default=30.0, gt=0, le=3600)
    start: datetime | None = None
    """First run: read events from this time on; default: the log group's whole retention."""
    lookback_secs: int = Field(default=300, ge=0, le=86400)
    """Each poll reads again this far before the newest event read (late arrivals)."""
    max_requests_per_sec: float = Field(default=4.0, gt=0, le=5)
    """Pace of CloudWatch Logs calls; the API allows 5 per second."""


class CloudtrailCloudwatchSource(AwsSource):
    config_model = CloudtrailCloudwatchConfig
    config: CloudtrailCloudwatchConfig

    def threads(self) -> int:
        return 1

    async def open(self) -> None:
        self._pacer = Pacer(self.config.max_requests_per_sec)
        self._logs: Any = await self.call(self.aws.client, "logs")

    def probes(self, access: AwsAccess) -> list[Probe]:
        logs = access.client("logs")
        group = self.config.log_group

        def look() -> str:
            page = logs.describe_log_streams(logGroupName=group, limit=1)
            streams = page.get("logStreams", [])
            return (
                f"{group}: first stream {streams[0]['logStreamName']}"
                if streams
                else f"{group}: no streams yet"
            )

        hint = (
            "the role needs logs:DescribeLogStreams and logs:FilterLogEvents"
            f" on the log group {group}"
        )
        return [Probe(f"logs:DescribeLogStreams on {group}", look, hint)]

    async def _paced(self, fn: Callable[..., Any], **kwargs: Any) -> Any:
        await self._pacer.wait()
        return await self.call(fn, **kwargs)

    async def run(self, emit: Emit) -> None:
        ranged = self.context.since is not None or self.context.until is not None
        high: dict[str, int] = {
            name: int(value["high"])
            for name, value in self.context.checkpoints.items()
            if not ranged and "high" in value
        }
        while True:
            for stream in await self._streams():
                await self._read_stream(stream, high, emit, ranged=ranged)
            if self.context.mode == "backfill":
                return
            await asyncio.sleep(self.config.poll_interval_secs)

    async def _streams(self) -> list[str]:
        names: list[str] = []
        args: dict[str, Any] = {"logGroupName": self.config.log_group}
        if self.config.log_stream_prefix:
            args["logStreamNamePrefix"] = self.config.log_stream_prefix
        while True:
            page = await self._paced(self._logs.describe_log_streams, **args)
            names += [s["logStreamName"] for s in page.get("logStreams", [])]
            if not page.get("nextToken"):
                return names
            args["nextToken"] = page["nextToken"]

    def _start_ms(self, stream: str, high: dict[str, int]) -> int | None:
        if stream in high:
            return max(high[stream] - self.config.lookback_secs * 1000, 0)
        first = self.context.since or self.config.start
        return int(first.timestamp() * 1000) if first else None

    async def _read_stream(
        self, stream: str, high: dict[str, int], emit: Emit, *, ranged: bool
    ) -> None:
        args: dict[str, Any] = {"logGroupName": self.config.log_group, "logStreamNames": [stream]}
        start = self._start_ms(stream, high)
        if start is not None:
            args["startTime"] = start
        if self.context.until is not None:
            args["endTime"] = int(self.context.until.timestamp() * 1000)
        origin = f"cloudwatch:{self.config.log_group}/{stream}"
        while True:
            page = await self._paced(self._logs.filter_log_events, **args)
            events = page.get("events", [])
            if events:
                newest = max(int(e["timestamp"]) for e in events)
                high[stream] = max(high.get(stream, 0), newest)
                checkpoints = [] if ranged else [Checkpoint(stream, {"high": high[stream]})]
                messages = ((str(e.get("eventId", "?")), str(e.get("message", ""))) for e in events)
                for batch in record_batches(
                    origin, messages, checkpoints, what="log event message"
                ):
                    await emit(batch)
            token = page.get("nextToken")
            if not token or token == args.get("nextToken"):
                return
            args["nextToken"] = token
