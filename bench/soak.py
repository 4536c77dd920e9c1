"""A soak of the daemon under a realistic syslog mix at a steady rate (issue 16).

    python bench/soak.py                  # 5,000 msgs/s for 600 s
    python bench/soak.py --secs 60        # a quick run

``auditcorr run`` as a user starts it: SQLite store in a temporary folder, one
``syslog_tcp`` listener, the built-in rules, a console output (its alerts go to
the daemon's log), the HTTP API on loopback.  No source of change records unless
--changes (an empty ``changes_files`` folder): with one, every sudo is an
unapproved change and raises an alert, the storm issue 16 measured.

A sender thread writes the mix of bench/mix.py (current time stamps) over one
TCP connection at --rate, paced every 100 ms; when the daemon pushes back it
falls behind, and the achieved rate says so.  Every --every seconds the bench
samples:

* handled: events stored plus duplicates, from the daemon's /metrics (counters
  it keeps in memory: no scan of the store);
* lag: sent minus handled, in messages and in seconds (how long ago the sender
  had sent what the daemon has handled now), and the daemon's own
  ``auditcorr_source_lag_seconds`` gauge (now minus the newest event time);
* RSS of the daemon's process tree (daemon, workers, forkserver) and its CPU
  (percent of one core) from /proc; how long /metrics took to answer.

The sender's time blocked in sendall tells the daemon pushing back from the
sender itself lacking CPU on a busy machine; the daemon's CPU time per message
(from the first send until idle) depends far less than lag on what else runs.

After the sender stops: the seconds until every message is handled, and until
the daemon is idle (under 5 % of a core over 2 s).  Then the store, read-only:
alert ids unique, one outbox row per alert and output, and per rule the alerts
stored against what the rules should raise for what was sent (one per address
or account with 5 failures within 10 minutes; with --changes one per sudo user
and host and one per host with a service start: the run is shorter than the
one-hour suppression).

Prints a table, one JSON object with every figure, and a one-line verdict
against issue 16's targets: lag under 5 s throughout, RSS flat and at most
300 MB (flat: the highest RSS of the last third of the run at most 10 % above
that of the middle third), no loss, every alert stored once.
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
import tempfile
import threading
import time
import urllib.request
from bisect import bisect_left
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness import count_events, free_port, group_cpu_secs, running, tree_rss
from mix import Line, Mix, stamp_of

TICK = 0.1
"""Seconds between two sends of the paced sender."""
RSS_LIMIT_MB = 300
LAG_LIMIT_SECS = 5.0
IDLE_CPU_PERCENT = 5.0
BURST = 5
"""Failures from one address or of one account within WINDOW_SECS that raise an alert."""
WINDOW_SECS = 600


@dataclass
class Expected:
    """What was sent, kept to work out the alerts the built-in rules should raise."""

    failures_by_address: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    failures_by_user: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    sudo_groups: set[tuple[str, str]] = field(default_factory=set)
    sudo_lines: int = 0
    service_hosts: set[str] = field(default_factory=set)

    def add(self, line: Line, second: int) -> None:
        if line.kind == "failure":
            self.failures_by_address[line.address].append(second)
            self.failures_by_user[line.user].append(second)
        elif line.kind == "sudo":
            self.sudo_groups.add((line.user, line.host))
            self.sudo_lines += 1
        elif line.kind == "service":
            self.service_hosts.add(line.host)

    @staticmethod
    def bursts(times: dict[str, list[int]]) -> int:
        """Groups with BURST failures within WINDOW_SECS (one alert each, being suppressed
        after for an hour)."""
        found = 0
        for seconds in times.values():
            window: deque[int] = deque()
            for second in seconds:
                window.append(second)
                while window[0] < second - WINDOW_SECS:
                    window.popleft()
                if len(window) >= BURST:
                    found += 1
                    break
        return found

    def alerts(self, changes: bool) -> dict[str, int]:
        expected = {
            "ssh_brute_force": self.bursts(self.failures_by_address),
            "account_brute_force": self.bursts(self.failures_by_user),
        }
        if changes:
            # A sudo groups by its user and host; a service start, which names no
            # user of its own, by its host.
            expected["unapproved_change"] = len(self.sudo_groups) + len(self.service_hosts)
        return expected


class Sender(threading.Thread):
    """Sends the mix at ``rate`` messages/s for ``secs``, over one TCP connection."""

    def __init__(self, port: int, rate: int, secs: float, mix: Mix) -> None:
        super().__init__(name="sender", daemon=True)
        self.port, self.rate, self.secs, self.mix = port, rate, secs, mix
        self.sent = 0
        self.history: list[tuple[float, int]] = [(time.monotonic(), 0)]
        """(monotonic time, messages handed to the kernel by then), one per send."""
        self.expected = Expected()
        self.began = self.ended = 0.0
        self.blocked = 0.0
        """Seconds spent in sendall: the daemon pushing back (TCP flow control)."""
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._send()
        except BaseException as err:  # reported by the main thread
            self.error = err
        self.ended = time.monotonic()

    def _send(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port)) as conn:
            self.began = time.monotonic()
            while (elapsed := time.monotonic() - self.began) < self.secs:
                due = min(int(elapsed * self.rate) - self.sent, self.rate)
                if due > 0:
                    now = datetime.now(UTC)
                    stamp, second = stamp_of(now), int(now.timestamp())
                    lines = []
                    for _ in range(due):
                        text, line = self.mix.line(stamp)
                        lines.append(text)
                        self.expected.add(line, second)
                    payload = ("\n".join(lines) + "\n").encode()
                    sending = time.monotonic()
                    conn.sendall(payload)
                    self.blocked += time.monotonic() - sending
                    self.sent += due
                    self.history.append((time.monotonic(), self.sent))
                time.sleep(max(0.0, TICK - (time.monotonic() - self.began - elapsed)))

    def lag_secs(self, handled: int, now: float) -> float:
        """Seconds since the sender had sent ``handled`` messages (0 when all are handled)."""
        if handled >= self.sent:
            return 0.0
        at = bisect_left([sent for _, sent in self.history], handled + 1)
        return now - self.history[at][0]


def metrics(api: str) -> tuple[dict[str, float], float]:
    """The daemon's /metrics (name with labels -> value), and seconds it took to answer."""
    began = time.monotonic()
    with urllib.request.urlopen(f"{api}/metrics", timeout=30) as reply:
        text = reply.read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values, time.monotonic() - began


def config(work: Path, port: int, api_port: int, changes: bool) -> Path:
    lines = [
        "[daemon]",
        f'state_dir = "{work / "state"}"',
        'log_format = "json"',
        "[store]",
        "retention_days = 0",
        "[api]",
        f'listen = "127.0.0.1:{api_port}"',
        "[sources.soak]",
        'type = "syslog_tcp"',
        f'listen = "tcp:127.0.0.1:{port}"',
        "[outputs.console]",
        'type = "console"',
    ]
    if changes:
        (work / "changes").mkdir()
        lines += ["[sources.changes]", 'type = "changes_files"', f'path = "{work / "changes"}"']
    path = work / "config.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


class Sampler:
    """One row every few seconds: handled, lag, RSS and CPU of the daemon's process tree."""

    def __init__(self, pid: int, api: str, sender: Sender) -> None:
        self.pid, self.api, self.sender = pid, api, sender
        self.began = time.monotonic()
        self.rows: list[dict[str, Any]] = []
        self.first_cpu = group_cpu_secs(pid)
        self.last = (self.began, self.first_cpu)

    def sample(self) -> dict[str, Any]:
        try:
            values, answer_secs = metrics(self.api)
        except OSError:
            values, answer_secs = {}, float("nan")
        now = time.monotonic()
        cpu = group_cpu_secs(self.pid)
        handled = int(
            values.get('auditcorr_events_stored_total{source="soak"}', 0)
            + values.get('auditcorr_events_duplicate_total{source="soak"}', 0)
        )
        sent = self.sender.sent
        row = {
            "t": round(now - self.began, 1),
            "sent": sent,
            "handled": handled if values else None,
            "lag_msgs": sent - handled if values else None,
            "lag_secs": round(self.sender.lag_secs(handled, now), 1) if values else None,
            "source_lag_secs": values.get('auditcorr_source_lag_seconds{source="soak"}'),
            "alerts_raised": values.get("auditcorr_alerts_raised_total"),
            "rss_mb": round(tree_rss(self.pid)[1] / 2**20),
            "cpu_percent": round(100 * (cpu - self.last[1]) / (now - self.last[0])),
            "metrics_secs": round(answer_secs, 2),
        }
        self.last = (now, cpu)
        self.rows.append(row)
        return row


def store_check(db: Path, outputs: int, expected: dict[str, int]) -> dict[str, Any]:
    """Alert ids unique, one outbox row per alert and output, alerts per rule against
    what the rules should raise."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)) as db_:
        alerts, distinct = db_.execute("SELECT count(*), count(DISTINCT id) FROM alerts").fetchone()
        rows, pairs = db_.execute(
            "SELECT count(*), count(DISTINCT alert_id || ' ' || output) FROM outbox"
        ).fetchone()
        by_rule = {
            rule: (count, int(events or 0))
            for rule, count, events in db_.execute(
                "SELECT rule_id, count(*), sum(json_extract(CAST(doc AS TEXT), '$.count'))"
                " FROM alerts GROUP BY rule_id ORDER BY rule_id"
            )
        }
    mismatched = {
        rule: {"expected": want, "stored": by_rule.get(rule, (0, 0))[0]}
        for rule, want in expected.items()
        if by_rule.get(rule, (0, 0))[0] != want
    }
    return {
        "alerts": alerts,
        "alert_ids_unique": alerts == distinct,
        "outbox_rows": rows,
        "outbox_once_per_alert_and_output": rows == pairs == alerts * outputs,
        "by_rule": {rule: {"alerts": c, "events": e} for rule, (c, e) in by_rule.items()},
        "expected": expected,
        "mismatched": mismatched,
    }


def rss_flat(rows: list[dict[str, Any]]) -> bool:
    """The highest RSS of the last third at most 10 % above that of the middle third."""
    third = len(rows) // 3
    if third == 0:
        return True
    middle = max(row["rss_mb"] for row in rows[third : 2 * third])
    last = max(row["rss_mb"] for row in rows[2 * third :])
    return bool(last <= middle * 1.1)


def print_row(row: dict[str, Any]) -> None:
    def shown(value: Any) -> str:
        return "-" if value is None else str(value)

    print(
        f"{row['t']:>7} {row['sent']:>9} {shown(row['handled']):>9} {shown(row['lag_msgs']):>8}"
        f" {shown(row['lag_secs']):>7} {shown(row['source_lag_secs']):>8}"
        f" {row['rss_mb']:>6} {row['cpu_percent']:>4} {shown(row['alerts_raised']):>8}"
        f" {row['metrics_secs']:>6}",
        flush=True,
    )


def soak(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    port, api_port = free_port(), free_port()
    path = config(work, port, api_port, args.changes)
    api = f"http://127.0.0.1:{api_port}"
    print(
        f"{'t':>7} {'sent':>9} {'handled':>9} {'lag':>8} {'lag_s':>7} {'src_lag':>8}"
        f" {'rss_mb':>6} {'cpu%':>4} {'alerts':>8} {'api_s':>6}",
        flush=True,
    )
    with running(path, work / "daemon.log") as (proc, _):
        sender = Sender(port, args.rate, args.secs, Mix(args.seed))
        sampler = Sampler(proc.pid, api, sender)
        sender.start()
        while sender.is_alive():
            time.sleep(args.every)
            print_row(sampler.sample())
        if sender.error is not None:
            raise sender.error
        drained_at = idle_at = None
        limit = time.monotonic() + args.idle_timeout
        while (drained_at is None or idle_at is None) and time.monotonic() < limit:
            time.sleep(2)
            row = sampler.sample()
            print_row(row)
            if drained_at is None and row["handled"] is not None and row["lag_msgs"] <= 0:
                drained_at = time.monotonic()
            if drained_at is None or row["cpu_percent"] >= IDLE_CPU_PERCENT:
                idle_at = None
            elif idle_at is None:
                idle_at = time.monotonic()
        db = work / "state" / "timeline.db"
        stored = count_events(db, "soak")
        alerts = store_check(db, 1, sender.expected.alerts(args.changes))
        idle_rss = sampler.rows[-1]["rss_mb"]
    sending = [row for row in sampler.rows if row["t"] <= sender.ended - sampler.began]
    lags = [row["lag_secs"] for row in sampler.rows if row["lag_secs"] is not None]
    return {
        "rate": args.rate,
        "secs": args.secs,
        "changes": args.changes,
        "sent": sender.sent,
        "sent_per_sec": round(sender.sent / (sender.ended - sender.began)),
        "sender_blocked_secs": round(sender.blocked, 1),
        "stored_in_store": stored,
        "sudo_lines": sender.expected.sudo_lines,
        "lag_secs_max": max(lags, default=None),
        "lag_msgs_max": max((r["lag_msgs"] or 0 for r in sampler.rows), default=0),
        "source_lag_secs_max": max(
            (r["source_lag_secs"] for r in sampler.rows if r["source_lag_secs"] is not None),
            default=None,
        ),
        "metrics_secs_max": max(r["metrics_secs"] for r in sampler.rows),
        "rss_mb_max": max(r["rss_mb"] for r in sampler.rows),
        "rss_mb_idle": idle_rss,
        "rss_flat": rss_flat(sending),
        "cpu_us_per_msg": round((sampler.last[1] - sampler.first_cpu) / sender.sent * 1e6, 1),
        "cpu_percent_median_sending": sorted(r["cpu_percent"] for r in sending)[len(sending) // 2],
        "drain_secs": None if drained_at is None else round(drained_at - sender.ended, 1),
        "idle_secs": None if idle_at is None else round(idle_at - sender.ended, 1),
        "alerts": alerts,
        "samples": sampler.rows,
    }


def verdict(result: dict[str, Any]) -> str:
    """One line: each of issue 16's targets for the soak, met or not."""
    alerts = result["alerts"]
    lag, rss = result["lag_secs_max"], result["rss_mb_max"]
    stored, sent = result["stored_in_store"], result["sent"]
    checks = [
        (f"lag max {lag} s (< {LAG_LIMIT_SECS:g})", lag is not None and lag < LAG_LIMIT_SECS),
        (f"RSS max {rss} MB (<= {RSS_LIMIT_MB})", rss <= RSS_LIMIT_MB),
        (f"RSS {'flat' if result['rss_flat'] else 'growing'}", result["rss_flat"]),
        (f"stored {stored} of {sent}", stored == sent),
        (
            "alerts stored once",
            alerts["alert_ids_unique"] and alerts["outbox_once_per_alert_and_output"],
        ),
        (f"alerts as expected {alerts['mismatched'] or ''}".strip(), not alerts["mismatched"]),
    ]
    met = all(ok for _, ok in checks)
    return ("PASS: " if met else "FAIL: ") + "; ".join(
        f"{'ok' if ok else 'NOT MET'} {name}" for name, ok in checks
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=5_000, help="messages per second")
    parser.add_argument("--secs", type=float, default=600, help="seconds of sending")
    parser.add_argument("--every", type=float, default=5, help="seconds between samples")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument(
        "--changes",
        action="store_true",
        help="configure an (empty) source of change records: every sudo raises an alert",
    )
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=600,
        help="seconds to wait after the sender stops for the daemon to drain and go idle",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder (store, log)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="auditcorr-bench-soak-"))
    load = os.getloadavg()
    try:
        result = soak(work, args)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    result["machine"] = f"{platform.machine()} {os.cpu_count()} CPUs, {platform.python_version()}"
    result["load_average_before"] = [round(x, 2) for x in load]
    result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    if args.keep:
        result["work"] = str(work)
    print(json.dumps({k: v for k, v in result.items() if k != "samples"}, indent=2))
    print(verdict(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
