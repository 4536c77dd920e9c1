"""Post-implementation reviews over a large timeline.

    python bench/review.py --events 1000000 --changes 500 --runs 3

Builds (once, cached under bench/out/) a store of N CloudTrail events spread over
30 days (examples/ctgen.py, stored with ``auditcorr backfill`` as bench/backfill.py
does) and --changes change records made from the month's own writes: each record
names a write's principal as implementer, its account, region and action as scope,
and a window of an hour around it, so reviews find work in and out of scope.

Then, in the same run:

* baseline: one indexed timeline query (a user's events in an hour, first 100), the
  cheapest question a review asks the store;
* p50/p95 over --samples records of one review (``book_for`` + ``review``) in-process
  on a read-only store, as ``GET /api/v1/changes/{id}/review`` runs it;
* ``auditcorr changes --review ID`` end to end (process start included), median;
* the period report ``auditcorr changes --review --since ... --until ... --format csv``
  over the whole month, end to end, against ``auditcorr changes --since ... --json`` (the
  same records listed, not reviewed) as its baseline.

Commands are timed by the wall clock and by their CPU time (user + system): on a shared
machine the first includes waiting for a core, the second is the cost on an idle one.

Prints one JSON object (medians over --runs of each run's figures).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from backfill import ROOT, backfill, ctgen

from connectors.base import RawBatch
from connectors.contracts.change_record import parse_record
from daemon import logtypes
from daemon.changes.review import book_for, review
from daemon.identity import IdentityMap
from daemon.normalize import Limits, cloudtrail
from daemon.process import Job, init_worker, process
from daemon.store.base import EventQuery
from daemon.store.sqlite import SqliteStore

START = datetime(2026, 10, 1, tzinfo=UTC)
SPAN = timedelta(days=30)
CANDIDATES = 20
"""Writes kept per change record wanted, to pick records spread over the month from."""


def month_dataset(out: Path, events: int, changes: int, seed: int) -> tuple[Path, Path]:
    """A CloudTrail tree of ``events`` over 30 days, and a file of writes sampled from it."""
    tree = out / f"month-{events}-{seed}"
    writes = out / f"month-{events}-{seed}-writes.json"
    if not (tree / ".complete").exists():
        began = time.perf_counter()
        kept: list[dict[str, Any]] = []
        every = max(1, events // (changes * CANDIDATES))

        def sampled() -> Iterator[dict[str, Any]]:
            for index, record in enumerate(
                ctgen.generate_records(events, start=START, span=SPAN, seed=seed)
            ):
                if index % every == 0 and record.get("readOnly") is False:
                    kept.append(record)
                yield record

        files = ctgen.write_tree(tree, sampled(), organization_id="o-bench00001")
        writes.write_bytes(orjson.dumps(kept))
        (tree / ".complete").write_text(str(len(files)))
        print(
            f"generated {events} events in {len(files)} files in "
            f"{time.perf_counter() - began:.0f}s",
            file=sys.stderr,
        )
    return tree, writes


def change_records(writes: Path, changes: int, seed: int) -> list[dict[str, Any]]:
    """One record per sampled change-class write: its principal, account, region and
    action, a window of an hour around it; one in ten cancelled."""
    docs = [cloudtrail.normalize(r).to_document() for r in orjson.loads(writes.read_bytes())]
    docs = [d for d in docs if logtypes.is_change(d) and d.get("user", {}).get("name")]
    chosen = sorted(random.Random(seed).sample(docs, min(changes, len(docs))), key=_time)
    records = []
    for number, doc in enumerate(chosen):
        moment = _time(doc)
        cloud = doc["cloud"]
        records.append(
            {
                "id": f"CHG{900000 + number}",
                "title": f"bench change {number}",
                "state": "cancelled" if number % 10 == 9 else "approved",
                "implementers": [doc["user"]["name"]],
                "window": {
                    "start": _iso(moment - timedelta(minutes=20)),
                    "end": _iso(moment + timedelta(minutes=40)),
                },
                "scope": {
                    "aws_accounts": [cloud["account"]["id"]],
                    "aws_regions": [cloud["region"]],
                    "actions": [logtypes.get("cloudtrail").change_action(doc)],
                },
                "updated": _iso(moment - timedelta(days=1)),
            }
        )
    return records


def _time(doc: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(doc["@timestamp"])


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def store_for(out: Path, events: int, changes: int, seed: int) -> tuple[Path, list[str]]:
    """The store with the month's events and change records, built once."""
    tree, writes = month_dataset(out, events, changes, seed)
    work = out / f"review-store-{events}-{changes}-{seed}"
    db = work / "state" / "timeline.db"
    records = change_records(writes, changes, seed)
    if not (work / ".complete").exists():
        result = backfill(tree, work, None)
        print(f"stored {events} events: {json.dumps(result)}", file=sys.stderr)
        store = SqliteStore(db, retention_days=0)
        init_worker(store.dictionaries())
        batch = RawBatch("change", "bench_changes", orjson.dumps(records))
        store.write([process(Job("bench_changes", batch, store.codec, Limits()))])
        store.close()
        (work / ".complete").write_text("ok")
    return db, [r["id"] for r in records]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def in_process(db: Path, ids: list[str], samples: int, seed: int) -> dict[str, float]:
    """Baseline query and single reviews on one read-only store, in milliseconds."""
    store = SqliteStore(db, retention_days=0, readonly=True)
    init_worker(store.dictionaries())
    now = datetime.now(UTC)
    base: list[float] = []
    took: list[float] = []
    took_cpu: list[float] = []
    verdicts: dict[str, int] = {}
    try:
        for change_id in random.Random(seed).sample(ids, min(samples, len(ids))):
            current = store.change_record(change_id)
            assert current is not None, change_id
            record = parse_record(current)
            began = time.perf_counter()
            store.page(
                EventQuery(
                    user=record.implementers[0], since=record.start, until=record.end, limit=100
                )
            )
            base.append((time.perf_counter() - began) * 1000)
            began, cpu = time.perf_counter(), time.process_time()
            book = book_for(store, record.start, record.end, IdentityMap())
            found = review(store, record, book, now=now)
            took.append((time.perf_counter() - began) * 1000)
            took_cpu.append((time.process_time() - cpu) * 1000)
            verdicts[found.verdict] = verdicts.get(found.verdict, 0) + 1
    finally:
        store.close()
    return {
        "baseline_query_p50_ms": statistics.median(base),
        "baseline_query_p95_ms": percentile(base, 0.95),
        "review_p50_ms": statistics.median(took),
        "review_p95_ms": percentile(took, 0.95),
        "review_max_ms": max(took),
        "review_cpu_p95_ms": percentile(took_cpu, 0.95),
        **{f"sampled_{verdict}": float(count) for verdict, count in verdicts.items()},
    }


def cli_seconds(config: Path, *args: str) -> tuple[float, float, str]:
    """Wall-clock and CPU seconds (user + system) of one ``auditcorr changes`` command.

    On a shared machine the wall clock waits for a core; the CPU time is what the
    command costs on an idle one."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    done = subprocess.run(
        [str(ROOT / ".venv/bin/auditcorr"), "changes", "--config", str(config), *args],
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - used.ru_utime + after.ru_stime - used.ru_stime
    return wall, cpu, done.stdout


def end_to_end(db: Path, ids: list[str]) -> dict[str, float]:
    config = db.parent.parent / "review-config.toml"
    config.write_text(f'[daemon]\nstate_dir = "{db.parent}"\n[store]\nretention_days = 0\n')
    period = ["--since", _iso(START), "--until", _iso(START + SPAN)]
    one, one_cpu, _ = cli_seconds(config, "--review", ids[len(ids) // 2])
    listed, listed_cpu, _ = cli_seconds(config, *period, "--json")
    report, report_cpu, text = cli_seconds(config, "--review", *period, "--format", "csv")
    rows = text.splitlines()[1:]
    verdicts: dict[str, int] = {}
    for row in rows:
        verdict = row.split(",")[5]
        verdicts[verdict] = verdicts.get(verdict, 0) + 1
    return {
        "cli_review_one_s": one,
        "cli_review_one_cpu_s": one_cpu,
        "cli_list_period_s": listed,
        "cli_list_period_cpu_s": listed_cpu,
        "cli_period_report_s": report,
        "cli_period_report_cpu_s": report_cpu,
        "period_report_vs_list": report / listed,
        "period_changes": float(len(rows)),
        **{f"period_{verdict}": float(count) for verdict, count in verdicts.items()},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--changes", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--samples", type=int, default=100, help="records reviewed per run")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = parser.parse_args()
    db, ids = store_for(args.out, args.events, args.changes, args.seed)
    runs = []
    for run in range(args.runs):
        figures = in_process(db, ids, args.samples, args.seed + run)
        figures.update(end_to_end(db, ids))
        figures["review_vs_baseline_p95"] = (
            figures["review_p95_ms"] / figures["baseline_query_p95_ms"]
        )
        runs.append(figures)
        print(json.dumps({"run": run, **figures}), file=sys.stderr)
    names = sorted({name for figures in runs for name in figures})
    print(
        json.dumps(
            {
                "events": args.events,
                "changes": len(ids),
                "runs": args.runs,
                "machine": f"{os.cpu_count()} CPU, {platform.platform()}, "
                f"Python {platform.python_version()}",
                "load_average": os.getloadavg(),
                "median": {
                    name: statistics.median(f[name] for f in runs if name in f) for name in names
                },
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
