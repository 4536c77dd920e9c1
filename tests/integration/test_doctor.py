"""``auditcorr doctor`` run as operators run it: a checklist and an exit status."""

from __future__ import annotations

import socket

import pytest
from itsupport import Workspace

from daemon.doctor.host import kernel_clock_synchronized

pytestmark = pytest.mark.integration

CLOCK_FAILS = kernel_clock_synchronized() is False
"""Some hosts (containers without NTP) really have an unsynchronized clock."""


def _marks(stdout: str) -> dict[str, str]:
    """Check name -> mark, from the checklist lines."""
    found = {}
    for line in stdout.splitlines():
        if line[:2] in {"✓ ", "✗ "}:
            found[line[2:].partition(": ")[0]] = line[0]
    return found


def test_good_config_passes_every_check(workspace: Workspace) -> None:
    """Config, state, store, disk, ports, clock and the source's path: all ticked."""
    workspace.write_config()
    result = workspace.cli("doctor")
    marks = _marks(result.stdout)
    assert set(marks) >= {
        "config valid",
        "state directory writable",
        "store writable",
        "disk space",
        "clock",
        "sources.ct_org",
    }, result.stdout
    failed = {name for name, mark in marks.items() if mark == "✗"}
    assert failed == ({"clock"} if CLOCK_FAILS else set()), str(result)
    assert result.returncode == (1 if CLOCK_FAILS else 0), str(result)


def test_invalid_config_is_reported_not_raised(workspace: Workspace) -> None:
    """Each config problem is a failed check with its key path and hint; exit status 1."""
    workspace.write_config({"ct_org": {"path": workspace.data, "pol_interval_secs": 1}})
    result = workspace.cli("doctor")
    assert result.returncode == 1, str(result)
    assert "✗ config sources.ct_org.pol_interval_secs: unknown key" in result.stdout
    assert "hint: did you mean 'poll_interval_secs'?" in result.stdout
    assert "1 of 1 checks failed" in result.stdout


def test_problems_found_are_explained(workspace: Workspace) -> None:
    """A port taken and a source tree gone fail, each with a hint; the rest still runs."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        workspace.write_config()
        text = workspace.config.read_text()
        workspace.config.write_text(text + f'\n[api]\nlisten = "127.0.0.1:{port}"\n')
        workspace.data.rename(workspace.root / "moved")
        workspace.data.mkdir()
        (workspace.data / "x.json").symlink_to(workspace.root / "nowhere.json")
        result = workspace.cli("doctor")
    assert result.returncode == 1, str(result)
    lines = result.stdout.splitlines()
    port_line = next(i for i, line in enumerate(lines) if line.startswith("✗ port free: api"))
    assert f"tcp {port} is in use" in lines[port_line]
    assert lines[port_line + 1].startswith("    hint: see what holds it")
    source = next(i for i, line in enumerate(lines) if line.startswith("✗ sources.ct_org"))
    assert "not readable" in lines[source]
    assert lines[source + 1].startswith("    hint: give the service user read access")
    assert _marks(result.stdout)["store writable"] == "✓"


def test_outputs_are_reached_without_sending(workspace: Workspace) -> None:
    """Each output is named with its reachability; a refused one fails with a hint."""
    with socket.socket() as listening, socket.socket() as closed:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        up, down = listening.getsockname()[1], closed.getsockname()[1]
        workspace.write_config()
        with workspace.config.open("a") as config:
            config.write(
                f'\n[outputs.siem]\ntype = "syslog"\nendpoint = "tcp://127.0.0.1:{up}"\n'
                f'\n[outputs.hook]\ntype = "webhook"\nendpoint = "http://127.0.0.1:{down}/x"\n'
            )
        result = workspace.cli("doctor")
    assert result.returncode == 1, str(result)
    lines = result.stdout.splitlines()
    assert f"✓ outputs.siem: connect 127.0.0.1:{up}: TCP connection opened" in lines, str(result)
    hook = next(i for i, line in enumerate(lines) if line.startswith("✗ outputs.hook: connect"))
    assert lines[hook + 1] == (
        "    hint: nothing listens there: is the receiver running, and is the port right?"
    )
