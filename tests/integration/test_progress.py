"""On a terminal, backfill shows a progress bar; off one, only the summary line."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from datetime import timedelta
from types import ModuleType

import pytest
from itsupport import Workspace, cli_env, generate, write_tree

pytestmark = pytest.mark.integration


def test_backfill_on_a_terminal_shows_progress_with_events_per_second(
    workspace: Workspace, ctgen: ModuleType
) -> None:
    """Under a pseudo-terminal the bar counts events and shows a rate and the file count."""
    records = generate(ctgen, 2000, seed=51, span=timedelta(minutes=30))
    write_tree(ctgen, workspace.data, records, per_file=200)
    workspace.write_config()
    leader, follower = pty.openpty()
    argv = [sys.executable, "-m", "daemon.cli", "backfill", "--config", str(workspace.config)]
    proc = subprocess.Popen(
        argv,
        cwd=workspace.root,
        env={**cli_env(), "COLUMNS": "160"},
        stdin=follower,
        stdout=subprocess.PIPE,
        stderr=follower,
    )
    os.close(follower)
    screen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        screen += chunk
    out, _ = proc.communicate(timeout=120)
    os.close(leader)
    assert proc.returncode == 0, screen.decode(errors="replace")
    text = screen.decode(errors="replace")
    assert " events" in text, text
    assert "events/s" in text, text
    assert "files=" in text, text
    assert out.decode().startswith("backfill: files="), out
