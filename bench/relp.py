"""RELP intake through a real rsyslog ``omrelp``: messages/s into the timeline, and what
kill -9 of the daemon mid-stream loses or doubles.

    python bench/relp.py --messages 100000 --runs 3

Each run: ``auditcorr run`` with a ``syslog_relp`` listener; ``rsyslogd`` takes
numbered RFC 3164 lines on imtcp and forwards them by omrelp (LinkedList action
queue, retrying for ever).  rate = messages / (first line sent to rsyslog ->
last event stored).  The crash run then does the same again, kills the daemon's
process group with SIGKILL once a fifth is stored, restarts it on the same store
and port, waits until rsyslog's queue is empty and the store stops growing, and
reads the timeline: lost = numbers missing, doubled = numbers stored more than once.

Prints one JSON object with the medians.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from harness import ROOT, count_events, free_port, start, stop, wait_stored

CHUNK = 1000


def numbered(start: int, count: int) -> bytes:
    return b"".join(
        f"<86>Nov 27 12:{i // 6000 % 60:02d}:{i // 100 % 60:02d} web-{i % 7} "
        f"sshd[{1000 + i % 50000}]: Accepted publickey for user{i % 997} "
        f"from 192.0.2.{i % 250} port {i} ssh2\n".encode()
        for i in range(start, start + count)
    )


def start_daemon(work: Path, port: int, name: str) -> subprocess.Popen[bytes]:
    """``auditcorr run`` with one RELP listener on ``port``; returns once it listens."""
    config = work / "config.toml"
    config.write_text(
        f'[daemon]\nstate_dir = "{work / "state"}"\nlog_format = "json"\n'
        "\n[store]\nretention_days = 0\n\n[rules]\nbuiltin = false\n\n"
        f'[sources.bench]\ntype = "syslog_relp"\nlisten = "relp:127.0.0.1:{port}"\n'
    )
    return start(config, work / f"{name}.log")[0]


@contextlib.contextmanager
def rsyslogd(work: Path, relp_port: int, window: int) -> Iterator[int]:
    """rsyslogd: imtcp in, omrelp out with ``window`` unanswered messages at most;
    yields the imtcp port."""
    listen = free_port()
    conf = work / "rsyslog.conf"
    conf.write_text(
        f'global(workDirectory="{work}")\nmodule(load="imtcp")\nmodule(load="omrelp")\n'
        f'input(type="imtcp" address="127.0.0.1" port="{listen}")\n'
        f'action(type="omrelp" target="127.0.0.1" port="{relp_port}" windowSize="{window}"\n'
        '       queue.type="LinkedList" queue.size="1000000"\n'
        '       action.resumeRetryCount="-1" action.resumeInterval="1")\n'
    )
    rsyslog = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
    with (work / "rsyslog.err").open("wb") as errors:  # its "session broken" lines
        argv = [rsyslog, "-n", "-f", str(conf), "-i", str(work / "rsyslog.pid")]
        proc = subprocess.Popen(argv, stderr=errors)
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", listen), 1):
                break
            time.sleep(0.1)
        yield listen
    finally:
        proc.terminate()
        proc.wait(30)


def send(port: int, count: int) -> float:
    """Hand ``count`` numbered lines to rsyslog; returns when sending began."""
    began = time.monotonic()
    with socket.create_connection(("127.0.0.1", port)) as conn:
        for start in range(0, count, CHUNK):
            conn.sendall(numbered(start, min(CHUNK, count - start)))
    return began


def settle(db: Path, quiet: float = 5) -> None:
    """Wait until the store has not grown for ``quiet`` seconds (resends are in)."""
    last, since = count_events(db), time.monotonic()
    while time.monotonic() - since < quiet:
        time.sleep(0.5)
        if (now := count_events(db)) != last:
            last, since = now, time.monotonic()


def numbers(work: Path) -> Counter[int]:
    """How often each numbered line is on the timeline."""
    result = subprocess.run(
        [
            *(sys.executable, "-m", "daemon.cli", "timeline", "--json", "--limit", "10000000"),
            *("--config", str(work / "config.toml")),
        ],
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    found: Counter[int] = Counter()
    for line in result.stdout.splitlines():
        original = json.loads(line).get("event", {}).get("original", "")
        if " port " in original:
            found[int(original.rsplit(" port ", 1)[1].split()[0])] += 1
    return found


def rate_run(work: Path, count: int, window: int) -> dict[str, float]:
    work.mkdir(parents=True)
    port = free_port()
    daemon = start_daemon(work, port, "daemon")
    try:
        with rsyslogd(work, port, window) as listen:
            began = send(listen, count)
            done = wait_stored(work / "state" / "timeline.db", count, timeout=600)
    finally:
        stop(daemon)
    return {"msgs_per_sec": round(count / (done - began)), "messages": count}


def crash_run(work: Path, count: int, window: int) -> dict[str, object]:
    work.mkdir(parents=True)
    port = free_port()
    db = work / "state" / "timeline.db"
    first = start_daemon(work, port, "first")
    with rsyslogd(work, port, window) as listen:
        send(listen, count)
        wait_stored(db, count // 5)
        stop(first, signal.SIGKILL)
        at_kill = count_events(db)
        second = start_daemon(work, port, "second")
        try:
            with contextlib.suppress(RuntimeError):  # a loss: counted below
                wait_stored(db, count, timeout=300)
            settle(db)
        finally:
            stop(second)
    found = numbers(work)
    lost = sum(1 for i in range(count) if i not in found)
    doubled = sum(times - 1 for times in found.values() if times > 1)
    return {"messages": count, "stored_at_kill": at_kill, "lost": lost, "doubled": doubled}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--window",
        type=int,
        default=128,
        help="omrelp windowSize: unanswered messages rsyslog sends ahead (its default: 128)",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="auditcorr-bench-relp-"))
    rates, crashes = [], []
    for run in range(args.runs):
        rate = rate_run(work / f"rate{run}", args.messages, args.window)
        crash = crash_run(work / f"crash{run}", args.messages, args.window)
        print(json.dumps({"run": run, "rate": rate, "crash": crash}), file=sys.stderr)
        rates.append(rate["msgs_per_sec"])
        crashes.append(crash)
    shutil.rmtree(work, ignore_errors=True)
    summary = {
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, {platform.python_version()}",
        "messages": args.messages,
        "window": args.window,
        "runs": args.runs,
        "relp_msgs_per_sec_median": statistics.median(rates),
        "relp_runs": rates,
        "kill_9_lost_total": sum(int(str(c["lost"])) for c in crashes),
        "kill_9_doubled_total": sum(int(str(c["doubled"])) for c in crashes),
        "kill_9_runs": crashes,
    }
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
