"""Copy rate of ``auditcorr migrate-store`` from SQLite to PostgreSQL, against backfill.

    python bench/migrate.py --events 100000 --runs 3 \\
        --store-dsn "host=127.0.0.1 user=postgres dbname=auditcorr_bench"

Each run backfills the generated CloudTrail tree (``bench/backfill.py``'s data
set) into a fresh SQLite store, which is the same-run baseline, then copies
that store with ``auditcorr migrate-store`` into a PostgreSQL schema made for
the run and dropped after it.  Prints one JSON object: medians of both rates,
each run's ratio of copy to backfill, and the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

from backfill import ROOT, backfill, bench_schema, dataset


def migrate(source: Path, work: Path, dsn: str) -> tuple[float, int]:
    """Seconds of one ``migrate-store`` into the schema of ``dsn``; events copied."""
    target = work / "postgresql.toml"
    target.write_text(
        f'[daemon]\nstate_dir = "{work / "state-pg"}"\nlog_format = "json"\n'
        '[store]\ntype = "postgresql"\ndsn = "env:AUDITCORR_BENCH_DSN"\nretention_days = 0\n'
    )
    began = time.perf_counter()
    done = subprocess.run(
        [str(ROOT / ".venv/bin/auditcorr"), "migrate-store", "--from", str(source),
         "--to", str(target)],
        capture_output=True,
        text=True,
        env={**os.environ, "AUDITCORR_BENCH_DSN": dsn},
        check=False,
    )  # fmt: skip
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"migrate-store failed ({done.returncode}): {done.stderr}")
    found = re.search(r"copied (\d+) events", done.stdout)
    if found is None:
        raise SystemExit(f"no summary in: {done.stdout}")
    return seconds, int(found.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    parser.add_argument("--store-dsn", required=True, help="PostgreSQL database to copy into")
    args = parser.parse_args()
    tree = dataset(args.out, args.events, args.seed)
    load_before = os.getloadavg()
    schema = f"auditcorr_migrate_{os.getpid()}"
    backfills, copies, ratios = [], [], []
    for run in range(args.runs):
        work = args.out / "work-migrate"
        built = backfill(tree, work, None, None)
        backfills.append(built["stored"] / built["seconds"])
        dsn = bench_schema(args.store_dsn, schema, create=True)
        try:
            seconds, copied = migrate(work / "config.toml", work, dsn)
        finally:
            bench_schema(args.store_dsn, schema, create=False)
        copies.append(copied / seconds)
        ratios.append(copies[-1] / backfills[-1])
        print(
            f"run {run + 1}: backfill {backfills[-1]:.0f} ev/s,"
            f" migrate-store {copies[-1]:.0f} ev/s ({copied} events)",
            file=sys.stderr,
        )
    report = {
        "events": args.events,
        "runs": args.runs,
        "backfill_sqlite_events_per_sec": round(statistics.median(backfills)),
        "migrate_events_per_sec": round(statistics.median(copies)),
        "migrate_over_backfill_per_run": [round(r, 2) for r in ratios],
        "migrate_over_backfill_median": round(statistics.median(ratios), 2),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
