"""Syslog line formats: RFC 5424, RFC 3164 (BSD) and rsyslog's RFC 3339 file lines.

Real senders bend both RFCs (an upper-case month, a year or a zone in the stamp,
a colon after it, a space after the PRI, no host name, Cisco ``%FAC-SEV-MNEMONIC:``
tags, structured data with a stray space), so the header is read field by field
as rsyslog and syslog-ng do: every field that can be read is kept, the rest
falls back (the receive time, the peer's address), and ``guessed`` names what
fell back.  The message is always a suffix of the line: no byte of it is lost.

``parse`` never raises: a line with neither a time stamp nor a tag comes back
with ``error`` set and the whole line as the message, so the caller keeps it as
a raw event.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Final, ParamSpec, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_P = ParamSpec("_P")
_T = TypeVar("_T")
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
_LOOSE_STAMP = re.compile(
    r"\*?(?P<month>[A-Za-z]{3}) +(?P<day>\d{1,2})(?: +(?P<year>\d{4}))?"
    r" +(?P<hour>\d{1,2}):(?P<minute>\d\d):(?P<second>\d\d)(?:[.,](?P<fraction>\d{1,9}))?"
    r"(?: +(?P<zone>UTC|GMT|Z))?(?: *:)?(?: +|$)"
)
"""RFC 3164 stamps as devices write them: any case, a year, a zone (only UTC is
read), a colon after the time (Cisco's ``*Mar  1 18:48:50.483 UTC:``)."""


def _tag(name: str) -> str:
    """``TAG[PID]:`` with the tag and the pid as named groups."""
    return rf"(?P<{name}>[^\s\[\]:]{{1,128}})(?:\[(?P<{name}_pid>[^\]\s]{{0,32}})\])?: ?"


# The first word after the stamp is the host unless it is already the tag.
_HOST_TAG = rf"(?:{_tag('tag')}|(?P<host>[^ ]*) (?:{_tag('hosttag')})?)?"
_BSD_HEAD = re.compile(rf"(?P<stamp>{_BSD_STAMP.pattern})(?!(?:UTC|GMT|Z):? ){_HOST_TAG}")
"""Stamp, host and tag of a BSD line in one match."""
_AFTER_STAMP = re.compile(_HOST_TAG)
_TAG_ONLY = re.compile(_tag("tag"))
_SD_ID = re.compile(r'\[([^\s=\]"]{1,32})')
_SD_PARAM = re.compile(r' +([^\s=\]"]{1,32}) *= *"((?:[^"\\]|\\.)*)"', re.DOTALL)
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
    guessed: list[str] = field(default_factory=list)
    """Header fields that could not be read and fell back: ``timestamp``,
    ``structured_data`` (its text is then the start of the message)."""


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
            _bsd(rest.lstrip(" ") if out.priority is not None else rest, received, tz, out)
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


def _field(text: str, pos: int) -> tuple[str | None, int]:
    """One space-terminated RFC 5424 header field (NILVALUE, or nothing left -> None)."""
    if pos >= len(text):
        return None, pos
    end = text.find(" ", pos)
    if end < 0:
        end = len(text)
    value = text[pos:end]
    return (None if value in (NIL, "") else value), end + 1


def _rfc5424(text: str, tz: tzinfo, out: Parsed) -> None:
    if text.startswith("- "):
        pos = 2
    else:
        try:
            out.timestamp, pos = _timestamp_3339(text, 0, tz)
        except _UnreadableError:
            out.guessed.append("timestamp")
            pos = text.find(" ") if " " in text else len(text)
        pos += 1
    out.hostname, pos = _field(text, pos)
    out.appname, pos = _field(text, pos)
    out.procid, pos = _field(text, pos)
    out.msgid, pos = _field(text, pos)
    if text.startswith(NIL, pos):
        pos += 1
    elif text.startswith("[", pos):
        try:
            pos = _structured_data(text, pos, out.structured_data)
        except _UnreadableError:  # kept as the start of the message
            out.structured_data.clear()
            out.guessed.append("structured_data")
    elif pos < len(text):
        out.guessed.append("structured_data")
    message = text[pos:]
    if message.startswith(" "):
        message = message[1:]
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
        pos = len(text) - len(text[pos:].lstrip(" "))
        if not text.startswith("]", pos):
            raise _UnreadableError("RFC 5424 SD-ELEMENT not closed")
        into[found[1]] = params
        pos += 1
    return pos


def _bsd(text: str, received: datetime, tz: tzinfo, out: Parsed) -> None:
    """RFC 3164 and its relatives: ``[<PRI>]STAMP [HOST] TAG[PID]: MSG``."""
    head = _BSD_HEAD.match(text)
    if head is not None:
        out.timestamp = _guarded(_bsd_time, out, head["stamp"], _hour(received), tz)
        _host_and_tag(head, text, out)
    elif (dpkg := _DPKG_LOG.match(text)) is not None:
        # /var/log/dpkg.log: "2026-11-27 12:00:00 install nginx:amd64 <none> 1.2"
        out.timestamp, _ = _timestamp_3339(f"{dpkg[1]}T{dpkg[2]}", 0, tz)
        out.appname = "dpkg"
        out.message = text[dpkg.end() :]
    elif (iso := _RFC3339.match(text)) is not None:
        found = _guarded(_timestamp_3339, out, text, 0, tz)
        out.timestamp = None if found is None else found[0]
        _after_stamp(text, iso.end(), out)
    elif (loose := _LOOSE_STAMP.match(text)) is not None:
        out.timestamp = _guarded(_loose_time, out, loose, received, tz)
        _after_stamp(text, loose.end(), out)
    else:
        _without_stamp(text, out)


def _guarded(read: Callable[_P, _T], out: Parsed, *args: _P.args, **kwargs: _P.kwargs) -> _T | None:
    """A stamp of the right shape with impossible values (Feb 30, hour 25): the
    receive time stands in and the rest of the header is still read."""
    try:
        return read(*args, **kwargs)
    except _UnreadableError:
        out.guessed.append("timestamp")
        return None


def _after_stamp(text: str, pos: int, out: Parsed) -> None:
    """Host and tag after a stamp that may be followed by a colon or extra spaces."""
    if text.startswith(":", pos):
        pos += 1
    while text.startswith(" ", pos):
        pos += 1
    if pos >= len(text):
        out.message = ""
        return
    found = _AFTER_STAMP.match(text, pos)
    assert found is not None  # the pattern is optional: it always matches
    _host_and_tag(found, text, out)


def _without_stamp(text: str, out: Parsed) -> None:
    """No stamp could be read: the receive time stands in; a tag at the start is
    still read (rsyslog does the same), else the line is not syslog at all."""
    found = _TAG_ONLY.match(text)
    if found is None:
        raise _UnreadableError("no valid timestamp")
    out.guessed.append("timestamp")
    out.appname, out.procid = found["tag"], found["tag_pid"] or None
    out.message = text[found.end() :].lstrip(" ")


def _loose_time(found: re.Match[str], received: datetime, tz: tzinfo) -> datetime:
    month = found["month"].title()
    zone_info = UTC if found["zone"] else tz
    fraction = (found["fraction"] or "")[:6]
    if found["year"] is None:
        stamp = (
            f"{month} {int(found['day']):2d} {int(found['hour']):02d}:{found['minute']}"
            f":{found['second']}{'.' + fraction if fraction else ''} "
        )
        return _bsd_time(stamp, _hour(received), zone_info)
    number = _MONTHS.get(month)
    if number is None:
        raise _UnreadableError(f"unknown month {found['month']!r}")
    try:
        moment = datetime(
            int(found["year"]),
            number,
            int(found["day"]),
            int(found["hour"]),
            int(found["minute"]),
            min(int(found["second"]), 59),
            int(fraction.ljust(6, "0")),
            tzinfo=zone_info,
        )
    except ValueError as err:
        raise _UnreadableError(f"invalid timestamp: {err}") from None
    return moment.astimezone(UTC)


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
