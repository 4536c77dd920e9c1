"""cloudtrail_cloudwatch against moto's CloudWatch Logs over HTTP."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import orjson
import pytest
from motoserver import FaultProxy, client
from trail import Collector

from connectors.base import PermanentError, SourceContext
from connectors.sources.cloudtrail_cloudwatch import (
    CloudtrailCloudwatchConfig,
    CloudtrailCloudwatchSource,
)


def source(endpoint: str, group: str, checkpoints: dict[str, Any] | None = None, **kw: Any) -> Any:
    config = CloudtrailCloudwatchConfig.model_validate(
        {"type": "cloudtrail_cloudwatch", "log_group": group, "endpoint_url": endpoint, **kw}
    )
    return CloudtrailCloudwatchSource(config, SourceContext("ct_cw", checkpoints or {}, "backfill"))


def put(logs: Any, group: str, stream: str, ids: list[str], at_ms: int) -> None:
    events = [
        {
            "timestamp": at_ms + i,
            "message": orjson.dumps({"eventID": e, "eventTime": "2026-11-20T10:00:00Z"}).decode(),
        }
        for i, e in enumerate(ids)
    ]
    logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)


async def run(src: Any, emit: Collector) -> None:
    async with asyncio.timeout(60), src:
        await src.run(emit)


async def test_streams_checkpoints_and_pace(moto_endpoint: str, fault_proxy: FaultProxy) -> None:
    """Every stream is read, paced; a second run goes on from each stream's checkpoint."""
    logs = client("logs", moto_endpoint)
    group = f"cloudtrail-{uuid.uuid4().hex[:8]}"
    logs.create_log_group(logGroupName=group)
    now = int(time.time() * 1000) - 60_000
    expected = set()
    for n, stream in enumerate(
        ["111111111111_CloudTrail_us-east-1", "222222222222_CloudTrail_eu-west-1"]
    ):
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        ids = [f"{n}-{i}" for i in range(30)]
        put(logs, group, stream, ids, now)
        expected |= set(ids)
    logs.create_log_stream(logGroupName=group, logStreamName="bad")
    logs.put_log_events(
        logGroupName=group, logStreamName="bad", logEvents=[{"timestamp": now, "message": "oops"}]
    )
    first = Collector()
    began = time.monotonic()
    await run(source(fault_proxy.endpoint, group, max_requests_per_sec=2), first)
    calls = len([s for s in fault_proxy.seen if s[0] == "POST"])
    assert time.monotonic() - began >= (calls - 1) / 2 * 0.9, "no more than 2 calls per second"
    assert set(first.event_ids()) == expected
    assert [b.error for b in first.batches if b.error] == [
        "log event message is not a CloudTrail record (JSON object)"
    ]
    checkpoints = first.checkpoints()
    assert set(checkpoints) == {
        "111111111111_CloudTrail_us-east-1",
        "222222222222_CloudTrail_eu-west-1",
        "bad",
    }

    put(logs, group, "111111111111_CloudTrail_us-east-1", ["late"], now + 10_000)
    second = Collector()
    await run(source(moto_endpoint, group, checkpoints, lookback_secs=0), second)
    # From the newest timestamp read, inclusive: that event again (stored once) and the new one.
    assert set(second.event_ids()) == {"0-29", "1-29", "late"}


async def test_missing_log_group(moto_endpoint: str) -> None:
    """A log group that does not exist is named in the error."""
    with pytest.raises(PermanentError, match="log group does not exist"):
        await run(source(moto_endpoint, "nope"), Collector())
