"""Private state whatever the umask; doctor checks the modes and how API tokens travel."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from itsupport import Daemon, Workspace, wait_for

from daemon.api.auth import hash_token

pytestmark = pytest.mark.integration


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """Children started in the test inherit umask 022, as under a root shell."""
    before = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(before)


def test_a_daemon_under_umask_022_keeps_its_files_private(
    workspace: Workspace, daemons: Callable[[Workspace, str], Daemon], loose_umask: None
) -> None:
    """State directory 0750, store, WAL, SHM and backups 0640 or tighter: files made
    before (0755/0644) are tightened, files made while running are created so."""
    workspace.write_config()
    workspace.state.mkdir(mode=0o755)
    workspace.state.chmod(0o755)
    backup = workspace.state / "timeline.db.schema1-20261101T000000Z.bak"
    backup.write_bytes(b"")
    backup.chmod(0o644)
    daemon = daemons(workspace, "daemon")
    daemon.wait_started()
    files = [workspace.db, workspace.state / "timeline.db-wal", workspace.state / "timeline.db-shm"]
    wait_for("the WAL and SHM files", lambda: all(path.exists() for path in files), timeout=30)
    assert mode(workspace.state) == 0o750
    for path in [*files, backup]:
        assert mode(path) & 0o137 == 0, f"{path.name} is {mode(path):04o}"


def _doctor_marks(workspace: Workspace) -> dict[str, str]:
    result = workspace.cli("doctor")
    return {
        line[2:].partition(": ")[0]: line
        for line in result.stdout.splitlines()
        if line[:2] in {"✓ ", "✗ "}
    }


def test_doctor_flags_state_others_can_read(workspace: Workspace, loose_umask: None) -> None:
    """A state directory 0755 and a store 0644 fail 'state private', naming them."""
    workspace.write_config()
    workspace.state.mkdir()
    workspace.db.write_bytes(b"")
    workspace.state.chmod(0o755)
    workspace.db.chmod(0o644)
    line = _doctor_marks(workspace)["state private"]
    assert line.startswith("✗"), line
    assert f"{workspace.state} 0755" in line
    assert f"{workspace.db} 0644" in line
    workspace.state.chmod(0o700)
    workspace.db.chmod(0o600)
    assert _doctor_marks(workspace)["state private"].startswith("✓")


def _with_api(workspace: Workspace, api: str) -> None:
    token = f'[[api.tokens]]\nname = "grafana"\nrole = "reader"\nhash = "{hash_token("t" * 32)}"\n'
    workspace.write_config()
    workspace.config.write_text(workspace.config.read_text() + f"\n[api]\n{api}\n{token}")


def test_tokens_over_plain_http_on_a_network_stop_the_daemon(workspace: Workspace) -> None:
    """Tokens on 0.0.0.0 without TLS: run exits 2 naming api.tokens and the ways out."""
    _with_api(workspace, 'listen = "0.0.0.0:0"')
    result = workspace.cli("run", timeout=60)
    assert result.returncode == 2, str(result)
    assert "api.tokens: this token would travel over plain HTTP to 0.0.0.0:0" in result.stderr
    assert "allow_plain_http = true" in result.stderr


def test_doctor_flags_plain_http_even_when_allowed(workspace: Workspace) -> None:
    """With allow_plain_http the daemon starts, but doctor still fails the transport check."""
    _with_api(workspace, 'listen = "0.0.0.0:0"\nallow_plain_http = true')
    line = _doctor_marks(workspace)["api tokens encrypted"]
    assert line.startswith("✗"), line
    assert "api.tokens travel over plain HTTP" in line
    _with_api(workspace, 'listen = "127.0.0.1:0"')
    assert _doctor_marks(workspace)["api tokens encrypted"].startswith("✓")
