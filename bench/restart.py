"""Restart on a busy store: how soon syslog is accepted again, and the memory the start takes.

    python bench/restart.py                      # 1,000,000 events, 3 starts
    python bench/restart.py --events 250000

Builds a SQLite store holding --events events of the last 24 hours: the
realistic mix of bench/mix.py (sshd failures from scanners and users, logins,
sudo, application lines) written to a file with time stamps spread evenly over
the day, read in by ``auditcorr backfill`` with the built-in rules (so the store
holds the alerts and hits a day of this traffic leaves).  Then --runs times:
``auditcorr run`` on that store with a ``syslog_tcp`` listener on a fixed port
and the built-in rules, and from the moment the process is started:

* listen: seconds until the syslog port accepts a TCP connection, and the CPU
  time the process tree used until then (on a shared machine the steadier figure);
* idle: seconds until the daemon's process tree uses under 5 % of a core
  over one second (the start's work, such as rebuilding rule windows, is done);
* peak RSS of the process tree (daemon, workers, forkserver), sampled from
  /proc every 50 ms, until the port accepts and until idle;
* stop: seconds from SIGTERM to exit;
* alerts changed: alerts of the store that differ after the start (new ids,
  or another count, first or last event) from the alerts the backfill left.
  Nothing was sent, so a start that continues exactly where the store stood
  changes none (issue 16: "every window exactly as if there had been no
  restart"); the starts run one after another on the same store.

Prints one JSON object with every run and the medians, and a one-line verdict
against issue 16's targets (listening within 5 s, RSS at most 250 MB).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from harness import ROOT, count_events, free_port, group_cpu_secs, start, stop, tree_rss
from mix import Mix, stamp_of

LISTEN_LIMIT_SECS = 5.0
RSS_LIMIT_MB = 250
IDLE_CPU_PERCENT = 5.0
DAY_SECS = 86_400


def write_day(path: Path, events: int, seed: int) -> None:
    """``events`` lines of the mix, stamped evenly over the 24 hours before now (UTC)."""
    mix = Mix(seed)
    first = datetime.now(UTC) - timedelta(seconds=DAY_SECS - 600)
    span = DAY_SECS - 660  # the whole store stays within the last day during the runs
    second, stamp = -1, ""
    with path.open("w") as out:
        for n in range(events):
            if n * span // events != second:
                second = n * span // events
                stamp = stamp_of(first + timedelta(seconds=second))
            out.write(mix.line(stamp)[0] + "\n")


def build(work: Path, events: int, seed: int) -> float:
    """A store of ``events`` events of the last day in ``work/state``; seconds it took."""
    day = work / "day.log"
    write_day(day, events, seed)
    config = work / "backfill.toml"
    config.write_text(
        f'[daemon]\nstate_dir = "{work / "state"}"\nlog_format = "json"\n'
        "[store]\nretention_days = 0\n"
        f'[sources.day]\ntype = "syslog_file"\npath = "{day}"\nstart = "beginning"\n'
    )
    log = work / "backfill.log"
    began = time.monotonic()
    with log.open("wb") as sink:
        done = subprocess.run(
            [sys.executable, "-m", "daemon.cli", "backfill", "--config", str(config)],
            cwd=ROOT,
            stdout=sink,
            stderr=sink,
            check=False,
        )
    took = time.monotonic() - began
    if done.returncode != 0:
        raise SystemExit(f"backfill failed:\n{log.read_text(errors='replace')[-3000:]}")
    day.unlink()
    stored = count_events(work / "state" / "timeline.db", "day")
    if stored != events:
        raise SystemExit(f"the store holds {stored} of {events} events")
    return took


def alerts_of(db: Path) -> dict[str, tuple[int, int, int]]:
    """Each stored alert's (count, first event, last event), by id."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)) as c:
        return {
            alert_id: (int(count), first, last)
            for alert_id, count, first, last in c.execute(
                "SELECT id, json_extract(CAST(doc AS TEXT), '$.count'), first_seen, last_seen"
                " FROM alerts"
            )
        }


def accepts(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
        return True
    return False


def one_start(
    work: Path, run: int, timeout: float, before: dict[str, tuple[int, int, int]]
) -> dict[str, Any]:
    """Start the daemon on the store; time to listen and to go idle, peak RSS, stop time,
    and the alerts that differ from ``before`` once it stopped."""
    port = free_port()
    config = work / f"run{run}.toml"
    config.write_text(
        f'[daemon]\nstate_dir = "{work / "state"}"\nlog_format = "json"\n'
        "[store]\nretention_days = 0\n"
        f'[sources.bench]\ntype = "syslog_tcp"\nlisten = "tcp:127.0.0.1:{port}"\n'
    )
    peak = 0
    done = threading.Event()
    began = time.monotonic()
    proc, _ = start(config, work / f"run{run}.log", ready=None)

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, tree_rss(proc.pid)[1])
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        while not accepts(port):
            if proc.poll() is not None or time.monotonic() - began > timeout:
                raise RuntimeError((work / f"run{run}.log").read_text()[-3000:])
            time.sleep(0.02)
        listen = time.monotonic() - began
        peak_listening = peak
        cpu, at = group_cpu_secs(proc.pid), time.monotonic()
        cpu_listening = cpu
        while time.monotonic() - began < timeout:
            time.sleep(1)
            now_cpu, now = group_cpu_secs(proc.pid), time.monotonic()
            if 100 * (now_cpu - cpu) / (now - at) < IDLE_CPU_PERCENT:
                break
            cpu, at = now_cpu, now
        idle = time.monotonic() - began
    finally:
        done.set()
        sampler.join()
        stopping = time.monotonic()
        stop(proc)
    return {
        "listen_secs": round(listen, 2),
        "cpu_secs_until_listening": round(cpu_listening, 1),
        "idle_secs": round(idle, 1),
        "peak_rss_mb_until_listening": round(peak_listening / 2**20),
        "peak_rss_mb_until_idle": round(peak / 2**20),
        "stop_secs": round(time.monotonic() - stopping, 2),
        "alerts_changed": sum(
            before.get(alert_id) != state
            for alert_id, state in alerts_of(work / "state" / "timeline.db").items()
        ),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=300, help="seconds one start may take")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (store, logs)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="auditcorr-bench-restart-"))
    try:
        build_secs = build(work, args.events, args.seed)
        print(f"built a store of {args.events} events in {build_secs:.0f}s", file=sys.stderr)
        load = os.getloadavg()
        before = alerts_of(work / "state" / "timeline.db")
        runs = []
        for run in range(args.runs):
            runs.append(one_start(work, run, args.timeout, before))
            print(json.dumps({"run": run, **runs[-1]}), file=sys.stderr)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    medians = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    summary = {
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, {platform.python_version()}",
        "events": args.events,
        "runs": args.runs,
        "build_secs": round(build_secs),
        "alerts_in_store": len(before),
        "load_average_before": [round(x, 2) for x in load],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "medians": medians,
        "each_run": runs,
    }
    if args.keep:
        summary["work"] = str(work)
    print(json.dumps(summary, indent=2))
    listen, rss = medians["listen_secs"], medians["peak_rss_mb_until_idle"]
    changed = max(run["alerts_changed"] for run in runs)
    checks = [
        (f"listening after {listen} s (< {LISTEN_LIMIT_SECS:g})", listen < LISTEN_LIMIT_SECS),
        (f"peak RSS {rss} MB (<= {RSS_LIMIT_MB})", rss <= RSS_LIMIT_MB),
        (f"{changed} of {len(before)} alerts changed by a start", changed == 0),
    ]
    print(
        ("PASS: " if all(ok for _, ok in checks) else "FAIL: ")
        + "; ".join(f"{'ok' if ok else 'NOT MET'} {name}" for name, ok in checks)
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
