"""Store write rate of syslog lines that all carry one time stamp, against the same
number of lines with spread time stamps.

    python bench/samestamp.py --events 1100000 --runs 3
    python bench/samestamp.py --events 200000 --runs 3 \\
        --store-dsn "host=127.0.0.1 user=postgres dbname=auditcorr_bench"

RFC 3164 lines of the bench/syslog.py mix (sshd, sudo, systemd, cron) go
through the decoding workers' own code (``daemon.process.process``, in this
process) in payloads of 1,000 lines, and are written as the pipeline's writer
does: ten payloads (10,000 rows) per transaction, into a fresh store per run.

* same stamp: every line says ``Nov 27 12:00:00``; syslog stamps have no
  fraction of a second, so all events fall in one millisecond and most row
  keys collide once it fills (a millisecond has 2**20 keys);
* spread: the same lines with stamps one hour wide, in time order (about 300
  lines per second of stamps, as a busy relay sends them).

events/s is events stored over the time spent in ``store.write`` (decoding is
not counted: the workers do it on other cores), and cpu_events_per_s the same
over the CPU time this process spent in it: on a shared machine the other
processes' load moves the first much more than the second.  Each run writes
both data sets, spread first; the ratios are same stamp / spread within the
run.  Prints one JSON object with the runs, the medians and the load average
before and after.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg

from connectors.base import RawBatch
from connectors.syslog.batch import header
from daemon.normalize import Limits
from daemon.process import Job, Processed, init_worker, process
from daemon.store.base import Store
from daemon.store.postgres import PostgresStore
from daemon.store.sqlite import SqliteStore

HERE = Path(__file__).resolve().parent

RECEIVED_NS = 1_764_244_800 * 10**9
"""2025-11-27 12:00 UTC: the year the year-less stamps are read in."""
PAYLOAD_LINES = 1_000
PAYLOADS_PER_WRITE = 10
SPREAD_SECONDS = 3_600


def load_templates() -> tuple[str, ...]:
    """bench/syslog.py's line templates (loaded by path: ``syslog`` is a stdlib name)."""
    spec = importlib.util.spec_from_file_location("bench_syslog", HERE / "syslog.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return tuple(module.TEMPLATES)


def lines(templates: tuple[str, ...], start: int, count: int, total: int, spread: bool) -> bytes:
    """Lines ``start`` to ``start + count`` of a data set of ``total``."""
    out = []
    for i in range(start, start + count):
        second = i * SPREAD_SECONDS // total if spread else 0
        out.append(
            templates[i % len(templates)].format(
                m=second // 60,
                s=second % 60,
                h=i % 7,
                pid=1000 + i % 50000,
                u=i % 997,
                o=i % 250,
                port=1024 + i % 60000,
            )
        )
    return ("\n".join(out) + "\n").encode()


def writes(
    store: Store, templates: tuple[str, ...], total: int, spread: bool
) -> Iterator[list[Processed]]:
    """The data set in transactions, each decoded with the store's codec of the moment."""
    limits = Limits()
    head = header(RECEIVED_NS, "UTC")
    step = PAYLOAD_LINES * PAYLOADS_PER_WRITE
    for start in range(0, total, step):
        batches = []
        for first in range(start, min(start + step, total), PAYLOAD_LINES):
            count = min(PAYLOAD_LINES, total - first)
            payload = head + lines(templates, first, count, total, spread)
            batch = RawBatch("syslog", f"bench:{first}", payload, [])
            job = Job("bench", batch, store.codec, limits, want_samples=store.wants_samples)
            batches.append(process(job))
        yield batches


def open_store(work: Path, dsn: str | None) -> Store:
    if dsn is None:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        return SqliteStore(work / "timeline.db", retention_days=0)
    schema = "samestamp_bench"
    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE".encode())
        db.execute(f"CREATE SCHEMA {schema}".encode())
    return PostgresStore(f"{dsn} options='-c search_path={schema}'", retention_days=0)


def one_run(
    work: Path, dsn: str | None, templates: tuple[str, ...], total: int, spread: bool
) -> dict[str, Any]:
    """Write one data set into a fresh store; events/s over the time spent writing."""
    store = open_store(work, dsn)
    init_worker(store.dictionaries())
    spent = 0.0
    cpu = 0.0
    stored = 0
    slowest = 0.0
    try:
        for batches in writes(store, templates, total, spread):
            began, began_cpu = time.perf_counter(), time.process_time()
            result = store.write(batches)
            took = time.perf_counter() - began
            cpu += time.process_time() - began_cpu
            spent += took
            slowest = max(slowest, took)
            stored += result.stored
        count = store.count()
    finally:
        store.close()
    if count != total or stored != total:
        raise SystemExit(f"stored {stored} (count {count}) of {total}")
    return {
        "events_per_s": round(total / spent),
        "cpu_events_per_s": round(total / cpu),
        "write_seconds": round(spent, 1),
        "cpu_seconds": round(cpu, 1),
        "slowest_write_s": round(slowest, 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--store-dsn", help="PostgreSQL instead of a SQLite file")
    parser.add_argument("--work", type=Path, default=None, help="folder for the SQLite store")
    args = parser.parse_args()
    templates = load_templates()
    work = args.work or Path(tempfile.mkdtemp(prefix="samestamp-"))
    load_before = os.getloadavg()
    runs = []
    for _ in range(args.runs):
        spread = one_run(work, args.store_dsn, templates, args.events, spread=True)
        same = one_run(work, args.store_dsn, templates, args.events, spread=False)
        ratio = round(same["events_per_s"] / spread["events_per_s"], 3)
        cpu_ratio = round(same["cpu_events_per_s"] / spread["cpu_events_per_s"], 3)
        runs.append({"spread": spread, "same_stamp": same, "ratio": ratio, "cpu_ratio": cpu_ratio})
        print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
    shutil.rmtree(work, ignore_errors=True)
    summary = {
        "machine": f"{platform.machine()} {platform.python_version()} {os.cpu_count()} cpus",
        "engine": "postgresql" if args.store_dsn else "sqlite",
        "events": args.events,
        "runs": runs,
        "spread_events_per_s_median": statistics.median(r["spread"]["events_per_s"] for r in runs),
        "same_stamp_events_per_s_median": statistics.median(
            r["same_stamp"]["events_per_s"] for r in runs
        ),
        "ratio_median": statistics.median(r["ratio"] for r in runs),
        "cpu_ratio_median": statistics.median(r["cpu_ratio"] for r in runs),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
