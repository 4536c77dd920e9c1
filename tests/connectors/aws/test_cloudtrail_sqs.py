"""cloudtrail_sqs and cloudtrail_eventbridge against moto's SQS and S3 over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from motoserver import client
from queues import (
    S3_TEST_EVENT,
    cloudtrail_sns,
    eventbridge_event,
    new_queue,
    queue_depth,
    s3_notification,
    send_all,
    sns_wrapped,
)
from trail import Collector, upload_trail

from connectors.base import RawBatch, SourceContext
from connectors.sources.cloudtrail_eventbridge import (
    CloudtrailEventbridgeConfig,
    CloudtrailEventbridgeSource,
)
from connectors.sources.cloudtrail_sqs import CloudtrailSqsConfig, CloudtrailSqsSource


def sqs_source(endpoint: str, queue_url: str, mode: str = "backfill", **settings: Any) -> Any:
    config = CloudtrailSqsConfig.model_validate(
        {
            "type": "cloudtrail_sqs",
            "queue_url": queue_url,
            "endpoint_url": endpoint,
            "region": "us-east-1",
            "wait_time_secs": 1,
            **settings,
        }
    )
    return CloudtrailSqsSource(config, SourceContext("ct_sqs", {}, mode))  # type: ignore[arg-type]


@pytest.fixture
def trail(moto_endpoint: str, tmp_path: Path) -> tuple[str, Any]:
    s3 = client("s3", moto_endpoint)
    bucket = f"trail-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    return bucket, upload_trail(s3, bucket, tmp_path, 400)


async def test_every_notification_shape_is_read_and_deleted(
    moto_endpoint: str, trail: tuple[str, Any]
) -> None:
    """Direct S3, SNS-wrapped and CloudTrail SNS notifications: each event once, queue empty."""
    bucket, uploaded = trail
    sqs = client("sqs", moto_endpoint)
    queue = new_queue(sqs)
    keys = uploaded.keys
    third = len(keys) // 3
    digest = keys[0].replace("/CloudTrail/", "/CloudTrail-Digest/")
    bodies = [s3_notification(bucket, k) for k in keys[:third]]
    bodies += [sns_wrapped(s3_notification(bucket, k)) for k in keys[third : 2 * third]]
    bodies += [sns_wrapped(cloudtrail_sns(bucket, keys[2 * third :]))]
    bodies += [S3_TEST_EVENT, s3_notification(bucket, digest)]
    send_all(sqs, queue, bodies)
    emit = Collector()
    source = sqs_source(moto_endpoint, queue)
    async with asyncio.timeout(60), source:
        await source.run(emit)
    ids = emit.event_ids()
    assert set(ids) == uploaded.ids
    assert set(ids.values()) == {1}
    assert len(emit.batches) == len(keys)
    assert queue_depth(sqs, queue) == 0


async def test_bad_notification_is_quarantined_and_deleted(moto_endpoint: str) -> None:
    """A message of another shape becomes a quarantined payload naming the message."""
    sqs = client("sqs", moto_endpoint)
    queue = new_queue(sqs)
    send_all(sqs, queue, ['{"hello": 1}', "not json"])
    emit = Collector()
    source = sqs_source(moto_endpoint, queue)
    async with asyncio.timeout(30), source:
        await source.run(emit)
    reasons = sorted(str(b.error) for b in emit.batches)
    assert reasons[0].startswith("bad notification: message is not JSON")
    assert reasons[1] == "bad notification: not an S3, SNS, CloudTrail or EventBridge notification"
    assert all(b.origin.startswith(queue + "#") for b in emit.batches)
    assert queue_depth(sqs, queue) == 0


class HeldCommits(Collector):
    """An emit whose commits resolve only when the test says so (a slow or dying store)."""

    def __init__(self) -> None:
        super().__init__()
        self.futures: list[asyncio.Future[None]] = []

    async def __call__(self, batch: RawBatch) -> asyncio.Future[None]:
        await super().__call__(batch)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.futures.append(future)
        return future


@contextlib.asynccontextmanager
async def consumer_holding_one(
    endpoint: str, trail: tuple[str, Any]
) -> AsyncIterator[tuple[Any, str, HeldCommits]]:
    """A queue with one notification, read by a consumer whose commit waits; stopped on exit."""
    bucket, uploaded = trail
    sqs = client("sqs", endpoint)
    queue = new_queue(sqs)
    send_all(sqs, queue, [s3_notification(bucket, uploaded.keys[0])])
    held = HeldCommits()
    source = sqs_source(endpoint, queue, "follow", visibility_timeout_secs=2)
    async with source:
        task = asyncio.create_task(source.run(held))
        await held.wait_for(1)
        yield sqs, queue, held
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_uncommitted_message_comes_back_to_the_next_consumer(
    moto_endpoint: str, trail: tuple[str, Any]
) -> None:
    """A consumer stopped between reading and committing deletes nothing: the next one reads it."""
    async with consumer_holding_one(moto_endpoint, trail) as (sqs, queue, dying):
        pass  # stopped as if killed: the commit never happened
    assert queue_depth(sqs, queue) == 1
    await asyncio.sleep(2.5)
    emit = Collector()
    second = sqs_source(moto_endpoint, queue)
    async with asyncio.timeout(30), second:
        await second.run(emit)
    assert emit.event_ids() == dying.event_ids()
    assert queue_depth(sqs, queue) == 0


async def test_visibility_is_extended_while_commit_is_pending(
    moto_endpoint: str, trail: tuple[str, Any]
) -> None:
    """While a commit takes longer than the visibility timeout, no other consumer gets it."""
    async with consumer_holding_one(moto_endpoint, trail) as (sqs, queue, slow):
        other = await asyncio.to_thread(
            sqs.receive_message, QueueUrl=queue, WaitTimeSeconds=5, VisibilityTimeout=0
        )
        assert other.get("Messages", []) == [], "the message stayed hidden past its timeout"
        slow.futures[0].set_result(None)
        for _ in range(50):
            if queue_depth(sqs, queue) == 0:
                break
            await asyncio.sleep(0.1)
    assert queue_depth(sqs, queue) == 0


async def test_eventbridge_records_are_read_once(moto_endpoint: str) -> None:
    """CloudTrail events from EventBridge become one payload per receive; others are skipped."""
    sqs = client("sqs", moto_endpoint)
    queue = new_queue(sqs)
    records = [
        {"eventID": f"eb-{i}", "eventTime": "2026-11-20T10:00:00Z", "eventName": "PutObject"}
        for i in range(25)
    ]
    other = '{"detail-type": "EC2 Instance State-change Notification", "detail": {}}'
    send_all(sqs, queue, [eventbridge_event(r) for r in records] + [other])
    config = CloudtrailEventbridgeConfig.model_validate(
        {
            "type": "cloudtrail_eventbridge",
            "queue_url": queue,
            "endpoint_url": moto_endpoint,
            "wait_time_secs": 1,
        }
    )
    emit = Collector()
    source = CloudtrailEventbridgeSource(config, SourceContext("ct_eb", {}, "backfill"))
    async with asyncio.timeout(30), source:
        await source.run(emit)
    ids = emit.event_ids()
    assert set(ids) == {r["eventID"] for r in records}
    assert set(ids.values()) == {1}
    assert queue_depth(sqs, queue) == 0
