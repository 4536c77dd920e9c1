"""Syslog ingest rate over TCP (zero loss) and UDP (loss under 0.1 %), against rsyslogd.

    python bench/syslog.py --seconds 60 --runs 3

In the same run:

* tcp: ``auditcorr run`` with a ``syslog_tcp`` listener; a local sender
  writes newline-framed RFC 3164 lines (sshd, sudo, su, systemd, cron) as
  fast as the connection takes them for --seconds; then the bench waits until
  the store holds every message sent.  messages/s = sent / (first send to
  last stored), zero loss checked by count; the CPU time the daemon and its
  workers used per message is reported beside it (it depends far less than the
  rate on what else the machine runs);
* rsyslog: ``rsyslogd`` (imtcp -> omfile) receiving the same number of
  messages, the same bytes, into a file: the C reference;
* udp: ``auditcorr run`` with a ``syslog_udp`` listener, fed at fixed rates
  (--udp-rates) for --udp-seconds each; the highest rate whose loss stays
  under 0.1 % is reported.

With --connections N the bench measures the listener's connection handling
instead (``connections_run``): N connect-and-reset cycles from one address as
fast as they go (accepted per second, until a message sent after them is
stored; the daemon's log lines they caused), then 1,024 idle connections from
127.0.0.1 and one sender from 127.0.0.2 (is its message stored?).

With --crash SECS the bench measures what kill -9 loses instead (``crash_run``):
a sender writes as fast as the connection takes for SECS, then the daemon's
process group is killed with SIGKILL mid-stream; lost = messages the sender
had handed to the kernel - events in the store.

The built-in rule pack is off unless --rules: the figure issue 4 asks for is
the ingest path (parse, normalize, store); --rules adds detection in the
workers, correlation and the alerts the bench mix raises.

Prints one JSON object with the medians over --runs and the ratio to rsyslog.
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
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from harness import count_events, group_cpu_secs, running, wait_stored

SOURCE = "bench"
"""The listener's source id: only its events are counted (with rules on, the store
holds the alerts' timeline entries too, under source ``rules``)."""
CHUNK = 500
"""Messages per send() call of the sender."""

TEMPLATES = (
    "<38>Nov 27 12:{m:02d}:{s:02d} bastion-{h} sshd[{pid}]: Failed password for user{u} "
    "from 192.0.2.{o} port {port} ssh2",
    "<38>Nov 27 12:{m:02d}:{s:02d} bastion-{h} sshd[{pid}]: Accepted publickey for user{u} "
    "from 198.51.100.{o} port {port} ssh2: RSA SHA256:abcdefghijklmnop",
    "<86>Nov 27 12:{m:02d}:{s:02d} web-{h} sudo:   user{u} : TTY=pts/{o} ; PWD=/home/user{u} ; "
    "USER=root ; COMMAND=/usr/bin/systemctl restart app{port}",
    "<30>Nov 27 12:{m:02d}:{s:02d} web-{h} systemd[1]: Started app{port}.service - App {u}.",
    "<78>Nov 27 12:{m:02d}:{s:02d} db-{h} CRON[{pid}]: (root) CMD (run-parts /etc/cron.hourly {u})",
)


def messages(start: int, count: int) -> bytes:
    out = []
    for i in range(start, start + count):
        template = TEMPLATES[i % len(TEMPLATES)]
        out.append(
            template.format(
                m=i // 60 % 60,
                s=i % 60,
                h=i % 7,
                pid=1000 + i % 50000,
                u=i % 997,
                o=i % 250,
                port=1024 + i % 60000,
            )
        )
    return ("\n".join(out) + "\n").encode()


@contextlib.contextmanager
def daemon(
    work: Path, source: str, workers: int | None, rules: bool
) -> Iterator[tuple[int, Path, int]]:
    """``auditcorr run`` with one listener; yields its port, the store path and its
    process group (the daemon and its workers).

    Without ``rules`` the built-in rule pack is off: the figure is then the
    ingest path alone (parse, normalize, store), as issue 4 asks.
    """
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    kind = source.split("_")[1]
    config = work / "config.toml"
    config.write_text(
        f'[daemon]\nstate_dir = "{work / "state"}"\nlog_format = "json"\n'
        + (f"workers = {workers}\n" if workers else "")
        + "\n[store]\nretention_days = 0\n\n"
        + ("" if rules else "[rules]\nbuiltin = false\n\n")
        + f'[sources.{SOURCE}]\ntype = "{source}"\nlisten = "{kind}:127.0.0.1:0"\n'
    )
    with running(config, work / "daemon.log") as (proc, listening):
        yield int(listening["port"]), work / "state" / "timeline.db", proc.pid


def send_for(port: int, seconds: float) -> tuple[int, float]:
    """Send as fast as the connection takes it for ``seconds``; messages sent, start time."""
    sent = 0
    with socket.create_connection(("127.0.0.1", port)) as conn:
        began = time.monotonic()
        end = began + seconds
        while time.monotonic() < end:
            conn.sendall(messages(sent, CHUNK))
            sent += CHUNK
    return sent, began


def tcp_run(work: Path, seconds: float, workers: int | None, rules: bool) -> dict[str, float]:
    with daemon(work, "syslog_tcp", workers, rules) as (port, db, group):
        cpu = group_cpu_secs(group)
        sent, began = send_for(port, seconds)
        sending = time.monotonic() - began
        stored_at = wait_stored(db, sent, source=SOURCE)
        stored = count_events(db, SOURCE)
        cpu = group_cpu_secs(group) - cpu
    return {
        "sent": sent,
        "stored": stored,
        "lost": sent - stored,
        "send_secs": round(sending, 1),
        "msgs_per_sec": round(sent / (stored_at - began)),
        "cpu_us_per_msg": round(cpu / sent * 1e6, 1),
    }


def _reset(port: int) -> None:
    """Connect and reset at once (SO_LINGER 0): the cheapest misbehaving client."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def _send_one(port: int, text: str, source: str = "127.0.0.1") -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=30, source_address=(source, 0)) as c:
        c.sendall(f"<38>Nov 27 12:00:00 bench-host sshd[1]: {text}\n".encode())


def connections_run(work: Path, cycles: int) -> dict[str, object]:
    """Accept rate under connect-and-reset, log lines it caused, and whether an idle
    flood from one address locks another sender out."""
    with daemon(work, "syslog_tcp", None, False) as (port, db, _):
        log = work / "daemon.log"
        lines_before = len(log.read_bytes().splitlines())
        began = time.monotonic()
        for _ in range(cycles):
            _reset(port)
        # From another address: the resets may still fill this one's connection cap.
        _send_one(port, "after the resets", source="127.0.0.3")
        accepted_at = wait_stored(db, 1, timeout=120, source=SOURCE)
        time.sleep(1)
        log_lines = len(log.read_bytes().splitlines()) - lines_before
        idle = []
        with contextlib.ExitStack() as stack:
            for _ in range(1024):
                with contextlib.suppress(OSError):
                    idle.append(stack.enter_context(socket.create_connection(("127.0.0.1", port))))
            time.sleep(1)
            flood_began = time.monotonic()
            try:
                _send_one(port, "from another address", source="127.0.0.2")
                stored_at: float | None = wait_stored(db, 2, timeout=20, source=SOURCE)
            except (OSError, RuntimeError):
                stored_at = None
    return {
        "accepted_per_sec": round(cycles / (accepted_at - began)),
        "log_lines_during_resets": log_lines,
        "idle_connections_opened": len(idle),
        "other_sender_stored": stored_at is not None,
        "other_sender_secs": None if stored_at is None else round(stored_at - flood_began, 2),
    }


def crash_run(work: Path, seconds: float) -> dict[str, object]:
    """Messages lost by kill -9 of the daemon while an unpaced sender writes."""
    with daemon(work, "syslog_tcp", None, False) as (port, db, group):
        sent = 0
        with socket.create_connection(("127.0.0.1", port)) as conn:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                conn.sendall(messages(sent, CHUNK))
                sent += CHUNK
            os.killpg(group, signal.SIGKILL)
        time.sleep(1)
        stored = count_events(db, SOURCE)
    return {"sent": sent, "stored": stored, "lost": sent - stored}


def rsyslog_run(work: Path, count: int) -> dict[str, float]:
    """rsyslogd (imtcp -> omfile) taking ``count`` messages: the C reference."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = work / "out.log"
    conf = work / "rsyslog.conf"
    conf.write_text(
        f'global(workDirectory="{work}")\nmodule(load="imtcp")\n'
        f'input(type="imtcp" address="127.0.0.1" port="{port}")\n'
        f'action(type="omfile" file="{out}")\n'
    )
    rsyslogd = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
    proc = subprocess.Popen([rsyslogd, "-n", "-f", str(conf), "-i", str(work / "pid")])
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            time.sleep(0.1)
        began = time.monotonic()
        with socket.create_connection(("127.0.0.1", port)) as conn:
            for start in range(0, count, CHUNK):
                conn.sendall(messages(start, min(CHUNK, count - start)))
        lines = 0
        while lines < count:
            time.sleep(0.05)
            with contextlib.suppress(FileNotFoundError), out.open("rb") as handle:
                lines = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
            if time.monotonic() - began > 300:
                raise RuntimeError(f"rsyslog wrote {lines} of {count}")
        elapsed = time.monotonic() - began
    finally:
        proc.terminate()
        proc.wait(30)
    return {"msgs_per_sec": round(count / elapsed), "lines": lines}


def udp_run(
    work: Path, rates: list[int], seconds: float, workers: int | None, rules: bool
) -> dict[str, object]:
    """Loss at each rate; the highest rate with loss under 0.1 %."""
    results: dict[str, float] = {}
    best = 0
    with daemon(work, "syslog_udp", workers, rules) as (port, db, _):
        total = 0
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for rate in rates:
                tick = 0.01
                per_tick = max(1, int(rate * tick))
                began = time.monotonic()
                sent = 0
                while (now := time.monotonic()) - began < seconds:
                    due = int((now - began) / tick + 1) * per_tick
                    while sent < due:
                        for line in messages(total + sent, 1).splitlines():
                            sock.sendto(line, ("127.0.0.1", port))
                        sent += 1
                    time.sleep(max(0.0, began + (due / per_tick) * tick - time.monotonic()))
                total += sent
                time.sleep(2)
                with contextlib.suppress(RuntimeError):
                    wait_stored(db, total, timeout=20, source=SOURCE)
                stored = count_events(db, SOURCE)
                lost = total - stored
                results[str(rate)] = round(100 * max(lost, 0) / total, 3)
                if lost / total < 0.001:
                    best = rate
                else:
                    break
    return {"loss_percent_by_rate": results, "max_rate_under_0_1_percent_loss": best}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--udp-rates", default="1000,2000,5000,10000,20000,30000,40000")
    parser.add_argument("--udp-seconds", type=float, default=5)
    parser.add_argument("--skip-udp", action="store_true")
    parser.add_argument(
        "--crash",
        type=float,
        metavar="SECS",
        help="measure what kill -9 loses instead: send for SECS, then SIGKILL the daemon",
    )
    parser.add_argument(
        "--connections",
        type=int,
        metavar="N",
        help="measure connection handling instead: N connect-and-reset cycles, an idle flood",
    )
    parser.add_argument(
        "--rules",
        action="store_true",
        help="run the built-in rule pack too (detection in the workers, correlation, alerts)",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="auditcorr-bench-syslog-"))
    if args.crash:
        crashes = [crash_run(work / f"crash{run}", args.crash) for run in range(args.runs)]
        lost = [int(str(result["lost"])) for result in crashes]
        print(json.dumps({"lost_median": statistics.median(lost), "runs": crashes}))
        shutil.rmtree(work, ignore_errors=True)
        return 0
    if args.connections:
        runs = [connections_run(work / f"conn{run}", args.connections) for run in range(args.runs)]
        for run, result in enumerate(runs):
            print(json.dumps({"run": run, "connections": result}), file=sys.stderr)
        rates = [int(str(result["accepted_per_sec"])) for result in runs]
        print(json.dumps({"accepted_per_sec_median": statistics.median(rates), "runs": runs}))
        shutil.rmtree(work, ignore_errors=True)
        return 0
    tcp, rsyslog, cpu = [], [], []
    for run in range(args.runs):
        result = tcp_run(work / f"tcp{run}", args.seconds, args.workers, args.rules)
        print(json.dumps({"run": run, "tcp": result}), file=sys.stderr)
        if result["lost"]:
            raise SystemExit(f"lost {result['lost']} messages")
        tcp.append(result["msgs_per_sec"])
        cpu.append(result["cpu_us_per_msg"])
        reference = rsyslog_run(work / f"rsyslog{run}", int(result["sent"]))
        print(json.dumps({"run": run, "rsyslog": reference}), file=sys.stderr)
        rsyslog.append(reference["msgs_per_sec"])
    summary: dict[str, object] = {
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, {platform.python_version()}",
        "seconds": args.seconds,
        "runs": args.runs,
        "rules": args.rules,
        "tcp_msgs_per_sec_median": statistics.median(tcp),
        "tcp_runs": tcp,
        "rsyslog_msgs_per_sec_median": statistics.median(rsyslog),
        "rsyslog_runs": rsyslog,
        "ratio_to_rsyslog": round(statistics.median(tcp) / statistics.median(rsyslog), 3),
        "tcp_cpu_us_per_msg_median": statistics.median(cpu),
    }
    if not args.skip_udp:
        rates = [int(r) for r in args.udp_rates.split(",")]
        summary["udp"] = udp_run(work / "udp", rates, args.udp_seconds, args.workers, args.rules)
    shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
