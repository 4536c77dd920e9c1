"""CPU per event of the decoding workers' path, in one process.

    python bench/worker.py --events 20000 --lines 20000 --runs 5
    python bench/worker.py --profile cloudtrail     # cProfile of one pass instead

Runs ``daemon.process.process`` (decode, normalize, detect with the built-in
rules, stored record, zstd with a trained dictionary, index text, keys) over
two corpora built once, untimed:

* cloudtrail: examples/ctgen.py records (seed 7, over one day, as
  bench/backfill.py makes them) in payloads of 380 records, the size of the
  backfill's files;
* syslog: the bench/mix.py fleet mix at 5,000 lines a second in payloads of
  5,000 lines, a listener's batch.

Each run is one pass over a corpus timed with ``time.process_time``, so other
load on the machine changes it less than wall time.  Prints one JSON object:
CPU µs per event per run and their median, the hits and rows made, and a digest
of the hits, index texts and row keys (none of which may change when only the
speed does).
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import json
import platform
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))
sys.path.insert(0, str(ROOT / "bench"))

import ctgen  # noqa: E402
from mix import Mix, stamp_of  # noqa: E402

from connectors.base import RawBatch  # noqa: E402
from connectors.syslog.batch import header  # noqa: E402
from daemon import process as worker  # noqa: E402
from daemon.normalize import Limits  # noqa: E402
from daemon.rules import BUILTIN  # noqa: E402
from daemon.store import codec as codecs  # noqa: E402

START = datetime(2026, 10, 1, tzinfo=UTC)
CLOUDTRAIL_PER_PAYLOAD = 380
SYSLOG_PER_PAYLOAD = 5000
SYSLOG_PER_SECOND = 5000
"""Lines per time stamp: a fleet's listener at the soak benchmark's rate."""
DICTIONARY = 1


def cloudtrail(events: int) -> list[RawBatch]:
    records = list(ctgen.generate_records(events, start=START, span=timedelta(days=1), seed=7))
    return [
        RawBatch(
            "cloudtrail",
            f"bench-{first}.json",
            orjson.dumps({"Records": records[first : first + CLOUDTRAIL_PER_PAYLOAD]}),
        )
        for first in range(0, len(records), CLOUDTRAIL_PER_PAYLOAD)
    ]


def syslog(lines: int) -> list[RawBatch]:
    mix = Mix()
    texts = [
        mix.line(stamp_of(START + timedelta(seconds=number // SYSLOG_PER_SECOND)))[0]
        for number in range(lines)
    ]
    head = header(int(START.timestamp() * 1e9), "UTC", peer="10.0.0.1")
    return [
        RawBatch(
            "syslog",
            f"bench-{first}",
            head + "\n".join(texts[first : first + SYSLOG_PER_PAYLOAD]).encode(),
        )
        for first in range(0, len(texts), SYSLOG_PER_PAYLOAD)
    ]


def dictionary(corpora: list[list[RawBatch]]) -> bytes:
    """A dictionary trained on sample records of every corpus, as the store trains one."""
    samples: list[bytes] = []
    for batches in corpora:
        for batch in batches:
            job = worker.Job("bench", batch, codecs.PLAIN, Limits(), want_samples=True)
            samples.extend(worker.process(job).samples)
    return codecs.train(samples)


def one_pass(batches: list[RawBatch]) -> tuple[float, list[worker.Processed]]:
    """CPU seconds for one pass, and its results."""
    began = time.process_time()
    outs = [worker.process(worker.Job("bench", batch, DICTIONARY, Limits())) for batch in batches]
    return time.process_time() - began, outs


def made(outs: list[worker.Processed]) -> dict[str, Any]:
    """Counts, and a digest of the hits, index texts and keys (stored records hold the
    ingest time, so they differ from run to run)."""
    digest = hashlib.sha256()
    for out in outs:
        for key, eid, _, _ in out.rows:
            digest.update(f"{key} {eid}\n".encode())
        for text, tags in out.texts:
            digest.update(f"{text}\t{tags}\n".encode())
        for eid, hit in out.feed:
            digest.update(f"{eid} ".encode() + hit + b"\n")
    return {
        "records": sum(out.records for out in outs),
        "rows": sum(len(out.rows) for out in outs),
        "hits": sum(len(out.feed) for out in outs),
        "quarantined": sum(len(out.quarantined) for out in outs),
        "digest": digest.hexdigest()[:16],
    }


def measure(batches: list[RawBatch], runs: int) -> dict[str, Any]:
    one_pass(batches)  # warm the caches a long-running worker has warm
    results = [one_pass(batches) for _ in range(runs)]
    counts = made(results[0][1])
    per_event = [round(seconds / counts["records"] * 1e6, 2) for seconds, _ in results]
    return {"us_per_event": statistics.median(per_event), "runs": per_event, **counts}


def profile(batches: list[RawBatch], top: int) -> None:
    one_pass(batches)
    profiler = cProfile.Profile()
    profiler.runcall(one_pass, batches)
    pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=20_000, help="CloudTrail records")
    parser.add_argument("--lines", type=int, default=20_000, help="syslog lines")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--profile", choices=["cloudtrail", "syslog"])
    parser.add_argument("--top", type=int, default=40, help="functions the profile lists")
    args = parser.parse_args()

    makers: dict[str, Callable[[], list[RawBatch]]] = {
        "cloudtrail": lambda: cloudtrail(args.events),
        "syslog": lambda: syslog(args.lines),
    }
    corpora = {name: make() for name, make in makers.items()}
    trained: dict[int, bytes] = {}
    # Loaded when a batch first asks for the dictionary, after it is trained.
    worker.init_worker(trained.__getitem__, rule_paths=(BUILTIN,))
    trained[DICTIONARY] = dictionary(list(corpora.values()))
    if args.profile:
        profile(corpora[args.profile], args.top)
        return
    result: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "runs": args.runs,
    }
    for name, batches in corpora.items():
        result[name] = measure(batches, args.runs)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
