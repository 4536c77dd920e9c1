"""``syslog_file``: tailing a log file while logrotate rotates it (rename and copytruncate)."""

from __future__ import annotations

import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from itsupport import Daemon, Workspace, read_to_end, wait_for
from syslogsupport import write_config
from testdata import need

pytestmark = pytest.mark.integration

StartDaemon = Callable[[Workspace, str], Daemon]


def line(i: int) -> bytes:
    stamp = f"Nov 27 12:{i // 60 % 60:02d}:{i % 60:02d}"
    return f"{stamp} bastion sshd[{i}]: Failed password for u{i} from 192.0.2.1 port {i}\n".encode()


class Writer(threading.Thread):
    """Appends numbered lines, reopening the file every ``reopen`` lines (as a
    daemon reopens its log after logrotate's postrotate signal)."""

    def __init__(self, path: Path, start: int, count: int, reopen: int = 40) -> None:
        super().__init__(daemon=True)
        self.path, self.start_at, self.count, self.reopen = path, start, count, reopen

    def run(self) -> None:
        handle = self.path.open("ab")
        for i in range(self.start_at, self.start_at + self.count):
            if i % self.reopen == 0:
                handle.close()
                handle = self.path.open("ab")
            handle.write(line(i))
            handle.flush()
            if i % 20 == 0:
                time.sleep(0.005)
        handle.close()


def logrotate(workspace: Workspace, log: Path, mode: str) -> None:
    config = workspace.root / "logrotate.conf"
    config.write_text(f"{log} {{\n  rotate 50\n  {mode}\n  missingok\n}}\n")
    state = workspace.root / "logrotate.state"
    subprocess.run([need("logrotate"), "-f", "-s", str(state), str(config)], check=True, timeout=30)


def users(workspace: Workspace) -> Counter[str]:
    return Counter(d["user"]["name"] for d in workspace.events_read())


def read_through_marker(workspace: Workspace, daemon: Daemon, log: Path, marker: int) -> None:
    """Append line ``marker`` after the data and wait until the tailer committed the
    log's end: a line read twice would be stored by then, not after a guessed pause."""
    with log.open("ab") as handle:
        handle.write(line(marker))
    wait_for(
        f"line {marker} and the checkpoint at the end of {log.name}",
        lambda: read_to_end(workspace.db, "auth", log),
        timeout=30,
        context=daemon.tail,
    )


def _config(workspace: Workspace, log: Path) -> None:
    write_config(
        workspace,
        {
            "auth": {
                "type": "syslog_file",
                "path": log,
                "start": "beginning",
                "poll_interval_secs": 0.1,
            }
        },
    )


@pytest.mark.parametrize("mode", ["create", "copytruncate"])
def test_rotation_while_writing_loses_and_repeats_nothing(
    workspace: Workspace, daemons: StartDaemon, mode: str
) -> None:
    """Rotated four times while a writer appends (rename or copytruncate): every line once."""
    log = workspace.data / "auth.log"
    log.write_bytes(line(0))
    _config(workspace, log)
    daemon = daemons(workspace, "daemon")
    daemon.wait_started()
    total = 1
    for _ in range(4):
        writer = Writer(log, total, 400)
        writer.start()
        if mode == "create":
            time.sleep(0.05)
            logrotate(workspace, log, mode)  # the writer is still writing to the renamed file
        writer.join()
        total += 400
        if mode == "copytruncate":
            logrotate(workspace, log, mode)  # copied and truncated before the tailer caught up
        wait_for(
            f"{total} lines",
            lambda n=total: workspace.count() >= n,
            timeout=30,
            context=daemon.tail,
        )
    read_through_marker(workspace, daemon, log, total)
    seen = users(workspace)
    assert len(seen) == total + 1, sorted({f"u{i}" for i in range(total)} - set(seen))[:10]
    assert max(seen.values()) == 1
    assert daemon.stop() == 0


def test_restart_after_rotation_reads_the_rest_of_the_old_file(
    workspace: Workspace, daemons: StartDaemon
) -> None:
    """Lines written while stopped, then rotated away, are read from the old file at restart."""
    log = workspace.data / "auth.log"
    log.write_bytes(b"".join(line(i) for i in range(100)))
    _config(workspace, log)
    daemon = daemons(workspace, "daemon")
    wait_for("100 lines", lambda: workspace.count() >= 100, timeout=30, context=daemon.tail)
    assert daemon.stop() == 0
    with log.open("ab") as handle:  # written while the daemon is down ...
        handle.write(b"".join(line(i) for i in range(100, 150)))
    logrotate(workspace, log, "create")  # ... then rotated away
    log.write_bytes(b"".join(line(i) for i in range(150, 170)))
    again = daemons(workspace, "again")
    wait_for("170 lines", lambda: workspace.count() >= 170, timeout=30, context=again.tail)
    read_through_marker(workspace, again, log, 170)
    seen = users(workspace)
    assert len(seen) == 171
    assert max(seen.values()) == 1
    assert again.stop() == 0


def test_backfill_reads_to_the_end_and_stops(workspace: Workspace) -> None:
    """Backfill stores the complete lines, not a partial last one, and a second run nothing."""
    log = workspace.data / "auth.log"
    log.write_bytes(b"".join(line(i) for i in range(50)) + b"partial line without newline")
    _config(workspace, log)
    result = workspace.backfill()
    assert result.returncode == 0, str(result)
    assert result.summary["stored"] == 50
    assert workspace.backfill().summary["stored"] == 0  # the checkpoint holds


def test_kill_9_while_tailing_stores_every_line_once(
    workspace: Workspace, daemons: StartDaemon
) -> None:
    """kill -9 of the daemon and its workers mid-file, then a restart: every line stored once."""
    log = workspace.data / "auth.log"
    total = 60_000  # more than one 4 MiB payload
    log.write_bytes(b"".join(line(i) for i in range(total)))
    _config(workspace, log)
    daemon = daemons(workspace, "daemon")
    # The first payload is 4 MiB, about 47,000 lines in one commit: on a loaded
    # two-core machine that has taken 70 s.
    wait_for(
        "some lines stored",
        lambda: workspace.count() > 0,
        timeout=120,
        interval=0.02,
        context=daemon.tail,
    )
    daemon.kill_group()  # SIGKILL to the daemon and its workers, mid-file if it was quick enough
    killed_at = workspace.count()
    again = daemons(workspace, "again")
    again.wait_started()
    wait_for(f"{total} lines", lambda: workspace.count() >= total, timeout=120, context=again.tail)
    read_through_marker(workspace, again, log, total)
    assert workspace.count() == total + 1
    assert again.stop() == 0
    assert killed_at < total or pytest.skip("the first daemon stored everything before the kill")
