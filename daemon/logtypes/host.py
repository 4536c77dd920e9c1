"""What the host log types share: the on-prem ECS contract of syslog, the journal and auditd.

A login read from the journal is the same event as one read from auth.log, so
the three host log types answer change questions alike (and, by the registry's
default, identity ones: the owner of an account on a host).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from connectors.syslog.batch import header
from daemon.logtypes import child

HOST_CHANGES: Final = frozenset(
    {
        "user_created",
        "user_deleted",
        "user_modified",
        "group_created",
        "group_deleted",
        "group_modified",
        "password_changed",
        "package_installed",
        "package_removed",
        "package_upgraded",
        "service_started",
        "service_stopped",
        "service_enabled",
        "service_disabled",
        "service_restarted",
        # auditd record types of account changes
        "add_user",
        "del_user",
        "add_group",
        "del_group",
        "user_mgmt",
        "grp_mgmt",
        "user_chauthtok",
    }
)
"""``event.action`` values of host events that change something, besides ``sudo``."""

ACTION_KINDS: Final = {
    "sudo": ("sudo",),
    "ssh": ("ssh_login",),
    "package": tuple(sorted(a for a in HOST_CHANGES if a.startswith("package_"))),
    "service": tuple(sorted(a for a in HOST_CHANGES if a.startswith("service_"))),
}
"""The scope action kinds of ``change_action`` -> the ``event.action`` values behind them."""


def is_change(doc: Mapping[str, Any]) -> bool:
    """A successful ``sudo`` command; user, group, password, package and service changes."""
    event = doc.get("event") or {}
    action = event.get("action")
    if action == "sudo":
        return bool(event.get("outcome") == "success")
    return action in HOST_CHANGES and event.get("outcome") != "failure"


def change_action(doc: Mapping[str, Any]) -> str | None:
    """``sudo:COMMAND``, ``ssh:login``, ``package:NAME``, ``service:UNIT``."""
    action = child(doc, "event").get("action")
    if not isinstance(action, str):
        return None
    if action == "sudo":
        sudo = child(child(child(doc, "system"), "auth"), "sudo")
        command = sudo.get("command") or child(doc, "process").get("command_line")
        return f"sudo:{command}" if command else None
    if action == "ssh_login":
        return "ssh:login"
    if action.startswith("package_"):
        name = child(doc, "package").get("name")
        return f"package:{name}" if name else None
    if action.startswith("service_"):
        name = child(doc, "service").get("name")
        return f"service:{name}" if name else None
    return action


def batch_payload(name: str, mtime_ns: int, payload: bytes) -> bytes:
    """A file of plain lines gets the batch header a file source adds (its year, where
    a stamp has none, as if read when the file was last written, times without a
    zone in UTC); a payload a source made has one."""
    return payload if payload.startswith(b"{") else header(mtime_ns, "UTC", file=name) + payload
