"""The auditor audits itself: admins' CLI actions and identity map changes are events on
the timeline (auditcorr.audit)."""

from __future__ import annotations

import os
import pwd
from collections.abc import Callable
from typing import Any

import pytest
from itsupport import Daemon, Workspace, log_name, put_file
from test_alerts_cli import configure, fill, make_alert

pytestmark = pytest.mark.integration

ME = pwd.getpwuid(os.geteuid()).pw_name


def audit_entries(workspace: Workspace) -> list[dict[str, Any]]:
    return [
        doc
        for doc in workspace.timeline("--source", "auditcorr")
        if doc["event"]["dataset"] == "auditcorr.audit"
    ]


def test_reading_the_quarantine_from_the_cli_is_on_the_timeline(workspace: Workspace) -> None:
    """``auditcorr quarantine`` adds a quarantine_read event naming the local account."""
    workspace.write_config()
    put_file(workspace.data, log_name("broken"), b"not a gzip file")
    workspace.backfill()
    listing = workspace.cli("quarantine", "--raw")
    assert listing.returncode == 0, str(listing)
    assert "1 shown, 1 in quarantine" in listing.stdout
    (entry,) = audit_entries(workspace)
    assert entry["event"]["action"] == "quarantine_read"
    assert entry["user"]["name"] == ME
    assert entry["labels"] == {"via": "cli", "role": "local"}
    assert entry["original"]["detail"]["entries"] == 1


def test_retrying_deliveries_from_the_cli_is_on_the_timeline(workspace: Workspace) -> None:
    """``alerts retry`` adds a deliveries_retried event with the ids and count; a retry
    that finds nothing to queue adds none."""
    configure(workspace, "http://127.0.0.1:9/hook")
    fill(workspace, [make_alert(n) for n in range(2)], failed=2).close()
    assert workspace.cli("alerts", "retry", "--all-failed").returncode == 0
    assert workspace.cli("alerts", "retry", "--all-failed").returncode == 0  # none left
    (entry,) = audit_entries(workspace)
    assert entry["event"]["action"] == "deliveries_retried"
    assert entry["original"]["detail"] == {"ids": "all failed", "count": 2}


def test_a_changed_identity_map_is_on_the_timeline_once(
    workspace: Workspace, daemons: Callable[[Workspace, str], Daemon]
) -> None:
    """A daemon starting with an identity map the timeline has not recorded adds an
    identity_map_changed event naming the config's owner and who was added, removed or
    changed; starting again unchanged adds none."""
    people = {
        "alice": '[[identity.people]]\nid = "alice"\nunix = ["alice"]\n',
        "bob": '[[identity.people]]\nid = "bob"\nunix = ["bob"]\n',
    }

    starts = iter(range(3))

    def start_with(*entries: str) -> None:
        workspace.write_config()
        workspace.config.write_text(workspace.config.read_text() + "\n" + "".join(entries))
        daemon = daemons(workspace, f"daemon{next(starts)}")  # a log file of its own
        daemon.wait_started()
        assert daemon.stop() == 0

    workspace.write_config()
    workspace.backfill()  # the store exists, so the timeline can be read before each start
    start_with(people["alice"], people["bob"])
    start_with(people["alice"], people["bob"])
    (first,) = audit_entries(workspace)
    assert first["event"]["action"] == "identity_map_changed"
    assert first["user"]["name"] == pwd.getpwuid(workspace.config.stat().st_uid).pw_name
    assert first["labels"] == {"via": "config", "role": "config owner"}
    assert first["original"]["detail"]["added"] == ["alice", "bob"]
    start_with(people["alice"].replace('["alice"]', '["alice", "root"]'))
    newest = audit_entries(workspace)[0]
    assert newest["original"]["detail"]["removed"] == ["bob"]
    assert newest["original"]["detail"]["changed"] == ["alice"]
    assert newest["original"]["detail"]["added"] == []
