"""What resolving the identity map at ingest costs per event, and the coverage query's speed.

    python bench/identity.py --events 100000 --people 500 --records 2000 --runs 5

In the same run, over N generated CloudTrail records (examples/ctgen.py):

* baseline: ``cloudtrail.normalize`` of every record, as a decoding worker does;
* with identities: the same plus ``IdentityMap.actor_of`` with a map of P people
  (each with a unix account, an e-mail, an IAM user ARN and a session name; the
  generator's own users among them);
* coverage: ``coverage()`` of every normalized document against a book of R
  change records spread over the day.

Prints one JSON object: medians over --runs, and the median of the per-run ratios.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))

import ctgen  # noqa: E402

from connectors.contracts.change_record import parse_record  # noqa: E402
from daemon.changes.book import ChangeBook  # noqa: E402
from daemon.changes.coverage import coverage  # noqa: E402
from daemon.identity import IdentityMap, build  # noqa: E402
from daemon.normalize import cloudtrail  # noqa: E402

START = datetime(2026, 11, 20, tzinfo=UTC)
TEAM = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"]


def people(count: int) -> IdentityMap:
    names = TEAM + [f"user{n:04d}" for n in range(max(count - len(TEAM), 0))]
    return build(
        {
            "id": name,
            "email": [f"{name}@example.com"],
            "unix": [name],
            "aws": [f"arn:aws:iam::111111111111:user/{name}", f"{name}-ci"],
        }
        for name in names[:count]
    )


def book(count: int, identities: IdentityMap) -> ChangeBook:
    step = timedelta(days=1) / max(count, 1)
    records = []
    for n in range(count):
        start = START + n * step
        records.append(
            parse_record(
                {
                    "id": f"CHG{n:07d}",
                    "state": "approved",
                    "implementers": [TEAM[n % len(TEAM)]],
                    "window": {
                        "start": start.isoformat(),
                        "end": (start + timedelta(hours=2)).isoformat(),
                    },
                    "scope": {"aws_accounts": ["111111111111"], "actions": ["ec2:*", "iam:*"]},
                }
            )
        )
    return ChangeBook(records, identities)


def timed(fn: Any) -> float:
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--people", type=int, default=500)
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    records = list(ctgen.generate_records(args.events, start=START, span=timedelta(days=1), seed=7))
    identities = people(args.people)
    changes = book(args.records, identities)

    def baseline() -> None:
        for record in records:
            cloudtrail.normalize(record)

    resolved = 0

    def with_identities() -> None:
        nonlocal resolved
        resolved = 0
        for record in records:
            event = cloudtrail.normalize(record)
            resolved += identities.actor_of(event) is not None

    documents = []
    for record in records:
        event = cloudtrail.normalize(record)
        event.actor = identities.actor_of(event)
        documents.append(event.to_document())

    def covering() -> None:
        for doc in documents:
            coverage(doc, changes)

    base, ident, cover = [], [], []
    for _ in range(args.runs):
        base.append(timed(baseline))
        ident.append(timed(with_identities))
        cover.append(timed(covering))
    b, i, c = (statistics.median(x) for x in (base, ident, cover))
    print(
        json.dumps(
            {
                "date": datetime.now(UTC).date().isoformat(),
                "machine": f"{platform.machine()}, {platform.python_version()}",
                "events": args.events,
                "people": args.people,
                "change_records": args.records,
                "runs": args.runs,
                "normalize_events_per_sec": round(args.events / b),
                "normalize_and_resolve_events_per_sec": round(args.events / i),
                # Each run's own ratio, then the median: noise slows both halves of a run.
                "ratio_resolve_to_baseline": round(
                    statistics.median(x / y for x, y in zip(base, ident, strict=True)), 3
                ),
                "resolved_share": round(resolved / args.events, 3),
                "coverage_queries_per_sec": round(args.events / c),
                "runs_secs": {"baseline": base, "identities": ident, "coverage": cover},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
