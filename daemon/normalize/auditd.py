"""Linux audit logs (``/var/log/audit/audit.log``): records in, ECS ``AuditEvent`` out.

The kernel and user-space tools write one event as several records (lines)
that share a time stamp and serial: ``SYSCALL`` + ``EXECVE`` + ``CWD`` +
``PATH`` + ``PROCTITLE`` for one ``execve``.  ``decode`` assembles them, in
the order the event first appears, also when records of events interleave.
The payload is the ``syslog`` log type's (a JSON header line, then the lines;
see daemon/normalize/syslog.py), so the file tailer serves both.

The mapping follows Elastic's ``auditd`` module:

* every key of every record lands under ``auditd.log.<key>`` (the event's
  main record first: a later record does not overwrite a key), hex-encoded
  strings decoded; ``auditd.log.record_type`` is the main record's type,
  ``auditd.log.sequence`` the serial;
* ``event.action`` is the main record's type in lower case (``user_cmd``,
  ``execve``, ``add_user``...).  The main record is ``EXECVE`` when there is
  one, else the first record;
* ``process.args`` and ``process.command_line`` come from ``EXECVE`` (or a
  ``USER_CMD``'s ``cmd``), ``process.executable`` from ``exe``;
* ``user.id`` is ``uid``, ``user.audit.id`` is ``auid``; names come from the
  enriched log format (``log_format = ENRICHED``: ``UID="alice"``) and from
  ``acct`` of user-space records;
* ``event.outcome`` is ``res`` (``success``/``failed``, ``1``/``0``) or
  ``success`` (``yes``/``no``).

The file tailer ends payloads at event boundaries; an event split anyway
(the file was read while auditd was writing it) is stored as two events:
the record types are part of the id, so neither hides the other.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime
from hashlib import blake2b
from typing import Any, Final

from connectors.base import NormalizationError
from daemon.model import AuditEvent
from daemon.normalize import Limits
from daemon.normalize.syslog import read_batch

__all__ = ["decode", "normalize"]

DATASET: Final = "auditd.log"
UNSET_ID: Final = "4294967295"

_HEAD = re.compile(r"(?:node=(\S+) )?type=(\S+) msg=audit\((\d+)\.(\d+):(\d+)\):? ?")
_PAIR = re.compile(r"""(\w[\w-]*)=("[^"]*"|'[^']*'|\S*)""")
_HEX = re.compile(r"(?:[0-9A-F]{2})+")
_ARG = re.compile(r"a\d+(?:\[\d+\])?")
_HEX_FIELDS: Final = frozenset(
    {"exe", "comm", "cwd", "name", "proctitle", "cmd", "acct", "path", "data", "key", "old", "new"}
)
_ENRICHED: Final = "\x1d"

# record type -> (categories, types); after Elastic's auditd module.
_CATEGORIES: Final[dict[str, tuple[list[str], list[str]]]] = {
    "USER_AUTH": (["authentication"], ["info"]),
    "USER_ACCT": (["authentication"], ["info"]),
    "USER_LOGIN": (["authentication", "session"], ["start"]),
    "USER_LOGOUT": (["session"], ["end"]),
    "USER_START": (["session"], ["start"]),
    "USER_END": (["session"], ["end"]),
    "CRED_ACQ": (["authentication"], ["info"]),
    "CRED_DISP": (["authentication"], ["info"]),
    "CRED_REFR": (["authentication"], ["info"]),
    "USER_CMD": (["process"], ["start"]),
    "EXECVE": (["process"], ["start"]),
    "USER_CHAUTHTOK": (["iam"], ["user", "change"]),
    "ADD_USER": (["iam"], ["user", "creation"]),
    "DEL_USER": (["iam"], ["user", "deletion"]),
    "USER_MGMT": (["iam"], ["user", "change"]),
    "ADD_GROUP": (["iam"], ["group", "creation"]),
    "DEL_GROUP": (["iam"], ["group", "deletion"]),
    "GRP_MGMT": (["iam"], ["group", "change"]),
    "ROLE_ASSIGN": (["iam"], ["user", "change"]),
    "ROLE_REMOVE": (["iam"], ["user", "change"]),
    "CONFIG_CHANGE": (["configuration"], ["change"]),
    "USYS_CONFIG": (["configuration"], ["change"]),
    "DAEMON_START": (["process"], ["start"]),
    "DAEMON_END": (["process"], ["end"]),
    "DAEMON_ABORT": (["process"], ["end"]),
    "SERVICE_START": (["process"], ["start"]),
    "SERVICE_STOP": (["process"], ["end"]),
    "SYSTEM_BOOT": (["host"], ["start"]),
    "SYSTEM_SHUTDOWN": (["host"], ["end"]),
    "AVC": (["configuration"], ["access"]),
    "USER_AVC": (["configuration"], ["access"]),
}
_OUTCOMES: Final = {"success": "success", "yes": "success", "1": "success"}


def decode(payload: bytes, limits: Limits) -> list[Any]:
    """One record per audit event: the lines that share its time stamp and serial."""
    _, common, messages = read_batch(payload, limits)
    events: dict[str, dict[str, Any]] = {}
    for line, position in messages:
        if not line:
            continue
        found = _HEAD.match(line)
        key = f"{found[1] or ''}:{found[3]}.{found[4]}:{found[5]}" if found else position
        record = events.get(key)
        if record is None:
            record = events[key] = {**common, "lines": []}
            if found is None:
                record["position"] = position  # what tells two equal bad lines apart
        record["lines"].append(line)
    return list(events.values())


def _value(key: str, text: str, execve: bool) -> str:
    if text[:1] in ('"', "'"):
        return text[1:-1]
    if (key in _HEX_FIELDS or (execve and _ARG.fullmatch(key))) and _HEX.fullmatch(text):
        decoded = bytes.fromhex(text).decode("utf-8", "replace")
        return decoded.replace("\0", " ").strip() if key == "proctitle" else decoded
    return text


def _pairs(
    text: str, into: dict[str, str], names: dict[str, str], record_type: str, main: bool
) -> None:
    """``key=value`` pairs; a quoted ``msg='...'`` is read as pairs of its own.

    Arguments (``a0``, ``a1``...) are taken from the main record only: a
    SYSCALL's are register values, an EXECVE's the command line.
    """
    raw, _, enriched = text.partition(_ENRICHED)
    execve = record_type == "EXECVE"
    for key, value in _PAIR.findall(raw):
        if key == "msg" and value.startswith("'"):
            _pairs(value[1:-1], into, names, record_type, main)
        elif key not in into and (main or not _ARG.fullmatch(key)):
            into[key] = _value(key, value, execve)
    for key, value in _PAIR.findall(enriched):
        names[key] = value.strip('"')


def normalize(record: Any) -> AuditEvent:
    if not isinstance(record, dict) or not isinstance(record.get("lines"), list):
        raise NormalizationError("an audit record is an object with 'lines'")
    lines: list[str] = record["lines"]
    heads = [(_HEAD.match(line), line) for line in lines]
    parsed = [(found, line) for found, line in heads if found is not None]
    if not parsed:
        return _unparsed(record, lines)
    types = [found[2] for found, _ in parsed]
    main = types.index("EXECVE") if "EXECVE" in types else 0
    ordered = [parsed[main], *(p for i, p in enumerate(parsed) if i != main)]
    first = ordered[0][0]
    node, record_type = first[1], first[2]
    seconds, millis, serial = first[3], first[4], first[5]
    data: dict[str, str] = {}
    names: dict[str, str] = {}
    for index, (found, line) in enumerate(ordered):
        _pairs(line[found.end() :], data, names, found[2], index == 0)
    timestamp = datetime.fromtimestamp(int(seconds), UTC).replace(microsecond=int(millis) * 1000)
    host = node or record.get("host")
    identity = "\x1f".join((host or "", f"{seconds}.{millis}:{serial}", ",".join(types)))
    event = AuditEvent(
        timestamp=timestamp,
        id=blake2b(identity.encode(), digest_size=16).hexdigest(),
        dataset=DATASET,
        action=record_type.lower(),
        host_name=host,
        original=record,
    )
    category = _CATEGORIES.get(record_type)
    if category is not None:
        event.category, event.type = list(category[0]), list(category[1])
    fields = event.fields
    fields["event.original"] = "\n".join(lines)
    fields["auditd.log.record_type"] = record_type
    fields["auditd.log.sequence"] = int(serial)
    for key, value in data.items():
        fields[f"auditd.log.{key}"] = value
    _process(event, data, types)
    _user(event, data, names)
    outcome = data.get("res", data.get("success"))
    if outcome is not None:
        event.outcome = _OUTCOMES.get(outcome, "failure")
    address = data.get("addr")
    if address and address != "?":
        try:
            event.source_ip = str(ipaddress.ip_address(address))
            event.related_ip.append(event.source_ip)
        except ValueError:
            event.source_address = address
    if host:
        event.related_hosts.append(host)
    event.message = _summary(record_type, data)
    return event


def _process(event: AuditEvent, data: dict[str, str], types: list[str]) -> None:
    fields = event.fields
    if "exe" in data:
        fields["process.executable"] = data["exe"]
    if "comm" in data:
        fields["process.name"] = data["comm"]
    if data.get("pid", "").isdigit():
        fields["process.pid"] = int(data["pid"])
    if data.get("ppid", "").isdigit():
        fields["process.parent.pid"] = int(data["ppid"])
    if "EXECVE" in types and data.get("argc", "").isdigit():
        args = [data.get(f"a{i}", "") for i in range(int(data["argc"]))]
        fields["process.args"] = args
        fields["process.command_line"] = " ".join(args)
    elif "cmd" in data:
        fields["process.command_line"] = data["cmd"]
    if "cwd" in data:
        fields["process.working_directory"] = data["cwd"]


def _user(event: AuditEvent, data: dict[str, str], names: dict[str, str]) -> None:
    fields = event.fields
    uid, auid = data.get("uid"), data.get("auid")
    if uid and uid != UNSET_ID:
        event.user_id = uid
    if auid and auid != UNSET_ID:
        fields["user.audit.id"] = auid
        if names.get("AUID") and names["AUID"] != "unset":
            fields["user.audit.name"] = names["AUID"]
    account = data.get("acct")
    name = account if account and account != "?" else names.get("UID")
    if name:
        event.user_name = name
    for person in (name, fields.get("user.audit.name")):
        if person and person not in event.related_user:
            event.related_user.append(person)
    if data.get("id", "").isdigit() and event.category == ["iam"]:
        fields["user.target.id" if "user" in event.type else "group.id"] = data["id"]


def _summary(record_type: str, data: dict[str, str]) -> str:
    """A one-line message: what happened, and to what."""
    parts = [record_type]
    for key in ("op", "acct", "exe", "cmd", "key", "res"):
        value = data.get(key)
        if value and value not in ("?", "(null)"):
            parts.append(f"{key}={value}")
    return " ".join(parts)


def _unparsed(record: dict[str, Any], lines: list[str]) -> AuditEvent:
    """A line that is no audit record: kept as a raw event, like syslog's."""
    received = datetime.fromtimestamp(int(record.get("received_ns", 0)) / 1e9, UTC)
    text = "\n".join(lines)
    host = record.get("host")
    identity = "\x1f".join((host or "", str(record.get("position")), text))
    event = AuditEvent(
        timestamp=received,
        id=blake2b(identity.encode(), digest_size=16).hexdigest(),
        dataset=DATASET,
        host_name=host,
        message=text,
        original=record,
        labels={"parse_error": "not an audit record (no type=... msg=audit(...))"},
    )
    event.fields["event.original"] = text
    return event
