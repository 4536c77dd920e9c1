"""``journald``: the real journalctl reading a journal file made by systemd-journal-remote."""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from itsupport import Daemon, Workspace, wait_for
from syslogsupport import write_config
from testdata import need

pytestmark = pytest.mark.integration

StartDaemon = Callable[[Workspace, str], Daemon]
JOURNAL_REMOTE = "/lib/systemd/systemd-journal-remote"


def append_entries(journal: Path, start: int, count: int) -> None:
    """Write entries in journal export format and let systemd-journal-remote add them."""
    now = int(time.time() * 1e6)
    export = "".join(
        f"__REALTIME_TIMESTAMP={now + i}\n__MONOTONIC_TIMESTAMP={i + 1}\n"
        "_BOOT_ID=0123456789abcdef0123456789abcdef\n_HOSTNAME=web-1\n"
        f"SYSLOG_IDENTIFIER=sshd\n_PID={100 + i}\nPRIORITY=6\nSYSLOG_FACILITY=10\n"
        "_SYSTEMD_UNIT=ssh.service\n"
        f"MESSAGE=Accepted publickey for u{i} from 10.0.0.{i % 250} port {2000 + i} ssh2\n\n"
        for i in range(start, start + count)
    )
    source = journal.with_suffix(f".{start}.export")
    source.write_text(export)
    tool = JOURNAL_REMOTE if Path(JOURNAL_REMOTE).exists() else need("systemd-journal-remote")
    subprocess.run(
        [tool, "-o", str(journal), str(source)], check=True, capture_output=True, timeout=30
    )


def test_backfill_follow_and_resume_from_the_cursor(
    workspace: Workspace, daemons: StartDaemon
) -> None:
    """Backfill, then follow, then a restart resumes after the saved cursor: each entry once."""
    need("journalctl")
    if not Path(JOURNAL_REMOTE).exists():
        need("systemd-journal-remote")
    journal = workspace.data / "remote.journal"
    append_entries(journal, 0, 20)
    write_config(
        workspace,
        {"journal": {"type": "journald", "files": [str(journal)], "start": "beginning"}},
    )
    result = workspace.backfill()
    assert result.returncode == 0, str(result)
    assert result.summary["stored"] == 20
    daemon = daemons(workspace, "daemon")
    daemon.wait_started()
    append_entries(journal, 20, 10)
    wait_for("30 entries", lambda: workspace.count() >= 30, timeout=30, context=daemon.tail)
    assert daemon.stop() == 0
    append_entries(journal, 30, 5)  # while stopped: read after the saved cursor
    again = daemons(workspace, "again")
    wait_for("35 entries", lambda: workspace.count() >= 35, timeout=30, context=again.tail)
    # A marker entry after the data: the source reads in cursor order, so an entry
    # read twice would be stored before it.
    append_entries(journal, 35, 1)
    wait_for(
        "the marker entry",
        lambda: any(d["user"]["name"] == "u35" for d in workspace.events_read()),
        timeout=30,
        context=again.tail,
    )
    docs = workspace.events_read()
    names = Counter(d["user"]["name"] for d in docs)
    assert len(names) == 36
    assert max(names.values()) == 1
    sample = next(d for d in docs if d["user"]["name"] == "u7")
    assert sample["event"]["action"] == "ssh_login"
    assert sample["event"]["outcome"] == "success"
    assert sample["host"]["name"] == "web-1"
    assert sample["process"] == {"name": "sshd", "pid": 107}
    assert sample["log"]["syslog"]["priority"] == 86
    assert sample["systemd"]["unit"] == "ssh.service"
    assert again.stop() == 0
