"""Filters before the store: backfill rate with and without them, and a dropped record's CPU.

    python bench/filters.py --events 200000 --runs 3

Generates a CloudTrail tree (cached under bench/out/) in which 90% of the records are
S3 data events (``GetObject``/``PutObject``, ``eventCategory`` Data) and 10% the
management events of ``examples/ctgen.py``, then, per run and alternating:

* ``all``: ``auditcorr backfill`` storing every record;
* ``event_categories``: the same with ``event_categories = ["Management"]``
  (data events dropped on the raw record);
* ``drop``: the same with ``drop = ["action:GetObject", "action:PutObject"]``
  (data events dropped after normalizing);

each timed from start to exit into a fresh SQLite store.  Rates are records read
per second; ratios are each run's own, then their median.

Then, in this process on one core, the CPU time per record (``time.process_time``)
of: a stored record (decode, normalize, encode in ``daemon.process.process`` plus
the store transaction), a record dropped by ``event_categories``, and one dropped
by a ``drop`` expression, over the data-event files only.  Prints one JSON object.
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
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from isal import igzip

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))

import ctgen  # noqa: E402

from connectors.base import RawBatch  # noqa: E402
from daemon.logtypes import normalize_record  # noqa: E402
from daemon.normalize import Limits  # noqa: E402
from daemon.process import Job, Processed, init_worker, process  # noqa: E402
from daemon.store.sqlite import SqliteStore  # noqa: E402

START = datetime(2026, 10, 1, tzinfo=UTC)
DATA_PER_MANAGEMENT = 9
"""Data events generated beside each management event: 90% of the trail."""
DATA_ACTIONS = ("GetObject", "PutObject")
MODES: dict[str, list[str]] = {
    "all": [],
    "event_categories": ['event_categories = ["Management"]'],
    "drop": [f"drop = {json.dumps([f'action:{name}' for name in DATA_ACTIONS])}"],
}


def _data_events(record: dict[str, Any], count: int) -> Iterator[dict[str, Any]]:
    """S3 object reads and writes by the same principal at the same moment."""
    for index in range(count):
        name = DATA_ACTIONS[index % 2]
        bucket = f"assets-{record['recipientAccountId']}-{index % 3}"
        key = f"objects/{record['eventID'][:8]}/{index}.bin"
        yield {
            **{k: record[k] for k in ("eventVersion", "userIdentity", "eventTime", "awsRegion")},
            "sourceIPAddress": record.get("sourceIPAddress", "198.51.100.1"),
            "userAgent": "[aws-sdk-go-v2/1.30.3]",
            "eventSource": "s3.amazonaws.com",
            "eventName": name,
            "requestParameters": {"bucketName": bucket, "key": key, "Host": f"{bucket}.s3"},
            "responseElements": None,
            "additionalEventData": {"bytesTransferredIn": 0, "bytesTransferredOut": 5120},
            "requestID": f"{index:016X}",
            "eventID": str(uuid.uuid5(uuid.NAMESPACE_OID, f"{record['eventID']}/{index}")),
            "readOnly": name == "GetObject",
            "resources": [
                {"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{bucket}/{key}"},
                {"type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"},
            ],
            "eventType": "AwsApiCall",
            "managementEvent": False,
            "recipientAccountId": record["recipientAccountId"],
            "eventCategory": "Data",
        }


def _trail(management: int, seed: int, *, data_only: bool) -> Iterator[dict[str, Any]]:
    records = ctgen.generate_records(management, start=START, span=timedelta(days=1), seed=seed)
    for record in records:
        if not data_only:
            yield record
        yield from _data_events(record, DATA_PER_MANAGEMENT)


def dataset(out: Path, events: int, seed: int, *, data_only: bool = False) -> Path:
    """The generated tree (cached): ``events`` records, or only their data events."""
    name = f"filters2-{events}-{seed}" + ("-data" if data_only else "")
    tree = out / name
    marker = tree / ".complete"
    if not marker.exists():
        shutil.rmtree(tree, ignore_errors=True)
        began = time.perf_counter()
        management = events // (DATA_PER_MANAGEMENT + 1)
        files = ctgen.write_tree(
            tree, _trail(management, seed, data_only=data_only), organization_id="o-bench00001"
        )
        marker.write_text(str(len(files)))
        seconds = time.perf_counter() - began
        print(f"generated {name}: {len(files)} files in {seconds:.0f}s", file=sys.stderr)
    return tree


def backfill(tree: Path, work: Path, settings: list[str]) -> dict[str, float]:
    """One ``auditcorr backfill`` of ``tree`` with the source settings given."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    config = work / "config.toml"
    lines = [
        "[daemon]",
        f'state_dir = "{work / "state"}"',
        'log_format = "json"',
        "[store]",
        "retention_days = 0",
        "[sources.bench]",
        'type = "cloudtrail_files"',
        f'path = "{tree}"',
        *settings,
    ]
    config.write_text("\n".join(lines) + "\n")
    began = time.perf_counter()
    done = subprocess.run(
        [str(ROOT / ".venv/bin/auditcorr"), "backfill", "--config", str(config)],
        capture_output=True,
        check=False,
    )
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"backfill failed ({done.returncode}): {done.stdout.decode()}")
    last = done.stdout.decode().strip().splitlines()[-1]
    summary = dict(part.split("=", 1) for part in last.split()[1:])
    return {
        "seconds": seconds,
        "records": float(summary["records"]),
        "stored": float(summary["stored"]),
        "dropped": float(summary["dropped"]),
    }


def cpu_per_record(files: list[Path], work: Path, **filters: Any) -> dict[str, float]:
    """Microseconds of CPU per record to process ``files`` with ``filters``, and to
    store what is kept, in this process (one core)."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    store = SqliteStore(work / "cpu.db", retention_days=0, normalize=normalize_record)
    init_worker(store.dictionaries())
    payloads = [path.read_bytes() for path in files]
    try:
        began = time.process_time()
        results: list[Processed] = []
        for index, payload in enumerate(payloads):
            batch = RawBatch("cloudtrail", f"bench://{index}", payload)
            results.append(process(Job("bench", batch, store.codec, Limits(), **filters)))
        processed = time.process_time() - began
        began = time.process_time()
        for start in range(0, len(results), 10):
            store.write(results[start : start + 10], [])
        written = time.process_time() - began
    finally:
        store.close()
    records = sum(r.records for r in results)
    return {
        "records": records,
        "stored": sum(len(r.rows) for r in results),
        "process_us": processed / records * 1e6,
        "store_us": written / records * 1e6,
        "total_us": (processed + written) / records * 1e6,
    }


def _sample(files: list[Path], records: int) -> list[Path]:
    """The first files that hold at least ``records`` records together."""
    taken, count = [], 0
    for path in files:
        if count >= records:
            break
        taken.append(path)
        count += len(orjson.loads(igzip.decompress(path.read_bytes()))["Records"])
    return taken


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--cpu-records", type=int, default=20_000, help="data events timed for CPU, at least"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = parser.parse_args()
    tree = dataset(args.out, args.events, args.seed)
    runs: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
    for run in range(args.runs):
        order = list(MODES) if run % 2 == 0 else list(reversed(MODES))
        for mode in order:
            runs[mode].append(backfill(tree, args.out / "work-filters", MODES[mode]))
        line = ", ".join(
            f"{mode} {r[-1]['records'] / r[-1]['seconds']:.0f} rec/s" for mode, r in runs.items()
        )
        print(f"run {run + 1}: {line}", file=sys.stderr)

    def rate(mode: str) -> list[float]:
        return [r["records"] / r["seconds"] for r in runs[mode]]

    data_tree = dataset(args.out, args.events, args.seed, data_only=True)
    sample = _sample(sorted(data_tree.rglob("*.gz")), args.cpu_records)
    work = args.out / "work-filters-cpu"
    stored = cpu_per_record(sample, work)
    by_category = cpu_per_record(sample, work, selection={"event_categories": ["Management"]})
    by_drop = cpu_per_record(sample, work, drop=tuple(f"action:{n}" for n in DATA_ACTIONS))
    load = os.getloadavg()
    report = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} cores, {platform.machine()},"
        f" Python {platform.python_version()}",
        "load_average_1_5_15": [round(x, 2) for x in load],
        "events": args.events,
        "data_share": DATA_PER_MANAGEMENT / (DATA_PER_MANAGEMENT + 1),
        "files": len(list(tree.rglob("*.gz"))),
        "runs": args.runs,
        "backfill_records_per_sec": {m: round(statistics.median(rate(m))) for m in MODES},
        "stored": {m: runs[m][0]["stored"] for m in MODES},
        "dropped": {m: runs[m][0]["dropped"] for m in MODES},
        "speedup_over_all": {
            m: round(statistics.median(x / a for x, a in zip(rate(m), rate("all"), strict=True)), 2)
            for m in MODES
            if m != "all"
        },
        "cpu_us_per_record": {
            "stored": round(stored["total_us"], 1),
            "stored_process_only": round(stored["process_us"], 1),
            "dropped_event_categories": round(by_category["total_us"], 1),
            "dropped_drop_expression": round(by_drop["total_us"], 1),
        },
        "cpu_share_of_stored": {
            "event_categories": round(by_category["total_us"] / stored["total_us"], 3),
            "drop_expression": round(by_drop["total_us"] / stored["total_us"], 3),
        },
        "cpu_records": stored["records"],
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
