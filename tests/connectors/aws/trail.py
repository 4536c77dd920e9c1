"""CloudTrail objects in a moto bucket as a trail delivers them, and a source runner."""

from __future__ import annotations

import asyncio
import gzip
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from itsupport import ORG, generate, load_ctgen

from connectors.base import RawBatch, Source

ACCOUNTS = ["111111111111", "222222222222", "333333333333"]
REGIONS = ["us-east-1", "eu-west-1"]
START = datetime(2026, 11, 20, 23, 0, tzinfo=UTC)


@dataclass
class Uploaded:
    records: list[dict[str, Any]]
    keys: list[str]

    @property
    def ids(self) -> set[str]:
        return {r["eventID"] for r in self.records}


def upload_trail(
    s3: Any,
    bucket: str,
    tmp: Path,
    n: int,
    *,
    seed: int = 1,
    kms_key: str | None = None,
    start: datetime = START,
    span: timedelta = timedelta(minutes=30),
    per_file: int = 50,
    accounts: list[str] = ACCOUNTS,
) -> Uploaded:
    """Generated records over several accounts/regions, written with ctgen, put in S3.

    With ``kms_key``, every other object is encrypted with SSE-KMS.
    """
    ctgen = load_ctgen()
    records = generate(
        ctgen, n, seed=seed, start=start, span=span, accounts=ACCOUNTS, regions=REGIONS
    )
    root = tmp / f"tree{seed}"
    paths = ctgen.write_tree(root, records, per_file=per_file, organization_id=ORG, seed=seed)
    keys = []
    for index, path in enumerate(paths):
        key = Path(path).relative_to(root).as_posix()
        extra: dict[str, Any] = {}
        if kms_key and index % 2:
            extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key}
        s3.put_object(Bucket=bucket, Key=key, Body=Path(path).read_bytes(), **extra)
        keys.append(key)
    return Uploaded(records, keys)


def put_records(s3: Any, bucket: str, key: str, records: list[dict[str, Any]]) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=gzip.compress(orjson.dumps({"Records": records})))


def day_key(account: str, region: str, stamp: str, tag: str) -> str:
    day = f"{stamp[:4]}/{stamp[4:6]}/{stamp[6:8]}"
    return (
        f"AWSLogs/{ORG}/{account}/CloudTrail/{region}/{day}/"
        f"{account}_CloudTrail_{region}_{stamp}_{tag}.json.gz"
    )


@dataclass
class Collector:
    """An ``emit`` that keeps every batch and commits at once."""

    batches: list[RawBatch] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, batch: RawBatch) -> asyncio.Future[None]:
        self.batches.append(batch)
        self.arrived.set()
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def wait_for(self, count: int) -> None:
        """Until ``count`` batches were emitted."""
        async with asyncio.timeout(20):
            while len(self.batches) < count:
                self.arrived.clear()
                await self.arrived.wait()

    def event_ids(self) -> Counter[str]:
        found: Counter[str] = Counter()
        for batch in self.batches:
            if batch.payload and batch.error is None:
                data = batch.payload
                if data[:2] == b"\x1f\x8b":
                    data = gzip.decompress(data)
                found.update(r["eventID"] for r in orjson.loads(data)["Records"])
        return found

    def checkpoints(self) -> dict[str, Any]:
        """The last checkpoint per key, as the store would hold it."""
        return {c.key: c.value for b in self.batches for c in b.checkpoints}


async def run_source(source: Source, emit: Collector) -> None:
    async with asyncio.timeout(60), source:
        await source.run(emit)
