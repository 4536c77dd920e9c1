"""``auditd_file``: an audit log read by backfill, then followed while the daemon runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from itsupport import Daemon, Workspace, wait_for
from syslogsupport import write_config
from testdata import CORPORA, SAMPLES, input_file

pytestmark = pytest.mark.integration

StartDaemon = Callable[[Workspace, str], Daemon]
LOGS = [SAMPLES / "auditd" / "commands.log", CORPORA / "auditd" / "reassembly" / "normal.log"]
"""Our own audit log and go-libaudit's, five events each."""


@pytest.mark.parametrize("sample", LOGS, ids=["ours", "go-libaudit"])
def test_backfill_then_follow(sample: Path, workspace: Workspace, daemons: StartDaemon) -> None:
    """Backfill stores the log's events; the running daemon then stores a line appended to it."""
    log = workspace.data / "audit.log"
    log.write_bytes(input_file(sample).read_bytes())
    write_config(
        workspace,
        {"audit": {"type": "auditd_file", "path": log, "start": "beginning", "host": "db-1"}},
    )
    result = workspace.backfill()
    assert result.returncode == 0, str(result)
    assert result.summary["stored"] == 5
    daemon = daemons(workspace, "daemon")
    daemon.wait_started()
    with log.open("ab") as handle:
        handle.write(
            b"type=USER_CMD msg=audit(1700000001.123:901): pid=900 uid=1000 auid=1000 ses=3 "
            b"msg='cwd=\"/\" cmd=7573657264656C206D616C6C6F7279 terminal=pts/0 res=success'\n"
        )
    wait_for("the new event", lambda: workspace.count() >= 6, timeout=30, context=daemon.tail)
    docs = workspace.events_read()
    assert len(docs) == 6
    [cmd] = [d for d in docs if d["event"]["action"] == "user_cmd"]
    assert cmd["process"]["command_line"] == "userdel mallory"
    assert cmd["host"]["name"] == "db-1"
    execs = [d for d in docs if d["event"]["action"] == "execve"]
    assert execs
    assert all(d["process"]["args"] for d in execs)
    assert daemon.stop() == 0
