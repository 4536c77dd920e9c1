"""Real-world syslog variants (syslog_variants.jsonl) and the lenient parser's promises.

Each line of the corpus is ``{"origin", "line", "expect", "rsyslog"}``: a line as a
device or program sends it (from its vendor's documentation, the RFCs' examples,
or captures), the ECS fields its event must have (``null``: absent) when it
arrives from 192.0.2.1, and ``"same"`` when rsyslog 8 reads facility, severity,
host, program and message alike, else how and why rsyslog reads it differently
(tests/integration/test_syslog_rsyslog_parity.py checks that against rsyslogd).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from normsupport import flat

from connectors.syslog.batch import header
from daemon.normalize import Limits, syslog
from daemon.normalize.syslog_parse import parse

CORPUS = Path(__file__).parent / "syslog_variants.jsonl"
RECEIVED_NS = 1_764_244_800 * 10**9
PEER = "192.0.2.1"


def corpus() -> list[Any]:
    cases = [orjson.loads(text) for text in CORPUS.read_text().splitlines()]
    return [pytest.param(case, id=case["origin"][:60]) for case in cases]


def fields(line: bytes) -> dict[str, Any]:
    """The flat ECS fields of ``line`` received from PEER."""
    [record] = syslog.decode(header(RECEIVED_NS, "UTC", peer=PEER) + line, Limits())
    return flat(syslog.normalize(record).to_document())


@pytest.mark.parametrize("case", corpus())
def test_variant_has_its_expected_fields(case: dict[str, Any]) -> None:
    """A real-world variant keeps every header field that can be read from it."""
    got = fields(case["line"].encode())
    assert {key: got.get(key) for key in case["expect"]} == case["expect"]


def test_most_variants_read_without_a_guess() -> None:
    """Only lines that lack a field, or hold an impossible one, fall back; one is raw."""
    cases = [orjson.loads(text) for text in CORPUS.read_text().splitlines()]
    fell_back = [c for c in cases if c["expect"]["labels.parse_fallback"]]
    raw = [c for c in cases if c["expect"]["labels.parse_error"]]
    assert len(fell_back) == 4
    assert [c["origin"] for c in raw] == ["Fortinet key=value without a syslog header"]


_PREFIXES = ("", "<13>", "<13> ", "<13>1 ", "Nov 27 12:00:00 ", "<13>AUG  1 2009 10:00:00: ")


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(_PREFIXES), st.text(max_size=200))
def test_the_message_is_always_what_follows_the_header(prefix: str, text: str) -> None:
    """Parsing any text never raises, and the message is a suffix of the line: the
    header is cut from the front and no byte of the message is dropped or changed."""
    line = prefix + text
    parsed = parse(line, datetime(2026, 11, 27, tzinfo=UTC))
    assert line.endswith(parsed.message)
    if parsed.error is not None:
        assert parsed.message == line


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["Aug", "AUG", "aug"]),
    st.integers(1, 28),
    st.one_of(st.none(), st.integers(1990, 2090)),
    st.sampled_from(["", ":"]),
    st.from_regex(r"[a-z][a-z0-9-]{0,15}", fullmatch=True),
    st.from_regex(r"[a-z][a-z0-9_.-]{0,15}", fullmatch=True),
)
def test_bsd_stamps_in_any_case_with_a_year_or_a_colon(
    month: str, day: int, year: int | None, colon: str, host: str, program: str
) -> None:
    """Month case, a year and a colon after the time do not cost the host or the tag."""
    stamp = f"{month} {day:2d}" + (f" {year}" if year else "") + f" 10:11:12{colon}"
    parsed = parse(f"<38>{stamp} {host} {program}[7]: text", datetime(2026, 11, 27, tzinfo=UTC))
    assert (parsed.hostname, parsed.appname, parsed.procid, parsed.message) == (
        host,
        program,
        "7",
        "text",
    )
    assert parsed.timestamp is not None
    assert (parsed.timestamp.month, parsed.timestamp.day) == (8, day)
    if year:
        assert parsed.timestamp.year == year
    assert parsed.guessed == []


def unescape(line: str) -> bytes:
    """The inverse of ``syslog.text`` for a line it escaped."""
    return re.sub(
        rb"\\(\\|x([0-9a-f]{2}))",
        lambda m: bytes.fromhex(m[2].decode()) if m[2] else b"\\",
        line.encode(),
    )


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200).map(lambda b: b.replace(b"\n", b" ")))
def test_any_bytes_are_stored_without_losing_one(raw: bytes) -> None:
    """Any bytes become one event whose event.original gives back every byte, and a
    line that was not UTF-8 says so."""
    payload = header(RECEIVED_NS, "UTC", peer=PEER) + b"<13>Nov 27 12:00:00 h app: " + raw
    [record] = syslog.decode(payload, Limits())
    event = syslog.normalize(record)
    event.to_json()
    original = event.fields["event.original"]
    sent = b"<13>Nov 27 12:00:00 h app: " + raw
    try:
        sent.decode("utf-8")
    except UnicodeDecodeError:
        assert event.labels["invalid_utf8"] == "escaped"
        assert unescape(original) == sent.rstrip(b"\r")
    else:
        assert "invalid_utf8" not in event.labels
        assert original.encode() == sent.rstrip(b"\r")


def test_invalid_utf8_is_escaped_not_replaced() -> None:
    """A Latin-1 byte and a backslash in one line: \\xNN for the byte, the backslash doubled."""
    got = fields(b"<13>Nov 27 12:00:00 h app: caf\xe9 C:\\temp")
    assert got["event.original"] == "<13>Nov 27 12:00:00 h app: caf\\xe9 C:\\\\temp"
    assert got["message"] == "caf\\xe9 C:\\\\temp"
    assert got["labels.invalid_utf8"] == "escaped"
