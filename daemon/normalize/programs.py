"""What the messages of well-known programs mean, in ECS terms.

Follows Elastic's ``system/auth`` and ``system/syslog`` mappings with the
event actions of the on-prem ECS contract (docs/sources.md).  Each handler
reads one program's free text and fills the event; a message it does not
recognize leaves the event as a plain ``event`` of its dataset.
"""

from __future__ import annotations

import re
from typing import Final

from daemon.model import AuditEvent
from daemon.normalize import UNRECOGNIZED, auth
from daemon.normalize.auth import Handler
from daemon.normalize.fill import canonical_ip, set_action, target, user

__all__ = ["AUTH_PROGRAMS", "canonical_ip", "classify", "dataset_of"]

AUTH_PROGRAMS: Final = frozenset(
    {
        "sshd",
        "sshd-session",
        "dropbear",
        "sudo",
        "su",
        "useradd",
        "userdel",
        "usermod",
        "groupadd",
        "groupdel",
        "groupmod",
        "gpasswd",
        "passwd",
        "chpasswd",
        "chage",
        "systemd-logind",
        "login",
    }
)

_SOLARIS_ID = re.compile(r"\[ID \d+ [\w.]+\] ")
"""Solaris syslog's message id before the text: ``[ID 800047 auth.notice] ``."""


def dataset_of(program: str | None) -> str:
    if program in AUTH_PROGRAMS:
        return "system.auth"
    if program and program.endswith(")") and auth.PAM_PROGRAM.match(program):
        return "system.auth"
    return "system.syslog"


def classify(program: str | None, message: str, event: AuditEvent) -> None:
    """Fill action, categories, outcome and the program's fields from its message.

    A PAM module's line means the same whichever program wrote it, so it is
    read before the program's own handler.
    """
    if message.startswith("[ID "):
        message = _SOLARIS_ID.sub("", message, count=1)
    if program and program.endswith(")") and (pam := auth.PAM_PROGRAM.match(program)):
        event.fields["process.name"] = pam[1]
        understood = auth.pam(pam[2], pam[1], None, message, event)
    elif message.startswith("pam_") and (pam := auth.PAM_LINE.match(message)):
        understood = auth.pam(pam[1], pam[2], pam[3], message[pam.end() :], event)
    elif program and (handler := _HANDLERS.get(program)) is not None:
        understood = handler(message, event)
    else:
        return
    if not understood and event.dataset == "system.auth":
        # Counted per program on /metrics, searchable on the timeline: what is
        # not understood yet shows.
        event.labels[UNRECOGNIZED] = "true"


# --------------------------------------------------------------------------- accounts

_NEW_USER = re.compile(r"new user: name=([^,\s]+), UID=(\d+), GID=(\d+)")
_NEW_GROUP = re.compile(r"(?:new group|group added to \S+): name=([^,\s]+)(?:, GID=(\d+))?")
_DELETE_USER = re.compile(r"delete user '([^']+)'")
_REMOVED_GROUP = re.compile(r"(?:removed (?:shadow )?group|group) '([^']+)'(?: owned by| removed)")
_CHANGED_GROUP = re.compile(r"group changed in \S+ \(group ([^/\s,]+)(?:/(\d+))?")
_ADD_TO_GROUP = re.compile(r"(add|delete) '([^']+)' (?:to|from) (?:shadow )?group '([^']+)'")
_CHANGE_USER = re.compile(r"(?:change user(?: name)?|lock user|unlock user) '([^']+)'")
_FAILED_USER = re.compile(r"failed adding user '([^']+)'")
_GPASSWD = re.compile(r"user (\S+) (?:added|removed) by (\S+) (?:to|from) group (\S+)")
_GPASSWD_SET = re.compile(r"members of group (\S+) set by (\S+) to")
_PASSWORD_CHANGED = re.compile(r"password for '([^']+)' changed(?: by '([^']+)')?")
_EXPIRY = re.compile(r"changed password expiry for (\S+)")


def _group(event: AuditEvent, action: str, kind: str, name: str, gid: str | None) -> None:
    set_action(event, action, ["iam"], ["group", kind])
    event.fields["group.name"] = name
    if gid:
        event.fields["group.id"] = gid


def _accounts(message: str, event: AuditEvent) -> bool:
    """useradd, userdel, usermod, groupadd, groupdel, groupmod, gpasswd (shadow-utils)."""
    if (found := _NEW_USER.match(message)) is not None:
        set_action(event, "user_created", ["iam"], ["user", "creation"], "success")
        target(event, found[1])
        event.fields["user.target.id"] = found[2]
        event.fields["group.id"] = found[3]
    elif (found := _NEW_GROUP.match(message)) is not None:
        _group(event, "group_created", "creation", found[1], found[2])
    elif (found := _DELETE_USER.match(message)) is not None:
        set_action(event, "user_deleted", ["iam"], ["user", "deletion"])
        target(event, found[1])
    elif (found := _REMOVED_GROUP.match(message)) is not None:
        _group(event, "group_deleted", "deletion", found[1], None)
    elif (found := _CHANGED_GROUP.match(message)) is not None:
        _group(event, "group_modified", "change", found[1], found[2])
    elif (found := _ADD_TO_GROUP.match(message)) is not None:
        set_action(event, "user_modified", ["iam"], ["user", "change"])
        target(event, found[2])
        event.fields["group.name"] = found[3]
    elif (found := _CHANGE_USER.match(message)) is not None:
        set_action(event, "user_modified", ["iam"], ["user", "change"])
        target(event, found[1])
    elif (found := _FAILED_USER.match(message)) is not None:
        set_action(event, "user_created", ["iam"], ["user", "creation"], "failure")
        target(event, found[1])
    elif (found := _GPASSWD.match(message)) is not None:
        _group(event, "group_modified", "change", found[3], None)
        target(event, found[1])
        user(event, found[2])
    elif (found := _GPASSWD_SET.match(message)) is not None:
        _group(event, "group_modified", "change", found[1], None)
        user(event, found[2])
    else:
        return False
    return True


def _passwd(message: str, event: AuditEvent) -> bool:
    """passwd, chpasswd, chage (their PAM lines are read as PAM's)."""
    if (found := _PASSWORD_CHANGED.match(message)) is not None:
        set_action(event, "password_changed", ["iam"], ["user", "change"])
        target(event, found[1])
        user(event, found[2])
    elif (found := _EXPIRY.match(message)) is not None:
        set_action(event, "user_modified", ["iam"], ["user", "change"])
        target(event, found[1])
    else:
        return False
    return True


# --------------------------------------------------------------------------- sessions, services

_NEW_SESSION = re.compile(r"New session (\S+) of user (\S+?)\.?$")
_REMOVED_SESSION = re.compile(r"Removed session (\S+?)\.?$")
_LOGIND_NOISE = re.compile(
    r"Session \S+ logged out|New seat |Watching system buttons|System is |Power key |"
    r"Lid (?:opened|closed)|Existing logind session|Removed seat |Suspending|Operation "
)


def _logind(message: str, event: AuditEvent) -> bool:
    if (found := _NEW_SESSION.match(message)) is not None:
        set_action(event, "session_started", ["session"], ["start"])
        user(event, found[2])
        event.fields["session.id"] = found[1]
    elif (found := _REMOVED_SESSION.match(message)) is not None:
        set_action(event, "session_ended", ["session"], ["end"])
        event.fields["session.id"] = found[1]
    else:
        return _LOGIND_NOISE.match(message) is not None
    return True


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
    set_action(event, action, [category], ["change"])
    event.fields["service.name"] = unit


def _systemd(message: str, event: AuditEvent) -> bool:
    """``Started nginx.service - A high performance web server``; before systemd
    v247 only the description was logged, which then stands in for the unit."""
    found = _SYSTEMD_UNIT.match(message) or _SYSTEMD_DESCRIPTION.match(message)
    if found is not None:
        _service(event, found[1], found[2])
    return found is not None


def _systemctl(message: str, event: AuditEvent) -> bool:
    if (found := _SYSTEMCTL.match(message)) is not None:
        _service(event, found[1], found[2])
    return found is not None


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
    set_action(event, action, ["package"], [kind])
    event.fields["package.name"] = name
    if version and version != "<none>":
        event.fields["package.version"] = version


def _dpkg(message: str, event: AuditEvent) -> bool:
    """dpkg.log: ``install nginx:amd64 <none> 1.22.1-9`` (old and new version)."""
    if (found := _DPKG.match(message)) is not None:
        verb, name, old, new = found.groups()
        _package(event, verb, name, old if verb in ("remove", "purge") else new)
    return found is not None


def _apt(message: str, event: AuditEvent) -> bool:
    """apt history lines: ``Install: nginx:amd64 (1.22.1-9)`` (the first package)."""
    if (found := _APT.match(message)) is not None:
        version = found[3].split(",")[-1].strip().removesuffix(", automatic")
        _package(event, found[1], found[2], version.split(" ")[0])
    return found is not None


def _rpm(message: str, event: AuditEvent) -> bool:
    """dnf/yum: ``Installed: nginx-1:1.20.1-14.el9.x86_64``."""
    found = _RPM.match(message)
    if found is None:
        return False
    nevra = _RPM_NEVRA.match(found[2])
    if nevra is None:
        _package(event, found[1], found[2], None)
    else:
        _package(event, found[1], nevra[1], nevra[2])
    return True


_HANDLERS: Final[dict[str, Handler]] = {
    **auth.HANDLERS,
    "useradd": _accounts,
    "userdel": _accounts,
    "usermod": _accounts,
    "groupadd": _accounts,
    "groupdel": _accounts,
    "groupmod": _accounts,
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
