# ruff: noqa: E501 - a table of log lines reads best one case a line
"""Program messages to ECS actions, categories and fields (the on-prem contract)."""

from __future__ import annotations

from typing import Any

import pytest
from normsupport import flat

from connectors.syslog.batch import header
from daemon.normalize import Limits, syslog


def doc(program: str, message: str) -> dict[str, Any]:
    payload = (
        header(1_764_244_800 * 10**9, "UTC")
        + f"Nov 27 12:00:01 host1 {program}[77]: {message}".encode()
    )
    [record] = syslog.decode(payload, Limits())
    document: dict[str, Any] = syslog.normalize(record).to_document()
    return document


CASES: list[tuple[str, str, dict[str, Any]]] = [
    (
        "sshd",
        "Accepted publickey for alice from 10.0.0.5 port 50022 ssh2: RSA SHA256:abc",
        {
            "event.action": "ssh_login",
            "event.category": ["authentication", "session"],
            "event.type": ["start"],
            "event.outcome": "success",
            "event.dataset": "system.auth",
            "user.name": "alice",
            "source.ip": "10.0.0.5",
            "source.port": 50022,
            "system.auth.ssh.event": "Accepted",
            "system.auth.ssh.method": "publickey",
            "related.ip": ["10.0.0.5"],
        },
    ),
    (
        "sshd",
        "Accepted keyboard-interactive/pam for bob from 2001:DB8::1 port 22 ssh2",
        {"system.auth.ssh.method": "keyboard-interactive/pam", "source.ip": "2001:db8::1"},
    ),
    (
        "sshd",
        "Failed password for invalid user admin from 203.0.113.9 port 4444 ssh2",
        {
            "event.action": "ssh_login",
            "event.category": ["authentication"],
            "event.outcome": "failure",
            "user.name": "admin",
            "system.auth.ssh.event": "Failed",
            "system.auth.ssh.method": "password",
        },
    ),
    (
        "sshd",
        "Invalid user oracle from 198.51.100.3 port 5555",
        {"event.outcome": "failure", "system.auth.ssh.event": "Invalid", "user.name": "oracle"},
    ),
    (
        "sshd",
        "Disconnected from user alice 10.0.0.5 port 50022",
        {"event.action": "ssh_logout", "event.category": ["session"], "event.type": ["end"]},
    ),
    (
        "sshd",
        "pam_unix(sshd:session): session closed for user alice",
        {"event.action": "ssh_logout", "user.name": "alice", "event.outcome": "success"},
    ),
    (
        "sudo",
        "alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/apt install -y nginx",
        {
            "event.action": "sudo",
            "event.category": ["process"],
            "event.type": ["start"],
            "event.outcome": "success",
            "user.name": "alice",
            "user.effective.name": "root",
            "process.command_line": "/usr/bin/apt install -y nginx",
            "system.auth.sudo.command": "/usr/bin/apt install -y nginx",
            "system.auth.sudo.tty": "pts/0",
            "system.auth.sudo.pwd": "/home/alice",
        },
    ),
    (
        "sudo",
        "mallory : 3 incorrect password attempts ; TTY=pts/2 ; PWD=/tmp ; USER=root ; COMMAND=/bin/sh",
        {"event.outcome": "failure", "system.auth.sudo.error": "3 incorrect password attempts"},
    ),
    (
        "su",
        "(to root) alice on pts/0",
        {
            "event.action": "su",
            "event.outcome": "success",
            "user.name": "alice",
            "user.effective.name": "root",
        },
    ),
    (
        "su",
        "FAILED SU (to root) bob on pts/1",
        {"event.action": "su", "event.outcome": "failure", "user.name": "bob"},
    ),
    (
        "su",
        "pam_unix(su:auth): authentication failure; logname=bob uid=1001 euid=0 tty=/dev/pts/1 ruser=bob rhost=  user=root",
        {"event.outcome": "failure", "user.name": "bob", "user.effective.name": "root"},
    ),
    (
        "useradd",
        "new user: name=carol, UID=1002, GID=1003, home=/home/carol, shell=/bin/bash, from=/dev/pts/0",
        {
            "event.action": "user_created",
            "event.category": ["iam"],
            "event.type": ["user", "creation"],
            "user.target.name": "carol",
            "user.target.id": "1002",
            "group.id": "1003",
        },
    ),
    (
        "useradd",
        "new group: name=carol, GID=1003",
        {"event.action": "group_created", "group.name": "carol", "group.id": "1003"},
    ),
    (
        "userdel",
        "delete user 'carol'",
        {
            "event.action": "user_deleted",
            "event.type": ["user", "deletion"],
            "user.target.name": "carol",
        },
    ),
    (
        "usermod",
        "add 'carol' to group 'sudo'",
        {
            "event.action": "user_modified",
            "event.type": ["user", "change"],
            "user.target.name": "carol",
            "group.name": "sudo",
        },
    ),
    (
        "groupadd",
        "group added to /etc/group: name=devs, GID=1010",
        {"event.action": "group_created", "event.type": ["group", "creation"], "group.id": "1010"},
    ),
    ("groupdel", "group 'devs' removed", {"event.action": "group_deleted", "group.name": "devs"}),
    (
        "gpasswd",
        "user dave added by root to group devs",
        {
            "event.action": "group_modified",
            "event.type": ["group", "change"],
            "group.name": "devs",
            "user.target.name": "dave",
        },
    ),
    (
        "passwd",
        "pam_unix(passwd:chauthtok): password changed for dave",
        {
            "event.action": "password_changed",
            "event.type": ["user", "change"],
            "user.target.name": "dave",
        },
    ),
    (
        "chpasswd",
        "pam_unix(chpasswd:chauthtok): password changed for erin",
        {"event.action": "password_changed", "user.target.name": "erin"},
    ),
    (
        "systemd-logind",
        "New session 42 of user alice.",
        {
            "event.action": "session_started",
            "event.category": ["session"],
            "event.type": ["start"],
            "user.name": "alice",
            "event.dataset": "system.auth",
        },
    ),
    (
        "systemd-logind",
        "Removed session 42.",
        {"event.action": "session_ended", "event.type": ["end"]},
    ),
    (
        "systemd",
        "Stopped nginx.service - A high performance web server.",
        {
            "event.action": "service_stopped",
            "event.type": ["change"],
            "service.name": "nginx.service",
            "event.dataset": "system.syslog",
        },
    ),
    (
        "systemd",
        "Started Session 42 of User alice.",
        {"event.action": "service_started", "service.name": "Session 42 of User alice"},
    ),
    (
        "systemctl",
        "disable nginx.service",
        {
            "event.action": "service_disabled",
            "event.category": ["configuration"],
            "service.name": "nginx.service",
        },
    ),
    (
        "dpkg",
        "upgrade openssl:amd64 3.0.11-1 3.0.13-1",
        {
            "event.action": "package_upgraded",
            "event.category": ["package"],
            "event.type": ["change"],
            "package.name": "openssl",
            "package.version": "3.0.13-1",
        },
    ),
    (
        "dpkg",
        "remove nginx:amd64 1.22.1-9 <none>",
        {
            "event.action": "package_removed",
            "event.type": ["deletion"],
            "package.version": "1.22.1-9",
        },
    ),
    (
        "apt",
        "Install: nginx:amd64 (1.22.1-9)",
        {
            "event.action": "package_installed",
            "package.name": "nginx",
            "package.version": "1.22.1-9",
        },
    ),
    (
        "dnf",
        "Installed: nginx-1:1.20.1-14.el9.x86_64",
        {
            "event.action": "package_installed",
            "event.type": ["installation"],
            "package.name": "nginx",
            "package.version": "1:1.20.1-14.el9",
        },
    ),
    (
        "yum",
        "Erased: httpd-2.4.6-97.el7.x86_64",
        {"event.action": "package_removed", "package.name": "httpd"},
    ),
]


@pytest.mark.parametrize(
    ("program", "message", "expected"), CASES, ids=[f"{p}:{m[:30]}" for p, m, _ in CASES]
)
def test_program_messages(program: str, message: str, expected: dict[str, Any]) -> None:
    d = flat(doc(program, message))
    assert {key: d.get(key) for key in expected} == expected
    assert d["process.name"] == program
    assert d["process.pid"] == 77
    assert d["host.name"] == "host1"
    assert d["event.kind"] == "event"


def test_unknown_messages_stay_plain_events() -> None:
    d = flat(doc("sshd", "Server listening on :: port 22."))
    assert "event.action" not in d
    assert d["event.dataset"] == "system.auth"
    d = flat(doc("cron", "(root) CMD (run-parts /etc/cron.hourly)"))
    assert d["event.dataset"] == "system.syslog"
