"""cloudtrail_s3 against a moto server over HTTP: layout, KMS, late files, failures."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from motoserver import FaultProxy, client, s3_error
from trail import ACCOUNTS, REGIONS, Collector, day_key, put_records, run_source, upload_trail

from connectors.base import AuthError, PermanentError, SourceContext
from connectors.sources.cloudtrail_s3 import CloudtrailS3Config, CloudtrailS3Source


@pytest.fixture
def bucket(moto_endpoint: str) -> str:
    name = f"trail-{uuid.uuid4().hex[:12]}"
    client("s3", moto_endpoint).create_bucket(Bucket=name)
    return name


def source(
    endpoint: str,
    bucket: str,
    *,
    mode: str = "backfill",
    checkpoints: dict[str, Any] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    **settings: Any,
) -> CloudtrailS3Source:
    config = CloudtrailS3Config.model_validate(
        {
            "type": "cloudtrail_s3",
            "bucket": bucket,
            "endpoint_url": endpoint,
            "region": "us-east-1",
            "max_attempts": 3,
            **settings,
        }
    )
    context = SourceContext("ct_s3", checkpoints or {}, mode, since, until)  # type: ignore[arg-type]
    return CloudtrailS3Source(config, context)


async def test_organization_bucket_every_event_once(
    moto_endpoint: str, bucket: str, tmp_path: Path
) -> None:
    """Accounts and regions are discovered; KMS-encrypted objects decrypt; each event once."""
    s3 = client("s3", moto_endpoint)
    key_id = client("kms", moto_endpoint).create_key()["KeyMetadata"]["KeyId"]
    uploaded = upload_trail(s3, bucket, tmp_path, 1500, kms_key=key_id)
    emit = Collector()
    await run_source(source(moto_endpoint, bucket), emit)
    ids = emit.event_ids()
    assert set(ids) == uploaded.ids
    assert set(ids.values()) == {1}
    assert len(emit.batches) == len(uploaded.keys)
    assert set(emit.checkpoints()) == {f"{a}/{r}" for a in ACCOUNTS for r in REGIONS}
    stamps = [b.origin.rsplit("_", 2)[1] for b in emit.batches]
    assert stamps == sorted(stamps), "objects are read in delivery order"


async def test_restart_from_checkpoints_reads_nothing_again(
    moto_endpoint: str, bucket: str, tmp_path: Path
) -> None:
    """The committed per account/region checkpoints keep a second run from re-reading."""
    s3 = client("s3", moto_endpoint)
    upload_trail(s3, bucket, tmp_path, 300)
    first = Collector()
    await run_source(source(moto_endpoint, bucket), first)
    second = Collector()
    await run_source(source(moto_endpoint, bucket, checkpoints=first.checkpoints()), second)
    assert second.batches == []


async def test_late_file_named_before_newer_ones_is_read(moto_endpoint: str, bucket: str) -> None:
    """A file that appears after later-named files is still read, once."""
    s3 = client("s3", moto_endpoint)
    account, region = ACCOUNTS[0], REGIONS[0]
    now = datetime.now(UTC)
    stamps = [now.strftime("%Y%m%dT%H") + f"{m:02d}Z" for m in (0, 5, 10, 15)]

    def records(tag: str) -> list[dict[str, Any]]:
        return [{"eventID": f"{tag}-{i}", "eventTime": "2026-11-20T00:00:00Z"} for i in range(3)]

    put_records(s3, bucket, day_key(account, region, stamps[0], "a"), records("a"))
    put_records(s3, bucket, day_key(account, region, stamps[2], "c"), records("c"))
    emit = Collector()
    follow = source(moto_endpoint, bucket, mode="follow", poll_interval_secs=0.1)

    async with follow:
        task = asyncio.create_task(follow.run(emit))
        await emit.wait_for(2)
        put_records(s3, bucket, day_key(account, region, stamps[1], "b"), records("b"))
        await emit.wait_for(3)
        # A marker, named last: the poll that reads it lists a, b and c before it,
        # so a file read twice would be in by the time the marker is.
        put_records(s3, bucket, day_key(account, region, stamps[3], "d"), records("d"))
        await emit.wait_for(4)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert [b.origin.rsplit("_", 1)[1][:1] for b in emit.batches] == ["a", "c", "b", "d"]
    assert emit.event_ids() == Counter(f"{t}-{i}" for t in "abcd" for i in range(3))
    (checkpoint,) = emit.checkpoints().values()
    assert checkpoint["high"] == stamps[3]
    assert len(checkpoint["recent"]) == 4


async def test_range_backfill_reads_only_those_days(
    moto_endpoint: str, bucket: str, tmp_path: Path
) -> None:
    """--since/--until list only the day folders around the range and commit no checkpoint."""
    s3 = client("s3", moto_endpoint)
    upload_trail(s3, bucket, tmp_path, 200)
    other = datetime(2026, 10, 1, tzinfo=UTC)
    put_records(s3, bucket, day_key(ACCOUNTS[0], REGIONS[0], "20261001T0100Z", "old"), [])
    emit = Collector()
    since, until = datetime(2026, 11, 20, tzinfo=UTC), datetime(2026, 11, 21, 6, tzinfo=UTC)
    await run_source(source(moto_endpoint, bucket, since=since, until=until), emit)
    assert emit.batches
    assert all("20261001" not in b.origin for b in emit.batches), other
    assert emit.checkpoints() == {}


async def test_kms_denied_names_the_key(
    moto_endpoint: str, bucket: str, fault_proxy: FaultProxy
) -> None:
    """AccessDenied on an SSE-KMS object says kms:Decrypt on which key, not 'S3 denied'."""
    s3 = client("s3", moto_endpoint)
    key_id = client("kms", moto_endpoint).create_key()["KeyMetadata"]["Arn"]
    key = day_key(ACCOUNTS[0], REGIONS[0], "20261120T0100Z", "kms")
    s3.put_object(
        Bucket=bucket, Key=key, Body=b"{}", ServerSideEncryption="aws:kms", SSEKMSKeyId=key_id
    )
    denied = s3_error("AccessDenied", "Access Denied")
    fault_proxy.fault = lambda method, path: (
        (403, denied) if method == "GET" and "kms" in path else None
    )
    with pytest.raises(AuthError, match=f"KMS key denied: the role needs kms:Decrypt on {key_id}"):
        await run_source(source(fault_proxy.endpoint, bucket), Collector())


async def test_s3_denied_is_not_blamed_on_kms(
    moto_endpoint: str, bucket: str, fault_proxy: FaultProxy
) -> None:
    """AccessDenied on a plain object is reported as an S3 permission problem."""
    put_records(
        client("s3", moto_endpoint),
        bucket,
        day_key(ACCOUNTS[0], REGIONS[0], "20261120T0100Z", "x"),
        [],
    )
    denied = s3_error("AccessDenied", "Access Denied")
    fault_proxy.fault = lambda method, path: (
        (403, denied) if method == "GET" and path.endswith(".json.gz") else None
    )
    with pytest.raises(AuthError, match="S3 denied: the role needs s3:GetObject"):
        await run_source(source(fault_proxy.endpoint, bucket), Collector())


async def test_throttling_is_retried_without_loss(
    moto_endpoint: str, bucket: str, tmp_path: Path, fault_proxy: FaultProxy
) -> None:
    """503 SlowDown on GETs is retried with backoff; every event arrives once."""
    uploaded = upload_trail(client("s3", moto_endpoint), bucket, tmp_path, 120)
    throttled: list[str] = []

    def slow_down(method: str, path: str) -> tuple[int, bytes] | None:
        if method == "GET" and path.endswith(".json.gz") and path not in throttled:
            throttled.append(path)
            return 503, s3_error("SlowDown", "Please reduce your request rate.")
        return None

    fault_proxy.fault = slow_down
    emit = Collector()
    await run_source(source(fault_proxy.endpoint, bucket), emit)
    assert len(throttled) == len(uploaded.keys)
    ids = emit.event_ids()
    assert set(ids) == uploaded.ids
    assert set(ids.values()) == {1}


async def test_missing_bucket_is_a_clear_error(moto_endpoint: str) -> None:
    """A bucket that does not exist fails the source with its name."""
    with pytest.raises(PermanentError, match="bucket 'no-such-trail' does not exist"):
        await run_source(source(moto_endpoint, "no-such-trail"), Collector())


async def test_assumed_role_reads_the_bucket(
    moto_endpoint: str, bucket: str, tmp_path: Path, fault_proxy: FaultProxy
) -> None:
    """With role_arn and external_id the source calls STS AssumeRole, then reads."""
    uploaded = upload_trail(client("s3", moto_endpoint), bucket, tmp_path, 100)
    emit = Collector()
    role = "arn:aws:iam::999999999999:role/auditcorr-read"
    await run_source(source(fault_proxy.endpoint, bucket, role_arn=role, external_id="ext-1"), emit)
    assert set(emit.event_ids()) == uploaded.ids
    sts_calls = [s for s in fault_proxy.seen if s[0] == "POST" and s[1] == "/"]
    assert sts_calls, "AssumeRole went through the endpoint"
