"""Syslog: lines from listeners, tailed files and the journal in, ECS ``AuditEvent`` out.

A payload is one batch as a source read it: a JSON header line, then the
messages, one per line (a message's own newlines are escaped as ``#012``, as
rsyslog does)::

    {"received_ns": 1764240000000000000, "tz": "UTC", "host": "bastion",
     "peer": "10.0.0.5", "base": 0, "positions": "seq", "file": null,
     "fingerprint": null, "truncated": [3]}
    <34>1 2026-11-27T12:00:00Z bastion sshd 812 - - Accepted password ...
    Nov 27 12:00:01 bastion sudo: alice : TTY=pts/0 ; ...

``positions`` says what makes each message unique besides its content:
``offset`` (the byte offset of the line in ``file``, counted from ``base``;
``lengths`` gives the length in the file of lines cut to the size limit)
or ``seq`` (the batch's receive time plus the message's index: two identical
lines received in one second stay two events) or ``content`` (for a transport
whose sender resends what was not acknowledged, RELP: only how often the same
line came before it in the batch, so a message resent in a later batch gets
the id it had the first time and is stored once, while identical lines sent
together stay distinct).  ``peer`` may also be a list,
one address per message.

A record (what the store keeps) is the line plus what ``normalize`` needs to
make the same event again: the receive time (the year RFC 3164 leaves out),
the source's time zone, the peer or local host name and the position.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from hashlib import blake2b
from typing import Any, Final

import orjson

from connectors.base import NormalizationError
from daemon.model import AuditEvent, format_timestamp
from daemon.normalize import Limits
from daemon.normalize.programs import classify, dataset_of
from daemon.normalize.syslog_parse import Parsed, parse, zone

__all__ = ["decode", "event_of", "normalize", "read_batch", "text"]

JSON = dict[str, Any]

_FACILITY_SHIFT: Final = 3
_SEVERITY_MASK: Final = 7


def read_batch(
    payload: bytes, limits: Limits, escaped: set[int] | None = None
) -> tuple[JSON, JSON, list[tuple[str, str]]]:
    """The header, the fields every record of the batch shares, and each
    message with its position (see the module docstring); the indexes of
    messages that were not UTF-8 go into ``escaped`` (see ``text``)."""
    if len(payload) > limits.max_payload_bytes:
        raise NormalizationError(f"payload size exceeds {limits.max_payload_bytes} bytes")
    head, _, body = payload.partition(b"\n")
    try:
        header = orjson.loads(head)
        received_ns = int(header["received_ns"])
        tz = str(header["tz"])
        offset = int(header.get("base", 0))
        lengths = {str(k): int(v) for k, v in (header.get("lengths") or {}).items()}
        _check_shapes(header)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as err:
        raise NormalizationError(f"batch without a valid header: {err}", raw=head) from err
    common: JSON = {"received_ns": received_ns, "tz": tz}
    for key in ("host", "file"):
        if header.get(key) is not None:
            common[key] = header[key]
    lines = body.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    messages: list[tuple[str, str]] = []
    if header.get("positions") == "offset":
        fingerprint = header.get("fingerprint") or ""
        for index, raw in enumerate(lines):
            line = _text(raw, index, escaped).rstrip("\r")
            messages.append((line, f"{fingerprint}:{offset}"))
            offset += lengths.get(str(index), len(raw)) + 1
    elif header.get("positions") == "content":
        seen: dict[str, int] = {}
        for index, raw in enumerate(lines):
            line = _text(raw, index, escaped).rstrip("\r")
            seen[line] = occurrence = seen.get(line, -1) + 1
            messages.append((line, f"content:{occurrence}"))
    else:
        for index, raw in enumerate(lines):
            line = _text(raw, index, escaped).rstrip("\r")
            messages.append((line, f"{received_ns}:{index}"))
    return header, common, messages


def text(raw: bytes) -> tuple[str, bool]:
    """A message as text, and whether it had to be escaped to stay lossless.

    UTF-8 is taken as it is.  Anything else keeps every byte: a byte that is not
    UTF-8 becomes ``\\xNN`` and, so that this can be undone, each backslash is
    doubled (0x5C never occurs inside a UTF-8 sequence, so doubling it in the
    bytes is safe).  Replacing with U+FFFD, as before, lost the bytes silently.
    """
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        return raw.replace(b"\\", b"\\\\").decode("utf-8", "backslashreplace"), True


def _text(raw: bytes, index: int, escaped: set[int] | None) -> str:
    line, was_escaped = text(raw)
    if was_escaped and escaped is not None:
        escaped.add(index)
    return line


def _check_shapes(header: JSON) -> None:
    """Raise TypeError unless the header's optional fields have the types sources write."""
    texts = [header.get("host"), header.get("file"), header.get("fingerprint")]
    peer = header.get("peer")
    texts += peer if isinstance(peer, list) else [peer]
    if not all(value is None or isinstance(value, str) for value in texts):
        raise TypeError("host, file, fingerprint and peer are text")
    truncated = header.get("truncated") or []
    if not isinstance(truncated, list) or not all(isinstance(i, int) for i in truncated):
        raise TypeError("truncated is a list of message indexes")


def decode(payload: bytes, limits: Limits) -> list[Any]:
    """One record per message of the batch."""
    escaped: set[int] = set()
    header, common, messages = read_batch(payload, limits, escaped)
    peer = header.get("peer")
    peers = peer if isinstance(peer, list) else None
    if peers is None and peer is not None:
        common["peer"] = peer
    truncated = set(header.get("truncated") or ())
    records: list[Any] = []
    for index, (line, position) in enumerate(messages):
        record = {**common, "line": line, "position": position}
        if peers is not None and index < len(peers):
            record["peer"] = peers[index]
        if index in truncated:
            record["truncated"] = True
        if index in escaped:
            record["escaped"] = True
        records.append(record)
    return records


def normalize(record: Any) -> AuditEvent:
    if not isinstance(record, dict) or not isinstance(record.get("line"), str):
        raise NormalizationError("a syslog record is an object with a 'line'")
    try:
        received = _received(int(record["received_ns"]))
        tz = zone(str(record.get("tz", "UTC")))
    except (KeyError, TypeError, ValueError, OverflowError, OSError) as err:
        raise NormalizationError(f"syslog record with a bad receive time or zone: {err}") from err
    line: str = record["line"]
    parsed = parse(line, received, tz)
    return event_of(parsed, record, line, received)


@lru_cache(maxsize=256)
def _received(ns: int) -> datetime:
    """The receive time of a batch (shared by all its records)."""
    return datetime.fromtimestamp(ns / 1e9, UTC)


def event_of(parsed: Parsed, record: dict[str, Any], line: str, received: datetime) -> AuditEvent:
    """The event of one parsed line (the journal reuses it for its entries)."""
    peer = record.get("peer")
    host = parsed.hostname or record.get("host") or peer
    timestamp = parsed.timestamp or received
    program = parsed.appname
    message = parsed.message
    position = str(record.get("position", ""))
    identity = "\x1f".join(
        (host or "", format_timestamp(timestamp), program or "", message, position, peer or "")
    )
    event = AuditEvent(
        timestamp=timestamp,
        id=blake2b(identity.encode(), digest_size=16).hexdigest(),
        dataset=dataset_of(program),
        host_name=host,
        message=message or None,
        original=record,
    )
    if host:
        event.related_hosts.append(host)
    fields = event.fields
    fields["event.original"] = line
    if parsed.error is not None:
        event.labels["parse_error"] = parsed.error
    if parsed.guessed:
        event.labels["parse_fallback"] = ",".join(parsed.guessed)
    if record.get("truncated"):
        event.labels["truncated"] = "true"
    if record.get("escaped"):
        event.labels["invalid_utf8"] = "escaped"
    if program:
        fields["process.name"] = program
    if parsed.procid is not None:
        if parsed.procid.isdigit():
            fields["process.pid"] = int(parsed.procid)
        fields["log.syslog.procid"] = parsed.procid
    if parsed.priority is not None:
        fields["log.syslog.priority"] = parsed.priority
        fields["log.syslog.facility.code"] = parsed.priority >> _FACILITY_SHIFT
        fields["log.syslog.severity.code"] = parsed.priority & _SEVERITY_MASK
    if parsed.hostname:
        fields["log.syslog.hostname"] = parsed.hostname
    if program:
        fields["log.syslog.appname"] = program
    if parsed.msgid:
        fields["log.syslog.msgid"] = parsed.msgid
    if parsed.structured_data:
        fields["log.syslog.structured_data"] = parsed.structured_data
    if peer:
        fields["log.source.address"] = peer
    if record.get("file"):
        fields["log.file.path"] = record["file"]
    if parsed.error is None:
        classify(program, message, event)
    return event
