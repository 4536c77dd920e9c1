"""What the messages of well-known programs mean, in ECS terms.

Follows Elastic's ``system/auth`` and ``system/syslog`` mappings with the
event actions of the on-prem ECS contract (docs/sources.md).  Each handler
reads one program's free text and fills the event; a message it does not
recognize leaves the event as a plain ``event`` of its dataset.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable
from typing import Final

from daemon.model import AuditEvent

AUTH_PROGRAMS: Final = frozenset(
    {
        "sshd",
        "sudo",
        "su",
        "useradd",
        "userdel",
        "usermod",
        "groupadd",
        "groupdel",
        "gpasswd",
        "passwd",
        "chpasswd",
        "chage",
        "systemd-logind",
        "login",
    }
)

Handler = Callable[[str, AuditEvent], None]


def dataset_of(program: str | None) -> str:
    return "system.auth" if program in AUTH_PROGRAMS else "system.syslog"


def classify(program: str | None, message: str, event: AuditEvent) -> None:
    """Fill action, categories, outcome and the program's fields from its message."""
    handler = _HANDLERS.get(program or "")
    if handler is None and program and program.startswith("sshd-session"):
        handler = _sshd  # OpenSSH 9.8 logs sessions from a program of its own
    if handler is not None:
        handler(message, event)


def _set(
    event: AuditEvent,
    action: str,
    category: list[str],
    types: list[str],
    outcome: str | None = None,
) -> None:
    event.action = action
    event.category = category
    event.type = types
    event.outcome = outcome


def _user(event: AuditEvent, name: str | None) -> None:
    if name:
        event.user_name = name
        _related_user(event, name)


def _related_user(event: AuditEvent, name: str) -> None:
    if name not in event.related_user:
        event.related_user.append(name)


def _target(event: AuditEvent, name: str) -> None:
    event.user_target_name = name
    _related_user(event, name)


@functools.lru_cache(maxsize=4096)
def canonical_ip(address: str) -> str | None:
    """The address in canonical form (matches CloudTrail's ``source.ip``), or None."""
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


def _source(event: AuditEvent, address: str, port: str | None) -> None:
    ip = canonical_ip(address)
    if ip is None:
        event.source_address = address
    else:
        event.source_ip = ip
        if ip not in event.related_ip:
            event.related_ip.append(ip)
    if port:
        event.fields["source.port"] = int(port)


# --------------------------------------------------------------------------- sshd

_SSH_ACCEPTED = re.compile(
    r"(Accepted|Failed) (\S+) for (invalid user )?(\S*) from (\S+) port (\d+)"
)
_SSH_INVALID = re.compile(r"Invalid user (\S*) from (\S+)(?: port (\d+))?")
_SSH_PAM_FAILURE = re.compile(
    r"pam_unix\(sshd:auth\): authentication failure;.*? rhost=(\S*)(?:\s+user=(\S+))?"
)
_SSH_DISCONNECTED = re.compile(
    r"Disconnected from (?:(?:invalid |authenticating )?user (\S+) )?(\S+) port (\d+)"
)
_SESSION_CLOSED = re.compile(r"pam_unix\(\S+:session\): session closed for user (\S+)")


def _sshd(message: str, event: AuditEvent) -> None:
    if (found := _SSH_ACCEPTED.match(message)) is not None:
        verdict, method, _, user, address, port = found.groups()
        if verdict == "Accepted":
            _set(event, "ssh_login", ["authentication", "session"], ["start"], "success")
        else:
            _set(event, "ssh_login", ["authentication"], ["start"], "failure")
        event.fields["system.auth.ssh.event"] = verdict
        event.fields["system.auth.ssh.method"] = method
        _user(event, user)
        _source(event, address, port)
    elif (found := _SSH_INVALID.match(message)) is not None:
        _set(event, "ssh_login", ["authentication"], ["start"], "failure")
        event.fields["system.auth.ssh.event"] = "Invalid"
        _user(event, found[1])
        _source(event, found[2], found[3])
    elif (found := _SSH_PAM_FAILURE.match(message)) is not None:
        _set(event, "ssh_login", ["authentication"], ["start"], "failure")
        event.fields["system.auth.ssh.event"] = "Failed"
        _user(event, found[2])
        if found[1]:
            _source(event, found[1], None)
    elif (found := _SSH_DISCONNECTED.match(message)) is not None:
        _set(event, "ssh_logout", ["session"], ["end"], "success")
        _user(event, found[1])
        _source(event, found[2], found[3])
    elif (found := _SESSION_CLOSED.match(message)) is not None:
        _set(event, "ssh_logout", ["session"], ["end"], "success")
        _user(event, found[1])


# --------------------------------------------------------------------------- sudo, su

_SUDO_HEAD = re.compile(r"\s*(\S+) : ")


def _sudo(message: str, event: AuditEvent) -> None:
    """``alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id``."""
    head = _SUDO_HEAD.match(message)
    if head is None:
        return
    rest = message[head.end() :]
    command: str | None = None
    at = rest.find("COMMAND=")
    if at >= 0:
        command = rest[at + len("COMMAND=") :]
        rest = rest[:at]
    values: dict[str, str] = {}
    errors: list[str] = []
    for segment in rest.split(" ; "):
        part = segment.strip(" ;")
        if not part:
            continue
        key, sep, value = part.partition("=")
        if sep and key.isupper():
            values[key] = value
        else:
            errors.append(part)
    if command is None and not values:
        return
    failed = bool(errors)
    _set(event, "sudo", ["process"], ["start"], "failure" if failed else "success")
    _user(event, head[1])
    runas = values.get("USER")
    if runas:
        event.fields["user.effective.name"] = runas
        _related_user(event, runas)
    if command is not None:
        event.fields["process.command_line"] = command
        event.fields["system.auth.sudo.command"] = command
    if "TTY" in values:
        event.fields["system.auth.sudo.tty"] = values["TTY"]
    if "PWD" in values:
        event.fields["system.auth.sudo.pwd"] = values["PWD"]
    if failed:
        event.fields["system.auth.sudo.error"] = " ; ".join(errors)


_SU_TO = re.compile(r"(FAILED SU )?\(to (\S+)\) (\S+) on (\S+)")
_SU_SHADOW = re.compile(r"(Successful|FAILED) su for (\S+) by (\S+)")
_SU_SIGN = re.compile(r"([+-]) (\S+) (\S+):(\S+)$")
_SU_PAM_FAILURE = re.compile(
    r"pam_unix\(su(?:-l)?:auth\): authentication failure;.*? ruser=(\S*).*? user=(\S+)"
)


def _su(message: str, event: AuditEvent) -> None:
    user = runas = None
    failed = False
    if (found := _SU_TO.match(message)) is not None:
        failed, runas, user = bool(found[1]), found[2], found[3]
    elif (found := _SU_SHADOW.match(message)) is not None:
        failed, runas, user = found[1] == "FAILED", found[2], found[3]
    elif (found := _SU_SIGN.match(message)) is not None:
        failed, user, runas = found[1] == "-", found[3], found[4]
    elif (found := _SU_PAM_FAILURE.match(message)) is not None:
        failed, user, runas = True, found[1] or None, found[2]
    else:
        return
    _set(event, "su", ["authentication"], ["start"], "failure" if failed else "success")
    _user(event, user)
    if runas:
        event.fields["user.effective.name"] = runas
        _related_user(event, runas)


# --------------------------------------------------------------------------- accounts

_NEW_USER = re.compile(r"new user: name=([^,\s]+), UID=(\d+), GID=(\d+)")
_NEW_GROUP = re.compile(r"(?:new group|group added to \S+): name=([^,\s]+)(?:, GID=(\d+))?")
_DELETE_USER = re.compile(r"delete user '([^']+)'")
_REMOVED_GROUP = re.compile(r"(?:removed (?:shadow )?group|group) '([^']+)'(?: owned by| removed)")
_ADD_TO_GROUP = re.compile(r"add '([^']+)' to (?:shadow )?group '([^']+)'")
_CHANGE_USER = re.compile(r"(?:change user(?: name)?|lock user|unlock user) '([^']+)'")
_GPASSWD = re.compile(r"user (\S+) (?:added|removed) by (\S+) (?:to|from) group (\S+)")
_GPASSWD_SET = re.compile(r"members of group (\S+) set by (\S+) to")
_PASSWORD_CHANGED = re.compile(
    r"(?:pam_unix\(\S+:chauthtok\): password changed for (\S+)|password for '([^']+)' changed)"
)
_EXPIRY = re.compile(r"changed password expiry for (\S+)")


def _group(event: AuditEvent, action: str, kind: str, name: str, gid: str | None) -> None:
    _set(event, action, ["iam"], ["group", kind])
    event.fields["group.name"] = name
    if gid:
        event.fields["group.id"] = gid


def _accounts(message: str, event: AuditEvent) -> None:
    """useradd, userdel, usermod, groupadd, groupdel, gpasswd (shadow-utils)."""
    if (found := _NEW_USER.match(message)) is not None:
        _set(event, "user_created", ["iam"], ["user", "creation"], "success")
        _target(event, found[1])
        event.fields["user.target.id"] = found[2]
        event.fields["group.id"] = found[3]
    elif (found := _NEW_GROUP.match(message)) is not None:
        _group(event, "group_created", "creation", found[1], found[2])
    elif (found := _DELETE_USER.match(message)) is not None:
        _set(event, "user_deleted", ["iam"], ["user", "deletion"])
        _target(event, found[1])
    elif (found := _REMOVED_GROUP.match(message)) is not None:
        _group(event, "group_deleted", "deletion", found[1], None)
    elif (found := _ADD_TO_GROUP.match(message)) is not None:
        _set(event, "user_modified", ["iam"], ["user", "change"])
        _target(event, found[1])
        event.fields["group.name"] = found[2]
    elif (found := _CHANGE_USER.match(message)) is not None:
        _set(event, "user_modified", ["iam"], ["user", "change"])
        _target(event, found[1])
    elif (found := _GPASSWD.match(message)) is not None:
        _group(event, "group_modified", "change", found[3], None)
        _target(event, found[1])
        _user(event, found[2])
    elif (found := _GPASSWD_SET.match(message)) is not None:
        _group(event, "group_modified", "change", found[1], None)
        _user(event, found[2])


def _passwd(message: str, event: AuditEvent) -> None:
    if (found := _PASSWORD_CHANGED.match(message)) is not None:
        _set(event, "password_changed", ["iam"], ["user", "change"])
        _target(event, found[1] or found[2])
    elif (found := _EXPIRY.match(message)) is not None:
        _set(event, "user_modified", ["iam"], ["user", "change"])
        _target(event, found[1])


# --------------------------------------------------------------------------- sessions, services

_NEW_SESSION = re.compile(r"New session (\S+) of user (\S+?)\.?$")
_REMOVED_SESSION = re.compile(r"Removed session (\S+?)\.?$")


def _logind(message: str, event: AuditEvent) -> None:
    if (found := _NEW_SESSION.match(message)) is not None:
        _set(event, "session_started", ["session"], ["start"])
        _user(event, found[2])
        event.fields["session.id"] = found[1]
    elif (found := _REMOVED_SESSION.match(message)) is not None:
        _set(event, "session_ended", ["session"], ["end"])
        event.fields["session.id"] = found[1]


_SYSTEMD_UNIT = re.compile(r"(Started|Stopped) (\S+\.(?:service|socket|timer|mount|target))\b")
_SYSTEMD_DESCRIPTION = re.compile(r"(Started|Stopped) (.+?)\.?$")
_SYSTEMCTL = re.compile(r"(start|stop|restart|enable|disable)d? (\S+)")
_SERVICE_ACTIONS: Final = {
    "Started": "service_started",
    "Stopped": "service_stopped",
    "start": "service_started",
    "stop": "service_stopped",
    "restart": "service_restarted",
    "enable": "service_enabled",
    "disable": "service_disabled",
}


def _service(event: AuditEvent, verb: str, unit: str) -> None:
    action = _SERVICE_ACTIONS[verb]
    category = "configuration" if action in ("service_enabled", "service_disabled") else "process"
    _set(event, action, [category], ["change"])
    event.fields["service.name"] = unit


def _systemd(message: str, event: AuditEvent) -> None:
    """``Started nginx.service - A high performance web server``; before systemd
    v247 only the description was logged, which then stands in for the unit."""
    found = _SYSTEMD_UNIT.match(message) or _SYSTEMD_DESCRIPTION.match(message)
    if found is not None:
        _service(event, found[1], found[2])


def _systemctl(message: str, event: AuditEvent) -> None:
    if (found := _SYSTEMCTL.match(message)) is not None:
        _service(event, found[1], found[2])


# --------------------------------------------------------------------------- packages

_DPKG = re.compile(r"(install|upgrade|remove|purge) (\S+?)(?::\S+)? (\S+) (\S+)$")
_RPM = re.compile(r"(Installed|Upgraded|Updated|Erased|Removed): (\S+)$")
_RPM_NEVRA = re.compile(r"(.+?)-((?:\d+:)?[^-]+-[^-]+?)(?:\.(\w+))?$")
_APT = re.compile(r"(Install|Upgrade|Remove|Purge): (\S+?)(?::\S+)? \(([^)]*)\)")
_PACKAGE_ACTIONS: Final = {
    "install": ("package_installed", "installation"),
    "Install": ("package_installed", "installation"),
    "Installed": ("package_installed", "installation"),
    "upgrade": ("package_upgraded", "change"),
    "Upgrade": ("package_upgraded", "change"),
    "Upgraded": ("package_upgraded", "change"),
    "Updated": ("package_upgraded", "change"),
    "remove": ("package_removed", "deletion"),
    "purge": ("package_removed", "deletion"),
    "Remove": ("package_removed", "deletion"),
    "Purge": ("package_removed", "deletion"),
    "Erased": ("package_removed", "deletion"),
    "Removed": ("package_removed", "deletion"),
}


def _package(event: AuditEvent, verb: str, name: str, version: str | None) -> None:
    action, kind = _PACKAGE_ACTIONS[verb]
    _set(event, action, ["package"], [kind])
    event.fields["package.name"] = name
    if version and version != "<none>":
        event.fields["package.version"] = version


def _dpkg(message: str, event: AuditEvent) -> None:
    """dpkg.log: ``install nginx:amd64 <none> 1.22.1-9`` (old and new version)."""
    if (found := _DPKG.match(message)) is not None:
        verb, name, old, new = found.groups()
        _package(event, verb, name, old if verb in ("remove", "purge") else new)


def _apt(message: str, event: AuditEvent) -> None:
    """apt history lines: ``Install: nginx:amd64 (1.22.1-9)`` (the first package)."""
    if (found := _APT.match(message)) is not None:
        version = found[3].split(",")[-1].strip().removesuffix(", automatic")
        _package(event, found[1], found[2], version.split(" ")[0])


def _rpm(message: str, event: AuditEvent) -> None:
    """dnf/yum: ``Installed: nginx-1:1.20.1-14.el9.x86_64``."""
    if (found := _RPM.match(message)) is not None:
        nevra = _RPM_NEVRA.match(found[2])
        if nevra is None:
            _package(event, found[1], found[2], None)
        else:
            _package(event, found[1], nevra[1], nevra[2])


_HANDLERS: Final[dict[str, Handler]] = {
    "sshd": _sshd,
    "sudo": _sudo,
    "su": _su,
    "useradd": _accounts,
    "userdel": _accounts,
    "usermod": _accounts,
    "groupadd": _accounts,
    "groupdel": _accounts,
    "gpasswd": _accounts,
    "passwd": _passwd,
    "chpasswd": _passwd,
    "chage": _passwd,
    "systemd-logind": _logind,
    "systemd": _systemd,
    "systemctl": _systemctl,
    "dpkg": _dpkg,
    "apt": _apt,
    "apt-get": _apt,
    "dnf": _rpm,
    "yum": _rpm,
}
