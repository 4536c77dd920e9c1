"""CloudTrail objects from SQS against what the S3 endpoint serves, in the same run.

    python bench/sqs.py --events 20000 --runs 3 \\
        --store-dsn "host=127.0.0.1 user=postgres dbname=auditcorr_bench_sqs"

The data set of ``bench/backfill.py`` (a day of an organization trail: one file per
account, region and 5 minutes, a few to a few dozen events each, as CloudTrail
writes them) goes into the bucket of a moto server started here, in its own
process.  Each run measures, against that one server:

* endpoint: every object fetched (GET and read) by 16 threads, nothing else: the
  baseline;
* sqlite: one ``auditcorr run`` daemon on SQLite;
* pg1, pg2: one and two ``[cluster]`` members on a fresh PostgreSQL schema.

* source_alone: the ``cloudtrail_sqs`` source alone, every commit resolved at once:
  what the endpoint serves to a consumer of SQS (receive, read, delete).

Daemons run ``bench/postgres.py``'s member config (one decoding worker, built-in
rules).  Each takes a fresh queue holding one S3 notification per object (a backlog,
filled before they start: moto loses messages sent while others are deleted); the
figure is objects over the time from the first source started (its log's time
stamp) until every event is stored.  The server is ``bench/sqsmoto.py``: moto with
the queue-depth cost of its SQS taken out.  Prints one JSON object: medians over
--runs of objects/s, and of each run's own ratios (daemon / endpoint, two / one).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import os
import platform
import sqlite3
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from backfill import ROOT, bench_schema, dataset, log_files
from postgres import Member, notification, stored, wait
from s3 import REGION, bench_env, client, moto_ceiling, moto_server, upload

from connectors.base import RawBatch, SourceContext
from connectors.sources.cloudtrail_sqs import CloudtrailSqsConfig, CloudtrailSqsSource


def sqlite_stored(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as c:
            return int(
                c.execute("SELECT count(*) FROM events WHERE source != 'rules'").fetchone()[0]
            )
    except sqlite3.OperationalError:
        return 0


def intake(
    daemons: list[Member], env: dict[str, str], events: int, count: Callable[[], int]
) -> float:
    """Seconds from the first source started to every event stored (the queue is full)."""
    try:
        for daemon in daemons:
            daemon.start(env)
        wait("the sources", lambda: all(d.logged("source_started") for d in daemons))
        wait("every event", lambda: count() >= events, interval=0.2)
        ended = time.time()
        return ended - min(started(d) for d in daemons)
    finally:
        for daemon in daemons:
            daemon.stop()


def started(daemon: Member) -> float:
    """When the daemon's source started (its log's clock: this host's)."""
    for line in daemon.log.read_text(errors="replace").splitlines():
        if '"source_started"' in line:
            stamp = json.loads(line)["timestamp"].replace("Z", "+00:00")
            return datetime.fromisoformat(stamp).timestamp()
    raise SystemExit(f"{daemon.name} never started its source")


def source_alone(endpoint: str, bucket: str, keys: list[str]) -> float:
    """Seconds for the ``cloudtrail_sqs`` source alone to take a full queue, every
    commit resolved at once: how fast the endpoint serves a consumer of SQS."""
    sqs = client("sqs", endpoint)
    queue = sqs.create_queue(QueueName=f"bench-{uuid.uuid4().hex[:10]}")["QueueUrl"]
    send(sqs, queue, bucket, keys)
    config = CloudtrailSqsConfig.model_validate(
        {
            "type": "cloudtrail_sqs",
            "queue_url": queue,
            "endpoint_url": endpoint,
            "region": REGION,
            "wait_time_secs": 1,
        }
    )

    async def consume() -> float:
        loop = asyncio.get_running_loop()

        async def emit(batch: RawBatch) -> asyncio.Future[None]:
            committed: asyncio.Future[None] = loop.create_future()
            committed.set_result(None)
            return committed

        async with CloudtrailSqsSource(config, SourceContext("bench", {}, "backfill")) as source:
            began = time.perf_counter()
            await source.run(emit)
            return time.perf_counter() - began

    return asyncio.run(consume())


def send(sqs: Any, queue: str, bucket: str, keys: list[str]) -> None:
    for start in range(0, len(keys), 10):
        sqs.send_message_batch(
            QueueUrl=queue,
            Entries=[
                {"Id": str(i), "MessageBody": notification(bucket, key)}
                for i, key in enumerate(keys[start : start + 10])
            ],
        )


def one_run(
    endpoint: str, bucket: str, keys: list[str], events: int, base_dsn: str, work: Path
) -> dict[str, float]:
    """Objects/s of the endpoint, of a SQLite daemon and of one and two PostgreSQL members."""
    sqs = client("sqs", endpoint)
    figures = {"endpoint": len(keys) / moto_ceiling(endpoint, bucket, keys)}
    figures["source_alone"] = len(keys) / source_alone(endpoint, bucket, keys)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    queue = sqs.create_queue(QueueName=f"bench-{uuid.uuid4().hex[:10]}")["QueueUrl"]
    send(sqs, queue, bucket, keys)
    lone = Member(work / "sqlite", "sqlite", queue, endpoint, cluster=False)
    db = lone.state / "timeline.db"
    seconds = intake([lone], env, events, lambda: sqlite_stored(db))
    figures["sqlite"] = len(keys) / seconds
    for members in (1, 2):
        queue = sqs.create_queue(QueueName=f"bench-{uuid.uuid4().hex[:10]}")["QueueUrl"]
        send(sqs, queue, bucket, keys)
        schema = f"bench_sqs{members}"
        dsn = bench_schema(base_dsn, schema, create=True)
        try:
            daemons = [Member(work / schema, f"member{n}", queue, endpoint) for n in range(members)]
            member_env = {**env, "AUDITCORR_BENCH_DSN": dsn}
            seconds = intake(daemons, member_env, events, lambda dsn=dsn: stored(dsn))
            figures[f"pg{members}"] = len(keys) / seconds
        finally:
            bench_schema(base_dsn, schema, create=False)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--store-dsn", required=True)
    args = parser.parse_args()
    os.environ.update(bench_env(), AWS_EC2_METADATA_DISABLED="true")
    out = ROOT / "bench" / "out"
    tree = dataset(out, args.events, args.seed)
    files = log_files(tree)
    sizes = [len(json.loads(gzip.decompress(p.read_bytes()))["Records"]) for p in files]
    load_before = os.getloadavg()
    runs: list[dict[str, float]] = []
    with moto_server(out / "moto-sqs.log", patched=True) as endpoint:
        bucket, keys = upload(endpoint, tree, files)
        for run in range(args.runs):
            work = out / f"sqs-{os.getpid()}-{run}"
            runs.append(one_run(endpoint, bucket, keys, args.events, args.store_dsn, work))
            print(
                f"run {run + 1}: {json.dumps({k: round(v) for k, v in runs[-1].items()})}",
                file=sys.stderr,
            )

    def median(key: Callable[[dict[str, float]], float]) -> float:
        return round(statistics.median(key(r) for r in runs), 2)

    print(
        json.dumps(
            {
                "events": args.events,
                "objects": len(files),
                "events_per_object": {"median": statistics.median(sizes), "max": max(sizes)},
                "runs": args.runs,
                "objects_per_sec": {
                    name: median(lambda r, n=name: r[n])
                    for name in ("endpoint", "source_alone", "sqlite", "pg1", "pg2")
                },
                "per_run": runs,
                "source_alone_to_endpoint": median(lambda r: r["source_alone"] / r["endpoint"]),
                "sqlite_to_endpoint": median(lambda r: r["sqlite"] / r["endpoint"]),
                "pg1_to_endpoint": median(lambda r: r["pg1"] / r["endpoint"]),
                "pg2_to_pg1": median(lambda r: r["pg2"] / r["pg1"]),
                "loadavg_before": load_before,
                "loadavg_after": os.getloadavg(),
                "machine": f"{platform.machine()} {os.cpu_count()} CPUs",
                "python": platform.python_version(),
                "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
