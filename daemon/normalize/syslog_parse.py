"""Syslog line formats: RFC 5424, RFC 3164 (BSD) and rsyslog's RFC 3339 file lines.

``parse`` never raises: a line it cannot read comes back with ``error`` set and
the whole line as the message, so the caller keeps it as a raw event.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

NIL: Final = "-"
BOM: Final = "\ufeff"
_MONTHS: Final = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}

_HOUR: Final = 3600
_PRI = re.compile(r"<(\d{1,3})>")
_RFC3339 = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:[.,](\d{1,9}))?(Z|z|[+-]\d\d:?\d\d)?"
)
_BSD_STAMP = re.compile(r"([A-Z][a-z]{2}) {1,2}(\d{1,2}) (\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))? ")


def _tag(name: str) -> str:
    """``TAG[PID]:`` with the tag and the pid as named groups."""
    return rf"(?P<{name}>[^\s\[\]:]{{1,128}})(?:\[(?P<{name}_pid>[^\]\s]{{0,32}})\])?: ?"


# The first word after the stamp is the host unless it is already the tag.
_HOST_TAG = rf"(?:{_tag('tag')}|(?P<host>[^ ]*) (?:{_tag('hosttag')})?)?"
_BSD_HEAD = re.compile(rf"(?P<stamp>{_BSD_STAMP.pattern}){_HOST_TAG}")
"""Stamp, host and tag of a BSD line in one match."""
_AFTER_STAMP = re.compile(_HOST_TAG)
_SD_ID = re.compile(r'\[([^\s=\]"]{1,32})')
_SD_PARAM = re.compile(r' ([^\s=\]"]{1,32})="((?:[^"\\]|\\.)*)"', re.DOTALL)
_SD_UNESCAPE = re.compile(r'\\(["\\\]])')
_DPKG_LOG = re.compile(r"(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d) ")


@dataclass(slots=True)
class Parsed:
    """What a syslog line says, in RFC 5424 terms."""

    timestamp: datetime | None = None
    hostname: str | None = None
    appname: str | None = None
    procid: str | None = None
    msgid: str | None = None
    structured_data: dict[str, dict[str, str]] = field(default_factory=dict)
    message: str = ""
    priority: int | None = None
    error: str | None = None
    """Why the line could not be read; the whole line is then the message."""


@lru_cache(maxsize=64)
def zone(name: str) -> tzinfo:
    """A time zone by IANA name (``UTC``, ``Europe/Berlin``); raises ValueError if unknown."""
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ValueError(f"unknown time zone {name!r}") from err


def parse(line: str, received: datetime, tz: tzinfo = UTC) -> Parsed:
    """Read one line; ``received`` (aware) supplies the year RFC 3164 leaves out,
    ``tz`` the zone of stamps without one."""
    out = Parsed()
    rest = line
    pri = _PRI.match(line)
    if pri is not None:
        value = int(pri[1])
        if value <= 191:
            out.priority = value
            rest = line[pri.end() :]
    try:
        if rest.startswith("1 ") and out.priority is not None:
            _rfc5424(rest[2:], tz, out)
        else:
            _bsd(rest, received, tz, out)
    except _UnreadableError as err:
        return Parsed(priority=out.priority, message=line, error=str(err))
    return out


class _UnreadableError(ValueError):
    pass


def _timestamp_3339(text: str, pos: int, tz: tzinfo) -> tuple[datetime, int]:
    found = _RFC3339.match(text, pos)
    if found is None:
        raise _UnreadableError("no valid timestamp")
    year, month, day, hour, minute, second, fraction, offset = found.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        moment = datetime(
            int(year), int(month), int(day), int(hour), int(minute), min(int(second), 59), micro
        )
    except ValueError as err:
        raise _UnreadableError(f"invalid timestamp: {err}") from None
    if offset is None:
        zone_info = tz
    elif offset in ("Z", "z"):
        zone_info = UTC
    else:
        minutes = int(offset[1:3]) * 60 + int(offset[-2:])
        if minutes >= 24 * 60:
            raise _UnreadableError("invalid timestamp: time zone offset out of range")
        delta = timedelta(minutes=minutes)
        zone_info = _fixed(-delta if offset[0] == "-" else delta)
    try:
        return moment.replace(tzinfo=zone_info).astimezone(UTC), found.end()
    except OverflowError:
        raise _UnreadableError("invalid timestamp: out of range") from None


@lru_cache(maxsize=64)
def _fixed(offset: timedelta) -> tzinfo:
    from datetime import timezone

    return timezone(offset)


def _field(text: str, pos: int, name: str) -> tuple[str | None, int]:
    """One space-terminated RFC 5424 header field (NILVALUE -> None)."""
    end = text.find(" ", pos)
    if end < 0:
        raise _UnreadableError(f"RFC 5424 header ends before {name}")
    value = text[pos:end]
    if not value:
        raise _UnreadableError(f"RFC 5424 {name} is empty")
    return (None if value == NIL else value), end + 1


def _rfc5424(text: str, tz: tzinfo, out: Parsed) -> None:
    if text.startswith("- "):
        pos = 2
    else:
        out.timestamp, pos = _timestamp_3339(text, 0, tz)
        if text[pos : pos + 1] != " ":
            raise _UnreadableError("RFC 5424 timestamp not followed by a space")
        pos += 1
    out.hostname, pos = _field(text, pos, "HOSTNAME")
    out.appname, pos = _field(text, pos, "APP-NAME")
    out.procid, pos = _field(text, pos, "PROCID")
    out.msgid, pos = _field(text, pos, "MSGID")
    if text.startswith(NIL, pos):
        pos += 1
    elif text.startswith("[", pos):
        pos = _structured_data(text, pos, out.structured_data)
    else:
        raise _UnreadableError("RFC 5424 STRUCTURED-DATA missing")
    if pos < len(text):
        if text[pos] != " ":
            raise _UnreadableError("RFC 5424 STRUCTURED-DATA not followed by a space")
        pos += 1
    message = text[pos:]
    # Relays (rsyslog's RFC 5424 templates) keep the space a BSD tag had after its colon.
    out.message = (message[1:] if message.startswith(BOM) else message).lstrip(" ")


def _structured_data(text: str, pos: int, into: dict[str, dict[str, str]]) -> int:
    while text.startswith("[", pos):
        found = _SD_ID.match(text, pos)
        if found is None:
            raise _UnreadableError("RFC 5424 SD-ELEMENT without a valid SD-ID")
        params: dict[str, str] = {}
        pos = found.end()
        while (param := _SD_PARAM.match(text, pos)) is not None:
            params[param[1]] = _SD_UNESCAPE.sub(r"\1", param[2])
            pos = param.end()
        if not text.startswith("]", pos):
            raise _UnreadableError("RFC 5424 SD-ELEMENT not closed")
        into[found[1]] = params
        pos += 1
    return pos


def _bsd(text: str, received: datetime, tz: tzinfo, out: Parsed) -> None:
    """RFC 3164 and its relatives: ``[<PRI>]STAMP [HOST] TAG[PID]: MSG``."""
    head = _BSD_HEAD.match(text)
    if head is not None:
        out.timestamp = _bsd_time(head["stamp"], _hour(received), tz)
        _host_and_tag(head, text, out)
    elif (dpkg := _DPKG_LOG.match(text)) is not None:
        # /var/log/dpkg.log: "2026-11-27 12:00:00 install nginx:amd64 <none> 1.2"
        out.timestamp, _ = _timestamp_3339(f"{dpkg[1]}T{dpkg[2]}", 0, tz)
        out.appname = "dpkg"
        out.message = text[dpkg.end() :]
    elif text[:1].isdigit():
        out.timestamp, pos = _timestamp_3339(text, 0, tz)
        if text[pos : pos + 1] != " ":
            raise _UnreadableError("timestamp not followed by a space")
        found = _AFTER_STAMP.match(text, pos + 1)
        assert found is not None  # the pattern is optional: it always matches
        _host_and_tag(found, text, out)
    else:
        raise _UnreadableError("no valid timestamp")


def _host_and_tag(found: re.Match[str], text: str, out: Parsed) -> None:
    """Host, tag and message from a match of ``_HOST_TAG`` right after the stamp."""
    if found["tag"] is not None:
        out.appname, procid = found["tag"], found["tag_pid"]
    elif found["host"] is not None:
        out.hostname = found["host"] or None
        out.appname, procid = found["hosttag"], found["hosttag_pid"]
    else:
        raise _UnreadableError("line ends after the timestamp")
    out.procid = procid or None
    out.message = text[found.end() :].lstrip(" ")


@lru_cache(maxsize=256)
def _hour(received: datetime) -> int:
    return int(received.timestamp()) // _HOUR


@lru_cache(maxsize=8192)
def _bsd_time(stamp: str, received_hour: int, tz: tzinfo) -> datetime:
    """RFC 3164 has no year: take the one that puts the stamp nearest the receive
    time (counted in whole hours, so lines of one second share the answer)."""
    found = _BSD_STAMP.match(stamp)
    if found is None:  # pragma: no cover - the caller matched it
        raise _UnreadableError("no valid timestamp")
    month = _MONTHS.get(found[1])
    if month is None:
        raise _UnreadableError(f"unknown month {found[1]!r}")
    local = datetime.fromtimestamp(received_hour * _HOUR, UTC).astimezone(tz)
    micro = int((found[6] or "0").ljust(6, "0"))
    best: datetime | None = None
    for year in (local.year - 1, local.year, local.year + 1):
        try:
            candidate = datetime(
                year,
                month,
                int(found[2]),
                int(found[3]),
                int(found[4]),
                min(int(found[5]), 59),
                micro,
                tzinfo=tz,
            )
        except ValueError:  # Feb 29 outside a leap year, hour 25, ...
            continue
        if best is None or abs(candidate - local) < abs(best - local):
            best = candidate
    if best is None:
        raise _UnreadableError(f"invalid date {stamp.strip()!r}")
    return best.astimezone(UTC)
