"""The ``syslog`` log type: RFC 5424, RFC 3164 and file lines to ECS events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.base import NormalizationError
from connectors.syslog.batch import header
from daemon.logtypes import normalize_record
from daemon.normalize import Limits, journald, syslog
from daemon.normalize.syslog_parse import parse, zone
from daemon.store import stored

RECEIVED = datetime(2026, 11, 27, 12, 0, 30, tzinfo=UTC)
RECEIVED_NS = int(RECEIVED.timestamp()) * 10**9


def events(*lines: str, received_ns: int = RECEIVED_NS, tz: str = "UTC", **extra: Any) -> list[Any]:
    payload = header(received_ns, tz, **extra) + "\n".join(lines).encode()
    return [syslog.normalize(r) for r in syslog.decode(payload, Limits())]


def doc(line: str, **extra: Any) -> dict[str, Any]:
    [event] = events(line, **extra)
    document: dict[str, Any] = event.to_document()
    return document


# --------------------------------------------------------------------------- RFC 5424


def test_rfc5424_header_structured_data_bom_and_fraction() -> None:
    line = (
        "<165>1 2026-11-27T12:00:00.123456789+01:00 web-1 myapp 8710 ID47 "
        '[exampleSDID@32473 iut="3" eventSource="App\\]l\\"ication"][meta seq="1"] '
        "\ufeffhello world"
    )
    d = doc(line, peer="10.0.0.5")
    assert d["@timestamp"] == "2026-11-27T11:00:00.123456Z"
    assert d["message"] == "hello world"
    assert d["event"]["original"] == line
    assert d["host"]["name"] == "web-1"
    assert d["process"] == {"name": "myapp", "pid": 8710}
    log = d["log"]["syslog"]
    assert log["priority"] == 165
    assert log["facility"]["code"] == 20
    assert log["severity"]["code"] == 5
    assert log["msgid"] == "ID47"
    assert log["structured_data"] == {
        "exampleSDID@32473": {"iut": "3", "eventSource": 'App]l"ication'},
        "meta": {"seq": "1"},
    }
    assert d["log"]["source"]["address"] == "10.0.0.5"
    assert d["event"]["dataset"] == "system.syslog"


def test_rfc5424_nilvalues_use_receive_time_and_peer() -> None:
    d = doc("<13>1 - - - - - -", peer="10.0.0.9")
    assert d["@timestamp"] == "2026-11-27T12:00:30Z"
    assert d["host"]["name"] == "10.0.0.9"
    assert "labels" not in d
    assert "process" not in d


def test_rfc5424_zulu_and_negative_offset() -> None:
    assert doc("<13>1 2026-11-27T12:00:00Z h a - - - x")["@timestamp"] == "2026-11-27T12:00:00Z"
    d = doc("<13>1 2026-11-27T07:00:00.5-05:00 h a - - - x")
    assert d["@timestamp"] == "2026-11-27T12:00:00.500000Z"


@pytest.mark.parametrize(
    ("line", "reason"),
    [("just words", "no valid timestamp"), ("<13>no stamp and no tag", "no valid timestamp")],
)
def test_unparsable_lines_are_raw_events_with_the_reason(line: str, reason: str) -> None:
    """A line with neither a stamp nor a tag is kept whole, with the reason."""
    d = doc(line)
    assert reason in d["labels"]["parse_error"]
    assert d.get("message", "") == line
    assert d["event"]["original"] == line
    assert d["event"]["dataset"] == "system.syslog"
    assert d["@timestamp"] == "2026-11-27T12:00:30Z"


@pytest.mark.parametrize(
    ("line", "fallback", "message"),
    [
        ("<13>1 2026-13-40T00:00:00Z h a - - - x", "timestamp", "x"),
        ("<13>1 2026-11-27T12:00:00Z h a - -", None, None),
        ("<13>1 2026-11-27T12:00:00Z h a - - [bad", "structured_data", "[bad"),
        ("<13>1 2026-11-27T12:00:00Z h a - - x", "structured_data", "x"),
    ],
)
def test_broken_rfc5424_keeps_the_fields_it_can_read(
    line: str, fallback: str | None, message: str | None
) -> None:
    """A bent RFC 5424 header keeps host and app; what fell back is named, not an error."""
    d = doc(line)
    assert (d["host"]["name"], d["process"]["name"]) == ("h", "a")
    assert d.get("message") == message
    assert d.get("labels", {}).get("parse_fallback") == fallback
    assert "parse_error" not in d.get("labels", {})


# --------------------------------------------------------------------------- RFC 3164


def test_rfc3164_with_pri_host_and_pid() -> None:
    d = doc("<38>Nov 27 12:00:01 bastion sshd[4242]: Server listening on 0.0.0.0 port 22.")
    assert d["@timestamp"] == "2026-11-27T12:00:01Z"
    assert d["host"]["name"] == "bastion"
    assert d["process"] == {"name": "sshd", "pid": 4242}
    assert d["message"] == "Server listening on 0.0.0.0 port 22."
    assert d["event"]["dataset"] == "system.auth"


def test_rfc3164_without_hostname_takes_the_peer() -> None:
    d = doc("<13>Nov  7 08:09:10 cron[12]: job done", peer="192.0.2.1")
    assert d["host"]["name"] == "192.0.2.1"
    assert d["process"]["name"] == "cron"
    assert d["@timestamp"] == "2026-11-07T08:09:10Z"


def test_rfc3164_time_zone_of_the_source() -> None:
    d = doc("Nov 27 13:00:01 h app: x", tz="Europe/Berlin")
    assert d["@timestamp"] == "2026-11-27T12:00:01Z"


@pytest.mark.parametrize(
    ("received", "stamp", "expected"),
    [
        (datetime(2026, 12, 31, 23, 59, tzinfo=UTC), "Jan  1 00:00:05", "2027-01-01T00:00:05Z"),
        (datetime(2027, 1, 1, 0, 0, 5, tzinfo=UTC), "Dec 31 23:59:58", "2026-12-31T23:59:58Z"),
        (datetime(2026, 6, 1, tzinfo=UTC), "May 31 10:00:00", "2026-05-31T10:00:00Z"),
        (datetime(2028, 3, 1, tzinfo=UTC), "Feb 29 10:00:00", "2028-02-29T10:00:00Z"),
    ],
)
def test_rfc3164_year_is_the_one_nearest_the_receive_time(
    received: datetime, stamp: str, expected: str
) -> None:
    ns = int(received.timestamp()) * 10**9
    assert doc(f"{stamp} h app: x", received_ns=ns)["@timestamp"] == expected


def test_rsyslog_rfc3339_file_line() -> None:
    d = doc("2026-11-27T13:00:01.123456+01:00 bastion sudo: pam_unix(sudo:session): closed")
    assert d["@timestamp"] == "2026-11-27T12:00:01.123456Z"
    assert d["host"]["name"] == "bastion"
    assert d["process"]["name"] == "sudo"


def test_year_inference_is_deterministic_from_the_record() -> None:
    """The store rebuilds the document from the record: the same event comes back."""
    [record] = syslog.decode(header(RECEIVED_NS, "UTC") + b"Nov 27 12:00:01 h su: x", Limits())
    data = stored.encode("syslog", "2026-11-27T12:01:00Z", record)
    again = stored.read(data, RECEIVED, normalize_record)[1]
    assert again["event"]["id"] == syslog.normalize(record).id
    assert again["@timestamp"] == "2026-11-27T12:00:01Z"


# --------------------------------------------------------------------------- ids, positions


def test_identical_lines_in_one_batch_are_two_events() -> None:
    line = "<38>Nov 27 12:00:01 h sshd[1]: Failed password for root from 192.0.2.7 port 2 ssh2"
    first, second = events(line, line, peer="10.0.0.1")
    assert first.id != second.id


def test_file_positions_are_byte_offsets_and_stable() -> None:
    lines = ["Nov 27 12:00:01 h a: one", "Nov 27 12:00:01 h a: one"]
    a = events(*lines, positions="offset", base=100, fingerprint="f00d", file="/var/log/x")
    again = events(
        *lines, received_ns=RECEIVED_NS + 10**9, positions="offset", base=100, fingerprint="f00d"
    )
    assert [r.original["position"] for r in a] == ["f00d:100", "f00d:125"]
    assert [e.id for e in a] == [e.id for e in again]
    assert a[0].id != a[1].id
    assert a[0].to_document()["log"]["file"]["path"] == "/var/log/x"


def test_truncated_messages_are_flagged() -> None:
    [event] = events("<13>Nov 27 12:00:01 h a: xxxx", truncated=[0])
    assert event.labels == {"truncated": "true"}


def test_bad_header_is_a_payload_error() -> None:
    with pytest.raises(NormalizationError, match="header"):
        syslog.decode(b"not json\nline", Limits())


def test_bad_record_is_a_record_error() -> None:
    with pytest.raises(NormalizationError):
        syslog.normalize({"line": "x", "received_ns": "soon", "tz": "UTC"})
    with pytest.raises(NormalizationError):
        syslog.normalize({"line": "x", "received_ns": 1, "tz": "Mars/Base"})


# --------------------------------------------------------------------------- properties


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=300), st.sampled_from(["UTC", "Europe/Berlin", "America/New_York"]))
def test_parsing_never_raises(text: str, tz: str) -> None:
    line = text.replace("\n", " ")
    for candidate in ("x" + line, "<13>" + line, "<13>1 " + line, "Nov 27 12:00:00 " + line):
        [event] = events(candidate, tz=tz)
        event.to_json()
        assert event.fields["event.original"] == candidate.rstrip("\r")


_NAMES = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=32)
_SD_VALUE = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FFF), max_size=20)


@settings(max_examples=300, deadline=None)
@given(
    pri=st.integers(0, 191),
    moment=st.datetimes(
        min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)
    ),
    offset=st.integers(-14 * 60, 14 * 60),
    host=_NAMES.filter(lambda s: s != "-"),
    app=_NAMES.filter(lambda s: s != "-"),
    procid=st.one_of(st.none(), _NAMES.filter(lambda s: s != "-")),
    sd=st.dictionaries(
        st.text("abcdefgh@0123", min_size=1, max_size=8),
        st.dictionaries(st.text("xyz", min_size=1, max_size=5), _SD_VALUE, max_size=3),
        max_size=3,
    ),
    message=st.text(max_size=80).map(lambda s: s.replace("\n", " ").rstrip("\r")),
)
def test_rfc5424_round_trip(
    pri: int,
    moment: datetime,
    offset: int,
    host: str,
    app: str,
    procid: str | None,
    sd: dict[str, dict[str, str]],
    message: str,
) -> None:
    """A message formatted by the RFC 5424 grammar parses back to its parts."""
    local = moment.astimezone(zone("UTC")) + timedelta(minutes=offset)
    sign = "-" if offset < 0 else "+"
    stamp = (
        local.strftime("%Y-%m-%dT%H:%M:%S.%f")
        + f"{sign}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}"
    )

    def escape(value: str) -> str:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")

    elements = "".join(
        f"[{sid}" + "".join(f' {k}="{escape(v)}"' for k, v in params.items()) + "]"
        for sid, params in sd.items()
    )
    line = f"<{pri}>1 {stamp} {host} {app} {procid or '-'} - {elements or '-'} {message}"
    parsed = parse(line, RECEIVED)
    assert parsed.error is None, parsed.error
    assert parsed.priority == pri
    assert parsed.timestamp == moment
    assert (parsed.hostname, parsed.appname, parsed.procid) == (host, app, procid)
    assert parsed.structured_data == sd
    assert parsed.message == message.removeprefix("\ufeff").lstrip(" ")


@settings(max_examples=200, deadline=None)
@given(
    moment=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)
    ),
    skew=st.integers(-150, 150),
    host=st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True),
    program=st.from_regex(r"[a-z][a-z0-9_.-]{0,20}", fullmatch=True),
    pid=st.integers(1, 4_000_000),
    message=st.text(st.characters(min_codepoint=32, max_codepoint=0x2FFF), max_size=80),
)
def test_rfc3164_round_trip(
    moment: datetime, skew: int, host: str, program: str, pid: int, message: str
) -> None:
    """Stamp, host and tag come back, the year from a receive time within five months."""
    moment = moment.replace(microsecond=0)
    stamp = f"{moment:%b} {moment.day:2d} {moment:%H:%M:%S}"
    line = f"<13>{stamp} {host} {program}[{pid}]: {message}"
    parsed = parse(line, moment + timedelta(days=skew))
    assert parsed.error is None
    assert parsed.timestamp == moment
    assert (parsed.hostname, parsed.appname, parsed.procid) == (host, program, str(pid))
    assert parsed.message == message.lstrip(" ")


# --------------------------------------------------------------------------- journald


def test_journal_entry_with_binary_message_and_priority() -> None:
    entry = {
        "__CURSOR": "s=1;i=2",
        "__REALTIME_TIMESTAMP": "1764244800123456",
        "_HOSTNAME": "web-1",
        "_COMM": "sudo",
        "_PID": "42",
        "PRIORITY": "5",
        "MESSAGE": list(b"alice : TTY=pts/0 ; PWD=/ ; USER=root ; COMMAND=/bin/id \xff"),
    }
    payload = b"\n".join([orjson.dumps(entry), b"not json"])
    good, bad = journald.decode(payload, Limits())
    d = journald.normalize(good).to_document()
    assert d["@timestamp"] == "2025-11-27T12:00:00.123456Z"
    assert d["event"]["action"] == "sudo"
    assert d["process"] == {"name": "sudo", "pid": 42, "command_line": "/bin/id \ufffd"}
    assert d["log"]["syslog"]["priority"] == 13
    with pytest.raises(NormalizationError):
        journald.normalize(bad)
    with pytest.raises(NormalizationError, match="CURSOR"):
        journald.normalize({"MESSAGE": "x", "__REALTIME_TIMESTAMP": "1"})
