"""What the correlator stage costs per hit, with the built-in rules, under a flood.

Makes N sshd failures (hits of ``auth_failure``, which four built-in correlations
use) as the decoding workers do, then correlates them as the stage does: rounds of
``ROUND_HITS`` hits decoded from their feed JSON, each followed by the state rows
the round changed (what ``commit_round`` writes).  Two shapes: every failure from
one address (a brute force: one alert absorbs the flood) and each from its own
address (a scan: a window per address).  Prints CPU microseconds per hit and the
state bytes written per hit, medians of ``--runs``.

    .venv/bin/python bench/correlator.py --hits 60000 --runs 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from daemon.correlator.stage import ROUND_HITS
from daemon.gcpause import cyclic_gc_paused
from daemon.rules.engine import RuleEngine
from daemon.rules.hits import Hit, HitMaker

T0 = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)


def failure(n: int, address: str) -> dict[str, Any]:
    return {
        "@timestamp": (T0 + timedelta(milliseconds=10 * n)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "event": {
            "id": f"e{n}",
            "dataset": "system.auth",
            "action": "ssh_login",
            "outcome": "failure",
            "category": ["authentication"],
            "type": ["start"],
        },
        "process": {"name": "sshd"},
        "source": {"ip": address},
        "user": {"name": f"u{n}"},
        "host": {"name": "bastion"},
    }


def address(n: int, shape: str) -> str:
    return "198.51.100.7" if shape == "one" else f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"


def run(feed: list[bytes]) -> tuple[float, float]:
    """CPU µs and state bytes per hit of correlating ``feed`` in stage-sized rounds."""
    engine = RuleEngine.load(["builtin"])
    written = 0
    started = time.process_time()
    with cyclic_gc_paused():
        for start in range(0, len(feed), ROUND_HITS):
            hits = [Hit.from_json(orjson.loads(item)) for item in feed[start : start + ROUND_HITS]]
            engine.correlate(hits)
            written += sum(len(value or b"") for value in engine.correlator.changes().values())
    return (time.process_time() - started) / len(feed) * 1e6, written / len(feed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hits", type=int, default=60_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    maker = HitMaker(RuleEngine.load(["builtin"]).loaded)
    for shape in ("one", "many"):
        feed = [
            item
            for n in range(args.hits)
            for item in maker.encoded(failure(n, address(n, shape)), "auth")
        ]
        runs = [run(feed) for _ in range(args.runs)]
        cpu = statistics.median(cpu for cpu, _ in runs)
        state = statistics.median(size for _, size in runs)
        print(
            f"{shape:4} address(es): {len(feed):,} hits, {cpu:.0f} µs CPU per hit"
            f" (runs: {', '.join(f'{c:.0f}' for c, _ in runs)}), {state:.0f} state bytes per hit"
        )


if __name__ == "__main__":
    main()
