"""HTTP API latency and export rate over a large timeline.

    python bench/query.py --events 1000000 --runs 3

Builds (once, cached under bench/out/) a store of N CloudTrail events with
``auditcorr backfill`` (data from bench/backfill.py), starts ``auditcorr run``
on it with an ``[api]`` section, then, in the same run:

* baseline: ``GET /healthz``, the cost of an HTTP round trip with no query;
* p50/p95 over --requests requests of the first page of ``/api/v1/events``
  unfiltered, with a full-text term, with a user and a one-hour range, and of
  ``/api/v1/histogram`` over 7 days;
* the same queries called on the store directly, in-process: what the HTTP
  layer adds is the difference;
* ``auditcorr export --format ndjson`` of the first --export-hours of the
  timeline, events per second, against reading the same documents from the
  store without writing them.

Prints one JSON object (medians over --runs of each run's percentiles).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
from backfill import ROOT, START, backfill, dataset

from daemon.export import documents
from daemon.logtypes import normalize_record
from daemon.store.base import EventQuery
from daemon.store.sqlite import SqliteStore

UNTIL = START + timedelta(days=7)


def store_for(out: Path, events: int, seed: int) -> Path:
    """The store holding the benchmark's events, built once."""
    work = out / f"query-store-{events}-{seed}"
    db = work / "state" / "timeline.db"
    if not (work / ".complete").exists():
        result = backfill(dataset(out, events, seed), work, None)
        print(f"stored {events} events: {json.dumps(result)}", file=sys.stderr)
        (work / ".complete").write_text("ok")
    return db


def start_daemon(db: Path, work: Path) -> tuple[subprocess.Popen[bytes], str]:
    config = work / "api-config.toml"
    config.write_text(
        "\n".join(
            [
                "[daemon]",
                f'state_dir = "{work}"',
                'log_format = "json"',
                "[store]",
                f'path = "{db}"',
                "retention_days = 0",
                "[api]",
                'listen = "127.0.0.1:0"',
            ]
        )
        + "\n"
    )
    log = work / "api.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [str(ROOT / ".venv/bin/auditcorr"), "run", "--config", str(config)],
            stdout=sink,
            stderr=sink,
            stdin=subprocess.DEVNULL,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for line in log.read_text().splitlines():
            if '"api_listening"' in line:
                return proc, json.loads(line)["url"]
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"the daemon did not start its API:\n{log.read_text()[-2000:]}")


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))], 2),
    }


def cases(probe: list[dict[str, Any]]) -> dict[str, tuple[str, EventQuery | None]]:
    user = next(d["user"]["name"] for d in probe if d.get("user", {}).get("name"))
    since, until = START + timedelta(hours=5), START + timedelta(hours=6)
    return {
        "healthz (baseline)": ("/healthz", None),
        "events first page": ("/api/v1/events", EventQuery()),
        "events full-text term": (
            "/api/v1/events?q=DescribeInstances",
            EventQuery(text="DescribeInstances"),
        ),
        "events user + 1 h range": (
            f"/api/v1/events?user={user}&since={since.isoformat()}&until={until.isoformat()}",
            EventQuery(user=user, since=since, until=until),
        ),
        "histogram 7 days": (
            f"/api/v1/histogram?since={START.isoformat()}&until={UNTIL.isoformat()}",
            None,
        ),
    }


async def over_http(url: str, paths: dict[str, str], requests: int) -> dict[str, Any]:
    figures = {}
    async with aiohttp.ClientSession() as session:
        for name, path in paths.items():
            times = []
            for _ in range(requests):
                began = time.perf_counter()
                async with session.get(url.rstrip("/") + path.replace("+", "%2B")) as answer:
                    await answer.read()
                    assert answer.status == 200, (path, answer.status)
                times.append((time.perf_counter() - began) * 1000)
            figures[name] = percentiles(times)
    return figures


def in_process(
    store: SqliteStore, queries: dict[str, EventQuery | None], requests: int
) -> dict[str, Any]:
    figures = {}
    for name, query in queries.items():
        call = (
            (lambda q=query: store.page(q))
            if query is not None
            else (lambda: store.histogram(START, UNTIL, 180))
        )
        if name.startswith("healthz"):
            continue
        times = []
        for _ in range(requests):
            began = time.perf_counter()
            call()
            times.append((time.perf_counter() - began) * 1000)
        figures[name] = percentiles(times)
    return figures


def export_rate(config: Path, hours: float) -> float:
    until = (START + timedelta(hours=hours)).isoformat()
    began = time.perf_counter()
    done = subprocess.run(
        [
            str(ROOT / ".venv/bin/auditcorr"),
            "export",
            "--config",
            str(config),
            "--format",
            "ndjson",
            "--until",
            until,
            "-o",
            os.devnull,
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - began
    count = int(done.stderr.strip().splitlines()[-1].split()[1])  # "export: N events"
    return count / seconds


def read_rate(store: SqliteStore, hours: float) -> float:
    began = time.perf_counter()
    count = sum(1 for _ in documents(store, EventQuery(until=START + timedelta(hours=hours))))
    return count / (time.perf_counter() - began)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--export-hours", type=float, default=2.0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = parser.parse_args()
    db = store_for(args.out, args.events, args.seed)
    work = db.parent.parent
    store = SqliteStore(db, retention_days=0, readonly=True, normalize=normalize_record)
    chosen = cases(store.search(EventQuery(limit=2000)))
    runs: list[dict[str, Any]] = []
    proc, url = start_daemon(db, work)
    try:
        for _ in range(args.runs):
            http = asyncio.run(over_http(url, {k: v[0] for k, v in chosen.items()}, args.requests))
            direct = in_process(store, {k: v[1] for k, v in chosen.items()}, args.requests)
            runs.append(
                {
                    "http": http,
                    "store": direct,
                    "export_events_per_sec": export_rate(
                        work / "api-config.toml", args.export_hours
                    ),
                    "read_events_per_sec": read_rate(store, args.export_hours),
                }
            )
    finally:
        proc.terminate()
        proc.wait(30)
        store.close()

    def median(path: list[str]) -> float:
        values = []
        for run in runs:
            value: Any = run
            for part in path:
                value = value[part]
            values.append(value)
        return round(statistics.median(values), 2)

    result: dict[str, Any] = {
        "events": args.events,
        "runs": args.runs,
        "requests_per_case": args.requests,
        "machine": f"{platform.machine()} {os.cpu_count()} cpu, python {platform.python_version()}",
        "http": {
            name: {p: median(["http", name, p]) for p in ("p50_ms", "p95_ms")} for name in chosen
        },
        "store": {
            name: {p: median(["store", name, p]) for p in ("p50_ms", "p95_ms")}
            for name in chosen
            if not name.startswith("healthz")
        },
        "export_events_per_sec": median(["export_events_per_sec"]),
        "read_events_per_sec": median(["read_events_per_sec"]),
    }
    result["export_to_read_ratio"] = round(
        result["export_events_per_sec"] / result["read_events_per_sec"], 2
    )
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
