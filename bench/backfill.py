"""Backfill throughput, store size, memory and query latency, against the parse floor.

    python bench/backfill.py --events 1000000 --runs 3

Generates N realistic CloudTrail events in the AWS file layout (cached under
bench/out/), then, in the same run:

* floor: decompress and parse every file with isal + orjson, nothing else,
  in one process: the speed limit of a single core;
* backfill: ``auditcorr backfill`` into a fresh SQLite store with the full-text
  index, timed from start to exit, with the peak RSS and the CPU time of the
  whole process tree (daemon plus worker processes) sampled from /proc;
* store size per event, and the median latency of full-text and field queries
  over the stored events;
* with ``--store-dsn``, the same backfill and queries into PostgreSQL, each run
  right after the SQLite one, in a schema of its own that is dropped after.

Prints one JSON object with every figure (medians over --runs) and the ratio
of backfill to floor (and of PostgreSQL to SQLite).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import psycopg
from isal import igzip

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))

import ctgen  # noqa: E402
from harness import tree_cpu_secs, tree_rss  # noqa: E402

from daemon.logtypes import normalize_record  # noqa: E402
from daemon.store.base import EventQuery, Store  # noqa: E402
from daemon.store.postgres import PostgresStore  # noqa: E402
from daemon.store.sqlite import SqliteStore  # noqa: E402

START = datetime(2026, 10, 1, tzinfo=UTC)


def dataset(out: Path, events: int, seed: int) -> Path:
    tree = out / f"data-{events}-{seed}"
    marker = tree / ".complete"
    if not marker.exists():
        shutil.rmtree(tree, ignore_errors=True)
        began = time.perf_counter()
        records = ctgen.generate_records(events, start=START, span=timedelta(days=1), seed=seed)
        files = ctgen.write_tree(tree, records, organization_id="o-bench00001")
        marker.write_text(str(len(files)))
        print(
            f"generated {events} events in {len(files)} files in "
            f"{time.perf_counter() - began:.0f}s",
            file=sys.stderr,
        )
    return tree


def log_files(tree: Path) -> list[Path]:
    return sorted(tree.rglob("*.json.gz"))


def floor(files: list[Path]) -> tuple[float, int]:
    """Seconds to decompress and parse every file in one process; events seen."""
    began = time.perf_counter()
    count = 0
    for path in files:
        count += len(orjson.loads(igzip.decompress(path.read_bytes()))["Records"])
    return time.perf_counter() - began, count


def bench_schema(dsn: str, schema: str, *, create: bool) -> str:
    """Make (or drop) the schema a PostgreSQL run writes in; returns the DSN that uses it."""
    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE".encode())
        if create:
            db.execute(f"CREATE SCHEMA {schema}".encode())
    return f"{dsn} options='-c search_path={schema}'"


def schema_bytes(dsn: str) -> int:
    """Bytes of every table of the schema ``dsn`` uses, indexes and TOAST included."""
    with psycopg.connect(dsn) as db:
        row = db.execute(
            "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'm')"
        ).fetchone()
    return int(row[0] or 0) if row else 0


def backfill(
    tree: Path, work: Path, workers: int | None, dsn: str | None = None
) -> dict[str, float]:
    """One ``auditcorr backfill`` into SQLite, or into PostgreSQL when ``dsn`` is given."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    config = work / "config.toml"
    lines = [
        "[daemon]",
        f'state_dir = "{work / "state"}"',
        'log_format = "json"',
    ]
    if workers:
        lines.append(f"workers = {workers}")
    lines += ["[store]"]
    if dsn:
        lines += ['type = "postgresql"', 'dsn = "env:AUDITCORR_BENCH_DSN"']
    lines += [
        "retention_days = 0",
        "[sources.bench]",
        'type = "cloudtrail_files"',
        f'path = "{tree}"',
    ]
    config.write_text("\n".join(lines) + "\n")
    began = time.perf_counter()
    proc = subprocess.Popen(
        [str(ROOT / ".venv/bin/auditcorr"), "backfill", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "AUDITCORR_BENCH_DSN": dsn or ""},
    )
    peak = peak_main = 0
    cpu: dict[int, float] = {}
    """Each process's CPU seconds when last seen: its last 0.2 s may be missed."""
    done = threading.Event()

    def sample() -> None:
        nonlocal peak, peak_main
        while not done.is_set():
            own, total = tree_rss(proc.pid)
            peak, peak_main = max(peak, total), max(peak_main, own)
            cpu.update(tree_cpu_secs(proc.pid))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = proc.communicate()
    seconds = time.perf_counter() - began
    done.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"backfill failed ({proc.returncode}): {out.decode()}")
    summary = dict(part.split("=", 1) for part in out.decode().strip().splitlines()[-1].split()[1:])
    if dsn:
        size = schema_bytes(dsn)
    else:
        db = work / "state" / "timeline.db"
        size = sum(p.stat().st_size for p in db.parent.glob("timeline.db*"))
    return {
        "seconds": seconds,
        "cpu_seconds": sum(cpu.values()),
        "cpu_main_seconds": cpu.get(proc.pid, 0.0),
        "stored": float(summary["stored"]),
        "peak_rss_mb": peak / 2**20,
        "peak_rss_main_mb": peak_main / 2**20,
        "db_bytes": float(size),
    }


def _median_per_event(runs: list[dict[str, float]], seconds: str) -> float:
    return round(statistics.median(r[seconds] / r["stored"] * 1e6 for r in runs), 1)


def queries(store: Store, samples: int = 9) -> dict[str, float]:
    """Median milliseconds of typical timeline queries (newest 100 first)."""
    probe = store.search(EventQuery(limit=2000))
    user = next(d["user"]["name"] for d in probe if d.get("user", {}).get("name"))
    ip = next(d["source"]["ip"] for d in probe if d.get("source", {}).get("ip"))
    cases = {
        "fts_common_word": EventQuery(text="DescribeInstances"),
        "fts_rare_word": EventQuery(text="StopLogging"),
        "fts_two_words": EventQuery(text=f"{user} AccessDenied"),
        "fts_ip": EventQuery(text=ip),
        "field_user": EventQuery(user=user),
        "field_user_and_failure": EventQuery(user=user, outcome="failure"),
        "time_range": EventQuery(
            since=START + timedelta(hours=5), until=START + timedelta(hours=6)
        ),
    }
    figures = {}
    for name, query in cases.items():
        times = []
        for _ in range(samples):
            began = time.perf_counter()
            store.search(query)
            times.append((time.perf_counter() - began) * 1000)
        figures[name] = statistics.median(times)
    store.close()
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    parser.add_argument(
        "--store-dsn",
        default=None,
        help="also backfill into this PostgreSQL database (in a schema made and dropped here)",
    )
    args = parser.parse_args()
    tree = dataset(args.out, args.events, args.seed)
    files = log_files(tree)
    floors, runs, pg_runs = [], [], []
    schema = f"auditcorr_bench_{os.getpid()}"
    pg_dsn = None
    for run in range(args.runs):
        seconds, count = floor(files)
        floors.append(count / seconds)
        result = backfill(tree, args.out / "work", args.workers, None)
        runs.append(result)
        line = (
            f"run {run + 1}: floor {floors[-1]:.0f} ev/s, backfill "
            f"{result['stored'] / result['seconds']:.0f} ev/s,"
            f" {result['cpu_seconds'] / result['stored'] * 1e6:.0f} µs CPU/event"
            f" ({result['cpu_main_seconds'] / result['stored'] * 1e6:.0f} in the daemon process),"
            f" rss {result['peak_rss_mb']:.0f} MB"
        )
        if args.store_dsn:
            pg_dsn = bench_schema(args.store_dsn, schema, create=True)
            pg = backfill(tree, args.out / "work-pg", args.workers, pg_dsn)
            pg_runs.append(pg)
            line += f", postgresql {pg['stored'] / pg['seconds']:.0f} ev/s"
        print(line, file=sys.stderr)
    sqlite_store = SqliteStore(
        args.out / "work" / "state" / "timeline.db",
        retention_days=0,
        readonly=True,
        normalize=normalize_record,
    )
    query_ms = queries(sqlite_store)
    sqlite_store.close()
    rates = [r["stored"] / r["seconds"] for r in runs]
    report = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()} cores, {platform.machine()},"
        f" Python {platform.python_version()}",
        "events": args.events,
        "files": len(files),
        "runs": args.runs,
        "floor_events_per_sec": round(statistics.median(floors)),
        "backfill_events_per_sec": round(statistics.median(rates)),
        "ratio_to_floor": round(statistics.median(rates) / statistics.median(floors), 3),
        "cpu_us_per_event": _median_per_event(runs, "cpu_seconds"),
        "cpu_main_us_per_event": _median_per_event(runs, "cpu_main_seconds"),
        "peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs)),
        "peak_rss_main_process_mb": round(max(r["peak_rss_main_mb"] for r in runs)),
        "db_bytes_per_event": round(statistics.median(r["db_bytes"] for r in runs) / args.events),
        "query_median_ms": {k: round(v, 2) for k, v in query_ms.items()},
    }
    if pg_dsn:
        pg_store = PostgresStore(
            pg_dsn, retention_days=0, readonly=True, normalize=normalize_record
        )
        pg_query_ms = queries(pg_store)
        pg_store.close()
        bench_schema(args.store_dsn, schema, create=False)
        pg_rates = [r["stored"] / r["seconds"] for r in pg_runs]
        report["postgresql"] = {
            "backfill_events_per_sec": round(statistics.median(pg_rates)),
            # Each run's own PostgreSQL/SQLite ratio, then their median.
            "ratio_to_sqlite": round(
                statistics.median(p / s for p, s in zip(pg_rates, rates, strict=True)), 3
            ),
            "peak_rss_mb": round(max(r["peak_rss_mb"] for r in pg_runs)),
            "db_bytes_per_event": round(
                statistics.median(r["db_bytes"] for r in pg_runs) / args.events
            ),
            "query_median_ms": {k: round(v, 2) for k, v in pg_query_ms.items()},
        }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
