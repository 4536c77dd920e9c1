"""What the correlator stage costs per hit, with the built-in rules, under a flood.

Makes N sshd failures (hits of ``auth_failure``, which four built-in correlations
use) as the decoding workers do, then correlates them as the stage does: rounds of
``ROUND_HITS`` hits decoded from their feed JSON, each committed into a SQLite store
(``commit_round``: the state rows and held hits the round changed, the alerts' rows,
their timeline entries and one outbox row each), the windows held in that store with
only recently touched groups in memory.  Three shapes:
every failure from one address (a brute force: one alert absorbs the flood), each
from its own address (a scan: a window per address), and the hits of ``--mix-secs``
seconds of the soak's syslog mix (``bench/mix.py``, 5,000 lines a second, made
into hits by the workers' own code: thousands of open alerts updated round after
round).  Prints CPU microseconds per hit and the bytes handed to the commit per hit,
medians of ``--runs``, for rounds of ``--round-hits``, and the RSS the run added to the
process (highest of the runs).

    .venv/bin/python bench/correlator.py --hits 60000 --mix-secs 60 --runs 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mix import Mix, stamp_of

from connectors.base import RawBatch
from connectors.syslog.batch import header
from daemon.correlator.entries import alert_entries
from daemon.correlator.stage import ROUND_HITS
from daemon.gcpause import cyclic_gc_paused
from daemon.normalize import Limits
from daemon.process import Job, init_worker, process
from daemon.rules.change import CHANGE_RULE
from daemon.rules.engine import RuleEngine
from daemon.rules.hits import Hit, HitMaker
from daemon.store.sqlite import SqliteStore
from daemon.store.units import Round

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


MIX_RATE = 5_000


def mix_feed(secs: int) -> list[bytes]:
    """The feed items of ``secs`` seconds of the soak's mix, as the workers make them.
    Without a source of change records the daemon turns ``unapproved_change`` off, as
    the soak runs it, so its hits are left out."""
    with tempfile.TemporaryDirectory() as work:
        store = SqliteStore(Path(work) / "timeline.db", retention_days=0)
        init_worker(store.dictionaries(), rule_paths=("builtin",))
        mix = Mix()
        head = header(time.time_ns(), "UTC")
        feed: list[bytes] = []
        for second in range(secs):
            stamp = stamp_of(T0 + timedelta(seconds=second))
            text = "\n".join(mix.line(stamp)[0] for _ in range(MIX_RATE)) + "\n"
            batch = RawBatch("syslog", f"mix:{second}", head + text.encode(), [])
            done = process(Job("soak", batch, store.codec, Limits(), want_samples=False))
            feed += [hit for _, hit in done.feed if orjson.loads(hit)["rule"] != CHANGE_RULE]
        store.close()
    return feed


def run(feed: list[bytes], round_hits: int = ROUND_HITS) -> tuple[float, float, int]:
    """CPU µs and bytes to commit per hit of correlating ``feed`` in rounds of ``round_hits``
    into a fresh store, and the MB of RSS it added."""
    before = _rss_mb()
    with tempfile.TemporaryDirectory() as work:
        store = SqliteStore(Path(work) / "timeline.db", retention_days=0)
        engine = RuleEngine.load(["builtin"])
        correlator = engine.correlator
        correlator.windows.durable(store.held_hits)
        written = 0
        started = time.process_time()
        with cyclic_gc_paused():
            for start in range(0, len(feed), round_hits):
                part = feed[start : start + round_hits]
                alerts = engine.correlate([Hit.from_json(orjson.loads(item)) for item in part])
                state = correlator.changes()
                held, expired, correlations = correlator.windows.changes()
                written += sum(len(value or b"") for value in state.values())
                written += sum(len(row[4] or b"") for row in held)
                for _ in ("alert row", "outbox row"):
                    written += sum(len(alert.document()) for alert in alerts)
                store.commit_round(
                    Round(
                        after=0,
                        position=0,
                        state=state,
                        held=held,
                        expired=expired,
                        correlations=correlations,
                        alerts=alerts,
                        entries=alert_entries(alerts),
                    )
                )
        cpu = time.process_time() - started
        grown = _rss_mb() - before
        store.close()
    return cpu / len(feed) * 1e6, written / len(feed), grown


def _rss_mb() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") >> 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hits", type=int, default=60_000)
    parser.add_argument("--mix-secs", type=int, default=60)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--round-hits",
        type=int,
        default=ROUND_HITS,
        help=f"hits per round (the stage's live rounds: {ROUND_HITS:,})",
    )
    args = parser.parse_args()
    maker = HitMaker(RuleEngine.load(["builtin"]).loaded)
    for shape in ("one", "many", "mix"):
        feed = (
            mix_feed(args.mix_secs)
            if shape == "mix"
            else [
                item
                for n in range(args.hits)
                for item in maker.encoded(failure(n, address(n, shape)), "auth")
            ]
        )
        runs = [run(feed, args.round_hits) for _ in range(args.runs)]
        cpu = statistics.median(cpu for cpu, _, _ in runs)
        state = statistics.median(size for _, size, _ in runs)
        print(
            f"{shape:4}: {len(feed):,} hits, {cpu:.0f} µs CPU per hit"
            f" (runs: {', '.join(f'{c:.0f}' for c, _, _ in runs)}),"
            f" {state:.0f} bytes to commit per hit,"
            f" RSS added {max(grown for _, _, grown in runs)} MB"
        )


if __name__ == "__main__":
    main()
