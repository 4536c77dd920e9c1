"""What logins say: sshd, dropbear, PAM modules of any service, su, sudo and login.

Follows Elastic's ``system/auth`` pipeline where it has a mapping (``ssh_login``,
``system.auth.ssh.*``, ``system.auth.sudo.*``, ``system.auth.pam.*``) and the
messages of OpenSSH 5-9, Linux-PAM (``pam_unix``, ``pam_sss``, ``pam_faillock``,
``pam_tally2``), shadow-utils and util-linux ``su``/``login``, sudo and dropbear
elsewhere.  Each handler returns whether it understood the message, so the
lines nobody understands yet are counted (``labels.unrecognized``).

One attempt to log in often writes several lines: sshd's ``Invalid user``,
PAM's ``authentication failure``, sshd's ``Failed password`` and a
``Disconnected from invalid user`` for one guess.  Every one of them is a
failure (``event.outcome``), but only the line that is the attempt's own
verdict has ``event.type: start``; lines that repeat or sum up an attempt
another line reports have ``event.type: info``.  The brute-force rules count
``start`` failures, so one mistyped password counts once.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from daemon.model import AuditEvent
from daemon.normalize.fill import effective, related_user, set_action, source, target, user

_AUTH: Final = ["authentication"]
_LOGIN: Final = ["authentication", "session"]
_START: Final = ["start"]
_INFO: Final = ["info"]


@dataclass(frozen=True, slots=True)
class Form:
    """One message form: its pattern (named groups ``user``, ``address``, ``port``,
    ``target``) and what it means."""

    pattern: re.Pattern[str]
    action: str
    category: list[str]
    types: list[str]
    outcome: str | None

    def fill(self, found: re.Match[str], event: AuditEvent) -> None:
        set_action(event, self.action, self.category, self.types, self.outcome)
        groups = found.groupdict()
        user(event, groups.get("user"))
        target(event, groups.get("target"))
        source(event, groups.get("address"), groups.get("port"))


def _form(
    pattern: str,
    action: str,
    outcome: str | None,
    types: list[str] = _INFO,
    category: list[str] = _AUTH,
) -> Form:
    return Form(re.compile(pattern), action, category, types, outcome)


def _first(forms: tuple[Form, ...], message: str, event: AuditEvent) -> bool:
    for form in forms:
        if (found := form.pattern.match(message)) is not None:
            form.fill(found, event)
            return True
    return False


# --------------------------------------------------------------------------- sshd

_SSH_VERDICT = re.compile(
    r"(Accepted|Failed|Postponed|Partial) (\S+) for (invalid user |illegal user )?(\S*) "
    r"from (\S+) port (\d+)(?: ssh2(?:: (.*))?)?"
)
"""Greedy to the end: a lazy signature group checked for `` [preauth]`` at every
character costs several times as much on the commonest sshd line."""
_SSH_INVALID = re.compile(
    r"(?:Invalid|Illegal) user (.*?) from (\S+?)(?: port (\d+))?(?: \[preauth\])?$"
)
_USER = r"(?:(?:invalid|illegal) user )?(?P<user>.*?)"
_ADDRESS_PORT = r"(?P<address>\S+) port (?P<port>\d+)"
_SSH_FORMS: Final = (
    _form(rf"(?:error: )?PAM: .+? for {_USER} from (?P<address>\S+)$", "ssh_login", "failure"),
    _form(
        rf"(?:error: )?maximum authentication attempts exceeded for {_USER} from {_ADDRESS_PORT}",
        "ssh_login",
        "failure",
    ),
    _form(
        rf"Disconnecting (?:invalid |authenticating )?user (?P<user>\S+) {_ADDRESS_PORT}: "
        r"Too many authentication failures",
        "ssh_login",
        "failure",
    ),
    _form(
        r"Disconnecting: Too many authentication failures(?: for (?:invalid user )?(?P<user>\S+))?",
        "ssh_login",
        "failure",
    ),
    _form(r"User (?P<user>\S+) from (?P<address>\S+) not allowed because ", "ssh_login", "failure"),
    _form(r"User (?P<user>\S+) not allowed because ", "ssh_login", "failure"),
    _form(
        r"ROOT LOGIN REFUSED FROM (?P<address>[^\s,]+?)(?: port (?P<port>\d+))?(?: \[preauth\])?$",
        "ssh_login",
        "failure",
    ),
    _form(
        r"input_userauth_request: (?:invalid|illegal) user (?P<user>.*?)(?: \[preauth\])?$",
        "ssh_login",
        "failure",
    ),
    _form(r"Authentication refused: ", "ssh_login", "failure"),
    _form(r"Could not get shadow information for ", "ssh_login", "failure"),
    _form(
        r"fatal: Access denied for user (?P<user>\S+) by PAM account configuration",
        "ssh_login",
        "failure",
    ),
    _form(
        r"PAM \d+ more authentication failures?;.*? rhost=(?P<address>\S*)"
        r"(?:\s+user=(?P<user>\S+))?",
        "ssh_login",
        "failure",
    ),
    _form(
        rf"(?:Disconnected from|Connection closed by) (?:invalid|illegal|authenticating) "
        rf"user (?P<user>\S*) {_ADDRESS_PORT}",
        "ssh_login",
        "failure",
    ),
    _form(
        rf"Disconnected from user (?P<user>\S+) {_ADDRESS_PORT}",
        "ssh_logout",
        "success",
        ["end"],
        ["session"],
    ),
)
_SSH_DROPPED = re.compile(r"Did not receive identification string from (\S+?)(?: port (\d+))?$")
_SSH_SUBSYSTEM = re.compile(r"subsystem request for (\S+) by user (\S+)")
_SSH_NOISE = re.compile(
    r"Server listening on |Received signal |Starting session: |Connection from |"
    r"Timeout before authentication|Unable to negotiate|(?:error: )?kex_|banner exchange|"
    r"Bad protocol version|Protocol major versions differ|reverse mapping checking|"
    r"Address \S+ maps to |fatal: |Close session: |Transferred: |Accepted key |"
    r"Exiting on signal|Set /proc/self/oom|User child is on pid|Changed root directory|"
    r"(?:Connection closed by|Connection reset by|Received disconnect from|Disconnected from) |"
    r"PAM service\(|error: Received disconnect|Read error from remote|"
    r"error: Bind to port|Server terminated|Starting sshd"
)
"""Messages without a login in them: known, so not counted as unrecognized."""


def sshd(message: str, event: AuditEvent) -> bool:
    """OpenSSH 5-9 (``sshd``, and ``sshd-session`` since 9.8)."""
    if (found := _SSH_VERDICT.match(message)) is not None:
        _ssh_verdict(found, event)
    elif (found := _SSH_INVALID.match(message)) is not None:
        set_action(event, "ssh_login", _AUTH, _START, "failure")
        event.fields["system.auth.ssh.event"] = "Invalid"
        user(event, found[1])
        source(event, found[2], found[3])
    elif _first(_SSH_FORMS, message, event):
        pass
    elif (found := _SSH_DROPPED.match(message)) is not None:
        event.fields["system.auth.ssh.dropped_ip"] = found[1]
        source(event, found[1], found[2])
    elif (found := _SSH_SUBSYSTEM.match(message)) is not None:
        event.fields["system.auth.ssh.subsystem"] = found[1]
        user(event, found[2])
    else:
        return _SSH_NOISE.match(message) is not None
    return True


def _ssh_verdict(found: re.Match[str], event: AuditEvent) -> None:
    """``Accepted``/``Failed``: the verdict; ``Postponed``/``Partial``: a step of it."""
    verdict, method, invalid, name, address, port, signature = found.groups()
    if verdict == "Accepted":
        set_action(event, "ssh_login", _LOGIN, _START, "success")
    elif verdict == "Failed":
        set_action(event, "ssh_login", _AUTH, _START, "failure")
    elif verdict == "Partial":
        set_action(event, "ssh_login", _AUTH, _INFO, "success")
    else:  # Postponed: waits for the client's answer; an invalid user never succeeds
        set_action(event, "ssh_login", _AUTH, _INFO, "failure" if invalid else None)
    event.fields["system.auth.ssh.event"] = verdict
    event.fields["system.auth.ssh.method"] = method
    if signature:
        event.fields["system.auth.ssh.signature"] = signature.removesuffix(" [preauth]")
    user(event, name)
    source(event, address, port)


# --------------------------------------------------------------------------- dropbear

_DROPBEAR_FORMS: Final = (
    _form(
        r"(?:Password|Pubkey) auth succeeded for '(?P<user>[^']*)'.*? "
        r"from (?P<address>\S+):(?P<port>\d+)",
        "ssh_login",
        "success",
        _START,
        _LOGIN,
    ),
    _form(
        r"Bad password attempt for '(?P<user>[^']*)' from (?P<address>\S+):(?P<port>\d+)",
        "ssh_login",
        "failure",
        _START,
    ),
    _form(
        r"Login attempt for nonexistent user(?: '(?P<user>[^']*)')?"
        r"(?: from (?P<address>\S+):(?P<port>\d+))?",
        "ssh_login",
        "failure",
        _START,
    ),
    _form(
        r"Max auth tries reached - user '(?P<user>[^']*)' from (?P<address>\S+):(?P<port>\d+)",
        "ssh_login",
        "failure",
    ),
    _form(
        r"Exit before auth(?: from <(?P<address>\S+):(?P<port>\d+)>)?: "
        r"\(user '(?P<user>[^']*)', [1-9]\d* fails?\)",
        "ssh_login",
        "failure",
    ),
)
_DROPBEAR_NOISE = re.compile(
    r"Child connection from |Exit \(|Exit before auth|Running in background|Not backgrounding|"
    r"Early exit|Pubkey auth attempt with unknown algo|Premature exit|Failed listening|"
    r"Generated hostkey|Failed reading"
)


def dropbear(message: str, event: AuditEvent) -> bool:
    return _first(_DROPBEAR_FORMS, message, event) or (_DROPBEAR_NOISE.match(message) is not None)


# --------------------------------------------------------------------------- PAM

PAM_LINE = re.compile(r"(pam_\w+)\(([^:()]+):(\w+)\): ")
"""``pam_unix(sshd:auth): ``: module, service, facility."""
PAM_PROGRAM = re.compile(r"([^()]+)\((pam_\w+)\)$")
"""``sshd(pam_unix)``: the program name of Linux-PAM before 0.99 (RHEL 4)."""

_AUTH_MODULES: Final = frozenset(
    {"pam_unix", "pam_sss", "pam_faillock", "pam_tally", "pam_tally2", "pam_ldap", "pam_krb5"}
)
_PAM_ACTIONS: Final = {"sshd": "ssh_login", "su": "su", "su-l": "su", "login": "login"}
_OWN_VERDICT: Final = frozenset({"sshd", "su", "su-l", "login"})
"""Services that log each attempt's verdict themselves: their PAM failures repeat it."""
_SWITCHERS: Final = frozenset({"su", "su-l", "sudo", "sudo-i"})
"""Services where ``ruser`` switches to ``user``: the user is who asks, the target whom."""

_PAM_FAILURES = re.compile(r"(?:(\d+) more )?authentication failures?; (.*)")
_PAM_SUCCESS = re.compile(r"authentication success; (.*)")
_PAM_KV = re.compile(r"(\w+)=(\S*)")
_PAM_SESSION = re.compile(
    r"session (opened|closed) for user ([^\s(]+)(?:\(uid=(\d+)\))?(?: by (\S*?)(?:\(uid=\d+\))?)?$"
)
_PAM_CHAUTHTOK = re.compile(r"password changed for (\S+)")
_PAM_FORMS: Final = (
    _form(r"check pass; user unknown", "pam_authentication", "failure"),
    _form(
        r"received for user (?P<user>\S+): (?!0 )\d+ \(", "pam_authentication", "failure"
    ),  # pam_sss: the SSSD answer, 0 is success
    _form(r"Access denied for user (?P<user>\S+): ", "pam_authentication", "failure"),
    _form(
        r"Consecutive login failures for user (?P<user>\S+) account temporarily locked",
        "account_locked",
        "failure",
    ),
    _form(r"user (?P<user>\S+) \(\d+\) tally \d+, deny \d+", "account_locked", "failure"),
    _form(
        r"auth could not identify password for \[(?P<user>[^\]]*)\]",
        "pam_authentication",
        "failure",
    ),
    _form(
        r"(?:account|expired password for user) (?P<user>\S+) has expired",
        "pam_authentication",
        "failure",
    ),
    _form(r"bad username \[(?P<user>[^\]]*)\]", "pam_authentication", "failure"),
)
_PAM_NOISE = re.compile(
    r"conversation failed|received for user \S+: 0 |unable to |requirement |"
    r"pam_\w+: |Permission denied|User \S+ successfully|account \S+ has password changed|"
    r"password for \S+ will expire|authentication token"
)


def pam(module: str, service: str, facility: str | None, message: str, event: AuditEvent) -> bool:
    """One PAM module's line, whichever program wrote it (``pam_x(service:facility)``).

    Lines of modules that authenticate nobody (``pam_limits``, ``pam_systemd``,
    ``pam_env``) are known and carry nothing to read.
    """
    event.dataset = "system.auth"
    event.fields["system.auth.pam.module"] = module
    event.fields["system.auth.pam.origin"] = f"{service}:{facility}" if facility else service
    if module not in _AUTH_MODULES:
        return True
    if (found := _PAM_FAILURES.match(message)) is not None:
        _pam_verdict(service, found[2], event, "failure", repeated=found[1] is not None)
    elif (found := _PAM_SESSION.match(message)) is not None:
        _pam_session(service, found, event)
    elif (found := _PAM_SUCCESS.match(message)) is not None:
        _pam_verdict(service, found[1], event, "success", repeated=False)
    elif (found := _PAM_CHAUTHTOK.match(message)) is not None:
        set_action(event, "password_changed", ["iam"], ["user", "change"])
        target(event, found[1])
    elif not _first(_PAM_FORMS, message, event):
        return _PAM_NOISE.match(message) is not None
    return True


def _pam_verdict(
    service: str, pairs: str, event: AuditEvent, outcome: str, *, repeated: bool
) -> None:
    """``authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=10.0.0.9 user=root``."""
    values = dict(_PAM_KV.findall(pairs))
    own = service in _OWN_VERDICT or repeated or outcome == "success"
    set_action(
        event,
        _PAM_ACTIONS.get(service, "pam_authentication"),
        _AUTH,
        _INFO if own else _START,
        outcome,
    )
    account = values.get("user")
    if service in _SWITCHERS:
        user(event, values.get("ruser") or values.get("logname"))
        effective(event, account)
        target(event, account)
    else:
        user(event, account)
    source(event, values.get("rhost"))
    if values.get("tty"):
        event.fields["system.auth.pam.tty"] = values["tty"]


def _pam_session(service: str, found: re.Match[str], event: AuditEvent) -> None:
    """``session opened for user root(uid=0) by alice(uid=1000)`` (Elastic: the session's
    user is ``user.name``, who opened it ``system.auth.pam.by``)."""
    state, name, uid, by = found.groups()
    event.fields["system.auth.pam.session_state"] = state
    if state == "opened":
        set_action(event, "session_opened", ["session"], ["start"], "success")
    elif service == "sshd":
        set_action(event, "ssh_logout", ["session"], ["end"], "success")
    else:
        set_action(event, "session_closed", ["session"], ["end"], "success")
    user(event, name)
    if uid:
        event.user_id = uid
    if by:
        event.fields["system.auth.pam.by"] = by
        related_user(event, by)


# --------------------------------------------------------------------------- su

_SU_FORMS: Final = (
    _form(r"\(to (?P<target>\S+)\) (?P<user>\S+) on ", "su", "success", _START),
    _form(r"FAILED SU \(to (?P<target>\S+)\) (?P<user>\S+) on ", "su", "failure", _START),
    _form(r"Successful su for (?P<target>\S+) by (?P<user>\S+)", "su", "success", _START),
    _form(r"FAILED su for (?P<target>\S+) by (?P<user>\S+)", "su", "failure", _START),
    _form(r"\+ \S+ (?P<user>[^\s:]+):(?P<target>\S+)$", "su", "success", _START),
    _form(r"- \S+ (?P<user>[^\s:]+):(?P<target>\S+)$", "su", "failure", _START),
    _form(r"BAD SU (?P<user>\S+) to (?P<target>\S+)(?: on \S+)?", "su", "failure", _START),
    _form(r"failed: \S+ changing from (?P<user>\S+) to (?P<target>\S+)", "su", "failure", _START),
    _form(r"'su (?P<target>\S+)' succeeded for (?P<user>\S+) on ", "su", "success", _START),
    _form(r"'su (?P<target>\S+)' failed for (?P<user>\S+) on ", "su", "failure", _START),
    _form(r"pam_authenticate: Authentication failure", "su", "failure"),
)


def su(message: str, event: AuditEvent) -> bool:
    """shadow-utils, util-linux, BSD and Solaris ``su``; the account switched to is
    ``user.target.name`` (and ``user.effective.name``)."""
    if not _first(_SU_FORMS, message, event):
        return False
    if event.user_target_name:
        event.fields["user.effective.name"] = event.user_target_name
    return True


# --------------------------------------------------------------------------- login

_LOGIN_FORMS: Final = (
    _form(
        r"FAILED LOGIN \(?\d+\)? (?:FROM|ON|on) '?(?P<from>[^\s']+)'? FOR '?(?P<user>[^\s',]*)'?,",
        "login",
        "failure",
        _START,
    ),
    _form(
        r"FAILED LOGIN SESSION FROM (?P<from>\S+) FOR (?P<user>[^\s,]+),",
        "login",
        "failure",
        _START,
    ),
    _form(
        r"TOO MANY LOGIN TRIES \(\d+\) (?:FROM|ON|on) '?(?P<from>[^\s']+)'? "
        r"FOR '?(?P<user>[^\s',]*)'?",
        "login",
        "failure",
    ),
    _form(
        r"ROOT LOGIN\s+(?:ON|on) '?(?P<from>[^\s']+)'?(?: FROM (?P<address>\S+))?$",
        "login",
        "success",
        _START,
        _LOGIN,
    ),
    _form(
        r"LOGIN ON (?P<from>\S+) BY (?P<user>\S+)(?: FROM (?P<address>\S+))?$",
        "login",
        "success",
        _START,
        _LOGIN,
    ),
)


def login(message: str, event: AuditEvent) -> bool:
    """shadow-utils and util-linux ``login``: ``FROM`` names a remote host or a terminal."""
    for form in _LOGIN_FORMS:
        if (found := form.pattern.match(message)) is not None:
            form.fill(found, event)
            place = found["from"]
            if place.startswith(("tty", "/dev/", "pts", "console")):
                event.fields["system.auth.login.tty"] = place
            else:
                source(event, place)
            if event.user_name is None and message.startswith("ROOT LOGIN"):
                user(event, "root")
            return True
    return False


# --------------------------------------------------------------------------- sudo

_SUDO_HEAD = re.compile(r"\s*(\S+) : ")


def sudo(message: str, event: AuditEvent) -> bool:
    """``alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id``; an
    error before the pairs (``3 incorrect password attempts``, ``user NOT in sudoers``,
    ``user NOT authorized on host``, ``command not allowed``) makes it a failure."""
    head = _SUDO_HEAD.match(message)
    if head is None:
        return message.startswith(("unable to resolve host", "sorry, ", "PAM "))
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
        return False
    failed = bool(errors)
    set_action(event, "sudo", ["process"], ["start"], "failure" if failed else "success")
    user(event, head[1])
    effective(event, values.get("USER"))
    if command is not None:
        event.fields["process.command_line"] = command
        event.fields["system.auth.sudo.command"] = command
    if "TTY" in values:
        event.fields["system.auth.sudo.tty"] = values["TTY"]
    if "PWD" in values:
        event.fields["system.auth.sudo.pwd"] = values["PWD"]
    if failed:
        event.fields["system.auth.sudo.error"] = " ; ".join(errors)
    return True


Handler = Callable[[str, AuditEvent], bool]
"""Fills the event from one program's message; True when it understood the message."""

HANDLERS: Final[dict[str, Handler]] = {
    "sshd": sshd,
    "sshd-session": sshd,
    "dropbear": dropbear,
    "su": su,
    "sudo": sudo,
    "login": login,
}
