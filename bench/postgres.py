"""Several daemons on one PostgreSQL store: intake of one against two, correlator lag,
leader failover.

    python bench/postgres.py --events 20000 --runs 3 \\
        --store-dsn "host=127.0.0.1 user=postgres dbname=auditcorr_bench"

A generated CloudTrail tree (``bench/backfill.py``'s data set) is put in the
S3 bucket of a moto server started here, with one S3 notification per file
in one SQS queue.  Each run starts one, then two ``auditcorr run`` daemons as
``[cluster]`` members on a fresh PostgreSQL schema (one decoding worker each)
and sends the notifications once every member runs its sources:

* events/s: events stored over the time from the first notification sent
  until every event is in the store;
* correlator lag: from then until the leader has correlated every feed row;
* failover (two daemons): SIGKILL the leader, time until the other member
  logs ``leadership_gained``.

Prints one JSON object: medians over --runs, the ratio of two daemons to one
in each run, and the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import orjson
import psycopg
from backfill import ROOT, bench_schema, dataset, log_files
from moto.server import ThreadedMotoServer

REGION = "us-east-1"
FAILOVER_SECS = 15


def notification(bucket: str, key: str) -> str:
    """An S3 ObjectCreated notification as S3 sends it to SQS."""
    return orjson.dumps(
        {
            "Records": [
                {
                    "eventSource": "aws:s3",
                    "eventName": "ObjectCreated:Put",
                    "s3": {"bucket": {"name": bucket}, "object": {"key": key}},
                }
            ]
        }
    ).decode()


class Member:
    """One ``auditcorr run`` member in a session of its own."""

    def __init__(
        self, work: Path, name: str, queue: str, endpoint: str, *, cluster: bool = True
    ) -> None:
        """A cluster member on the PostgreSQL store of ``AUDITCORR_BENCH_DSN``, or
        (``cluster=False``) a lone daemon on SQLite in its own state directory."""
        self.name = name
        folder = work / name
        folder.mkdir(parents=True)
        self.config = folder / "config.toml"
        self.log = folder / "daemon.log"
        self.state = folder / "state"
        store = (
            '[store]\ntype = "postgresql"\ndsn = "env:AUDITCORR_BENCH_DSN"\nretention_days = 0\n'
            f'[cluster]\nenabled = true\nmember = "{name}"\nfailover_secs = {FAILOVER_SECS}\n'
            if cluster
            else "[store]\nretention_days = 0\n"
        )
        self.config.write_text(
            f'[daemon]\nstate_dir = "{self.state}"\nworkers = 1\nlog_format = "json"\n'
            + store
            + f'[sources.ct_queue]\ntype = "cloudtrail_sqs"\nqueue_url = "{queue}"\n'
            f'endpoint_url = "{endpoint}"\nregion = "{REGION}"\nwait_time_secs = 1\n'
            "max_messages = 10\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, env: dict[str, str]) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "daemon.cli", "run", "--config", str(self.config)],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
            )

    def logged(self, event: str) -> bool:
        return f'"event": "{event}"' in self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, sig)
        self.proc.wait(60)


def wait(what: str, predicate: Any, timeout: float = 600, interval: float = 0.2) -> float:
    """Seconds until ``predicate`` holds; exits the bench after ``timeout``."""
    began = time.perf_counter()
    while not predicate():
        if time.perf_counter() - began > timeout:
            sys.exit(f"timed out waiting for {what}")
        time.sleep(interval)
    return time.perf_counter() - began


def stored(dsn: str) -> int:
    with psycopg.connect(dsn) as db:
        row = db.execute("SELECT count(*) FROM events WHERE source != 'rules'").fetchone()
    return int(row[0]) if row else 0


def caught_up(dsn: str) -> bool:
    with psycopg.connect(dsn) as db:
        row = db.execute(
            "SELECT (SELECT coalesce(max(seq), 0) FROM ingest_feed),"
            " (SELECT coalesce(max(position), 0) FROM cluster_state)"
        ).fetchone()
    return row is not None and row[0] == row[1]


def leader(dsn: str) -> str | None:
    with psycopg.connect(dsn) as db:
        row = db.execute("SELECT member FROM members WHERE is_leader").fetchone()
    return str(row[0]) if row else None


def one_run(
    members: int,
    files: list[Path],
    tree: Path,
    events: int,
    endpoint: str,
    base_dsn: str,
    work: Path,
) -> dict[str, float]:
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=REGION)
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name=REGION)
    bucket = f"bench-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    keys = []
    for path in files:
        key = path.relative_to(tree).as_posix()
        s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
        keys.append(key)
    queue = sqs.create_queue(QueueName=bucket)["QueueUrl"]
    dsn = bench_schema(base_dsn, f"bench_cluster{members}", create=True)
    env = {**os.environ, "AUDITCORR_BENCH_DSN": dsn, "PYTHONPATH": str(ROOT)}
    daemons = [Member(work / bucket, f"member{n}", queue, endpoint) for n in range(members)]
    try:
        for daemon in daemons:
            daemon.start(env)
        wait("the members' sources", lambda: all(d.logged("source_started") for d in daemons))
        wait("a leader", lambda: leader(dsn) is not None)
        began = time.perf_counter()
        for start in range(0, len(keys), 10):
            sqs.send_message_batch(
                QueueUrl=queue,
                Entries=[
                    {"Id": str(i), "MessageBody": notification(bucket, key)}
                    for i, key in enumerate(keys[start : start + 10])
                ],
            )
        wait("every event", lambda: stored(dsn) >= events, interval=0.5)
        intake = time.perf_counter() - began
        lag = wait("the correlator", lambda: caught_up(dsn), interval=0.1)
        figures = {"events_per_sec": events / intake, "correlator_lag_secs": lag}
        if members > 1:
            first = leader(dsn)
            killed = next(d for d in daemons if d.name == first)
            killed.stop(signal.SIGKILL)
            figures["failover_secs"] = wait(
                "a new leader",
                lambda: any(d.logged("leadership_gained") for d in daemons if d is not killed),
                timeout=120,
                interval=0.1,
            )
        return figures
    finally:
        for daemon in daemons:
            daemon.stop()
        bench_schema(base_dsn, f"bench_cluster{members}", create=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--store-dsn", required=True)
    args = parser.parse_args()
    for name, value in {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        os.environ[name] = value
    out = ROOT / "bench" / "out"
    tree = dataset(out, args.events, args.seed)
    files = log_files(tree)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    load_before = os.getloadavg()
    runs: dict[int, list[dict[str, float]]] = {1: [], 2: []}
    try:
        for run in range(args.runs):
            for members in (1, 2):
                work = out / f"cluster-{os.getpid()}-{run}"
                runs[members].append(
                    one_run(members, files, tree, args.events, endpoint, args.store_dsn, work)
                )
                print(f"run {run + 1}, {members} daemon(s): {runs[members][-1]}", file=sys.stderr)
    finally:
        server.stop()

    def median(members: int, key: str) -> float:
        return round(statistics.median(r[key] for r in runs[members]), 2)

    print(
        json.dumps(
            {
                "events": args.events,
                "files": len(files),
                "runs": args.runs,
                "one_daemon_events_per_sec": median(1, "events_per_sec"),
                "two_daemons_events_per_sec": median(2, "events_per_sec"),
                "two_to_one": [
                    round(two["events_per_sec"] / one["events_per_sec"], 2)
                    for one, two in zip(runs[1], runs[2], strict=True)
                ],
                "correlator_lag_secs": {
                    "one": median(1, "correlator_lag_secs"),
                    "two": median(2, "correlator_lag_secs"),
                },
                "failover_secs": median(2, "failover_secs"),
                "loadavg_before": load_before,
                "loadavg_after": os.getloadavg(),
                "cpus": os.cpu_count(),
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
