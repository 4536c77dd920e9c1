"""CloudTrail from S3 and SQS on a moto server, next to local files, in the same run.

    python bench/s3.py --events 200000 --runs 3

Generates N events in the AWS file layout (cached under bench/out/, shared with
bench/backfill.py), starts a moto server on a free local port, uploads the
files to a bucket, then measures (medians over --runs):

* files: ``auditcorr backfill`` of a ``cloudtrail_files`` source on the local tree;
* s3: ``auditcorr backfill`` of a ``cloudtrail_s3`` source on the bucket;
* sqs: ``auditcorr backfill`` of a ``cloudtrail_sqs`` source on a queue holding one
  S3 notification per file;
* moto: what moto alone serves, every object fetched with 16 threads (the ceiling);
* eventbridge: seconds from sending one EventBridge message to its event being
  queryable in the store of a running daemon (median of --samples messages).

Prints one JSON object with every figure and the median of each run's ratio against files.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import orjson

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT / "examples"))

import ctgen  # noqa: E402
from backfill import log_files  # noqa: E402
from harness import count_events  # noqa: E402

REGION = "us-east-1"
START = datetime(2026, 10, 1, tzinfo=UTC)


def dataset(out: Path, events: int, seed: int) -> Path:
    """A busy organization trail: two hours, so files hold hundreds of events as
    CloudTrail's do under load (bench/backfill.py spreads its events over a day)."""
    tree = out / f"s3data-{events}-{seed}"
    marker = tree / ".complete"
    if not marker.exists():
        shutil.rmtree(tree, ignore_errors=True)
        records = ctgen.generate_records(events, start=START, span=timedelta(hours=2), seed=seed)
        files = ctgen.write_tree(tree, records, organization_id="o-bench00001")
        marker.write_text(str(len(files)))
    return tree


@contextlib.contextmanager
def moto_server(log: Path, *, patched: bool = False) -> Iterator[str]:
    """A moto server on a free port; ``patched``: the one of ``bench/sqsmoto.py``."""
    server = [str(BENCH / "sqsmoto.py")] if patched else ["-m", "moto.server"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, *server, "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=out,
        )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            time.sleep(0.05)
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(10)


def client(service: str, endpoint: str) -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name=REGION)


def upload(endpoint: str, tree: Path, files: list[Path]) -> tuple[str, list[str]]:
    s3 = client("s3", endpoint)
    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    keys = [path.relative_to(tree).as_posix() for path in files]
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda pair: s3.put_object(Bucket=bucket, Key=pair[1], Body=pair[0].read_bytes()),
                zip(files, keys, strict=True),
            )
        )
    return bucket, keys


def write_config(work: Path, source: dict[str, Any]) -> Path:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    lines = [
        "[daemon]",
        f"state_dir = {json.dumps(str(work / 'state'))}",
        'log_format = "json"',
        "[store]",
        "retention_days = 0",
        "[sources.bench]",
    ]
    lines += [f"{key} = {json.dumps(value)}" for key, value in source.items()]
    config = work / "config.toml"
    config.write_text("\n".join(lines) + "\n")
    return config


def backfill(work: Path, source: dict[str, Any]) -> tuple[float, int]:
    """Seconds of ``auditcorr backfill`` (start to exit) and events stored."""
    config = write_config(work, source)
    began = time.perf_counter()
    done = subprocess.run(
        [str(ROOT / ".venv/bin/auditcorr"), "backfill", "--config", str(config)],
        capture_output=True,
        text=True,
        check=False,
        env=bench_env(),
    )
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"backfill failed: {done.stdout}\n{done.stderr[-3000:]}")
    summary = dict(p.split("=", 1) for p in done.stdout.strip().splitlines()[-1].split()[1:])
    return seconds, int(summary["stored"])


def bench_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION=REGION,
        AWS_CONFIG_FILE="/dev/null",
        AWS_SHARED_CREDENTIALS_FILE="/dev/null",
    )
    return env


def notify(endpoint: str, bucket: str, keys: list[str]) -> str:
    sqs = client("sqs", endpoint)
    queue = sqs.create_queue(QueueName=f"bench-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    bodies = [
        orjson.dumps(
            {"Records": [{"s3": {"bucket": {"name": bucket}, "object": {"key": key}}}]}
        ).decode()
        for key in keys
    ]
    for start in range(0, len(bodies), 10):
        chunk = bodies[start : start + 10]
        sqs.send_message_batch(
            QueueUrl=queue,
            Entries=[{"Id": str(i), "MessageBody": body} for i, body in enumerate(chunk)],
        )
    return str(queue)


def moto_ceiling(endpoint: str, bucket: str, keys: list[str]) -> float:
    """Seconds to GET every object with 16 threads, nothing else."""
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        config=boto3.session.Config(max_pool_connections=16),
    )
    began = time.perf_counter()
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: s3.get_object(Bucket=bucket, Key=k)["Body"].read(), keys))
    return time.perf_counter() - began


def eventbridge_latency(endpoint: str, work: Path, samples: int) -> list[float]:
    """Seconds from SendMessage to the event being in the store, one message at a time."""
    sqs = client("sqs", endpoint)
    queue = sqs.create_queue(QueueName=f"bench-eb-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    config = write_config(
        work,
        {
            "type": "cloudtrail_eventbridge",
            "queue_url": queue,
            "endpoint_url": endpoint,
            "region": REGION,
            "wait_time_secs": 20,
        },
    )
    log = (work / "daemon.log").open("wb")
    proc = subprocess.Popen(
        [str(ROOT / ".venv/bin/auditcorr"), "run", "--config", str(config)],
        stdout=log,
        stderr=log,
        env=bench_env(),
    )
    db = work / "state" / "timeline.db"
    try:
        while b"source_started" not in (work / "daemon.log").read_bytes():
            time.sleep(0.1)
        time.sleep(1.0)
        latencies = []
        for n in range(samples):
            before = count_events(db)
            record = {
                "eventVersion": "1.09",
                "eventID": str(uuid.uuid4()),
                "eventTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "eventSource": "iam.amazonaws.com",
                "eventName": "CreateUser",
                "awsRegion": REGION,
                "recipientAccountId": "111111111111",
                "userIdentity": {"type": "IAMUser", "userName": f"bench{n}"},
            }
            body = {"detail-type": "AWS API Call via CloudTrail", "detail": record}
            began = time.perf_counter()
            sqs.send_message(QueueUrl=queue, MessageBody=orjson.dumps(body).decode())
            while count_events(db) <= before:
                time.sleep(0.005)
            latencies.append(time.perf_counter() - began)
            time.sleep(0.2)
        return latencies
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--samples", type=int, default=15)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=BENCH / "out")
    args = parser.parse_args()
    os.environ.update(bench_env())
    tree = dataset(args.out, args.events, args.seed)
    files = log_files(tree)
    work = args.out / "s3-work"
    figures: dict[str, list[float]] = {"files": [], "s3": [], "sqs": [], "moto": []}
    with moto_server(args.out / "moto.log") as endpoint:
        bucket, keys = upload(endpoint, tree, files)
        for run in range(args.runs):
            seconds, stored = backfill(work, {"type": "cloudtrail_files", "path": str(tree)})
            figures["files"].append(stored / seconds)
            s3_source = {
                "type": "cloudtrail_s3",
                "bucket": bucket,
                "endpoint_url": endpoint,
                "region": REGION,
            }
            seconds, stored = backfill(work, s3_source)
            figures["s3"].append(stored / seconds)
            queue = notify(endpoint, bucket, keys)
            sqs_source = {
                "type": "cloudtrail_sqs",
                "queue_url": queue,
                "endpoint_url": endpoint,
                "region": REGION,
                "wait_time_secs": 1,
            }
            seconds, stored = backfill(work, sqs_source)
            figures["sqs"].append(stored / seconds)
            figures["moto"].append(args.events / moto_ceiling(endpoint, bucket, keys))
            print(
                f"run {run + 1}: " + json.dumps({k: round(v[-1]) for k, v in figures.items()}),
                file=sys.stderr,
            )
        latencies = eventbridge_latency(endpoint, args.out / "eb-work", args.samples)
    medians = {f"{name}_events_per_sec": statistics.median(v) for name, v in figures.items()}
    result = {
        "events": args.events,
        "files": len(files),
        "runs": args.runs,
        **{k: round(v) for k, v in medians.items()},
        # Each run's own ratio, then the median: a run slowed by a noisy neighbour
        # slows its baseline too.
        **{
            f"{name}_vs_files": round(
                statistics.median(
                    a / b for a, b in zip(figures[name], figures["files"], strict=True)
                ),
                2,
            )
            for name in ("s3", "sqs")
        },
        "eventbridge_median_secs": round(statistics.median(latencies), 3),
        "eventbridge_max_secs": round(max(latencies), 3),
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs",
        "python": platform.python_version(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
