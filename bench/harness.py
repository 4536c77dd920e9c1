"""Running the daemon as a user does and watching it from outside, for the benchmarks.

The benchmarks start ``python -m daemon.cli run --config FILE`` in a process
group of its own, read what it logs, count what its SQLite store holds through
a read-only connection, and read the memory and CPU time of its whole process
tree (the daemon, its worker processes, the forkserver) from /proc.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def count_events(db: Path, source: str | None = None) -> int:
    """Events in a SQLite store (0 while it does not exist yet), or those of one source
    (the timeline holds the alerts' entries too, under source ``rules``)."""
    if not db.exists():
        return 0
    sql, params = "SELECT count(*) FROM events", []
    if source is not None:
        sql, params = f"{sql} WHERE source = ?", [source]
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)) as c:
            return int(c.execute(sql, params).fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def wait_stored(db: Path, expected: int, timeout: float = 300, source: str | None = None) -> float:
    """Waits until ``expected`` events (of ``source``) are stored; returns the monotonic
    time they were."""
    deadline = time.monotonic() + timeout
    while (found := count_events(db, source)) < expected:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {found} of {expected} messages stored")
        time.sleep(0.05)
    return time.monotonic()


def logged(log: Path, event: str) -> dict[str, Any] | None:
    """The first JSON log record of ``event`` in ``log``, if there is one yet."""
    needle = f'"{event}"'
    for line in log.read_text(errors="replace").splitlines():
        if needle in line:
            with contextlib.suppress(ValueError):
                record: dict[str, Any] = json.loads(line)
                if record.get("event") == event:
                    return record
    return None


def start(
    config: Path, log: Path, ready: str | None = "listening", timeout: float = 60
) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """``auditcorr run --config`` in a process group of its own, its output in ``log``;
    returns once it logged ``ready`` (with that record), or at once when ``ready`` is None."""
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "daemon.cli", "run", "--config", str(config)],
            cwd=ROOT,
            stdout=sink,
            stderr=sink,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    if ready is None:
        return proc, {}
    deadline = time.monotonic() + timeout
    while (record := logged(log, ready)) is None:
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(proc, signal.SIGKILL)
            raise RuntimeError(log.read_text(errors="replace")[-3000:])
        time.sleep(0.1)
    return proc, record


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 60) -> None:
    """Signal the daemon's process group; SIGKILL it when it has not exited in ``timeout``."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@contextlib.contextmanager
def running(
    config: Path, log: Path, ready: str | None = "listening"
) -> Iterator[tuple[subprocess.Popen[bytes], dict[str, Any]]]:
    """``start``, then ``stop`` (SIGTERM) whatever happens."""
    proc, record = start(config, log, ready)
    try:
        yield proc, record
    finally:
        stop(proc)


def tree_rss(pid: int) -> tuple[int, int]:
    """Resident bytes of a process, and of it plus all its descendants."""
    own = total = 0
    stack = [pid]
    while stack:
        current = stack.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            rss = next(
                int(line.split()[1]) * 1024
                for line in status.splitlines()
                if line.startswith("VmRSS:")
            )
            total += rss
            if current == pid:
                own = rss
            for task in Path(f"/proc/{current}/task").iterdir():
                stack.extend(int(c) for c in (task / "children").read_text().split())
        except (OSError, StopIteration):
            continue
    return own, total


def tree_cpu_secs(pid: int) -> dict[int, float]:
    """CPU seconds (user and system) used so far by a process and each live descendant."""
    found: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    stack = [pid]
    while stack:
        current = stack.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rpartition(")")[2].split()
            found[current] = (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{current}/task").iterdir():
                stack.extend(int(c) for c in (task / "children").read_text().split())
        except (OSError, IndexError):
            continue
    return found


def group_cpu_secs(group: int) -> float:
    """CPU time used so far by the live processes of a process group: a cost per
    message that, unlike the rate, hardly depends on what else the machine runs."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[2]) == group:  # pgrp; then utime and stime
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")
