"""``auditd_file``: an audit log read by backfill, then followed while the daemon runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from itsupport import Daemon, Workspace, wait_for
from syslogsupport import write_config

pytestmark = pytest.mark.integration

StartDaemon = Callable[[Workspace, str], Daemon]
SAMPLE = Path(__file__).resolve().parents[3] / "shared" / "data" / "auditd" / "reassembly"


def test_backfill_then_follow(workspace: Workspace, daemons: StartDaemon) -> None:
    sample = SAMPLE / "normal.log"
    if not sample.is_file():
        pytest.skip(f"no auditd samples in {SAMPLE}")
    log = workspace.data / "audit.log"
    log.write_bytes(sample.read_bytes())
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
