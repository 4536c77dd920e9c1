"""TCP framing of syslog streams: newline and RFC 6587 octet counting, in any chunking."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.syslog_net import Framer, parse_listen

LIMIT = 600
_MESSAGES = st.lists(
    st.binary(min_size=1, max_size=2 * LIMIT).map(lambda b: b"<13>" + b.replace(b"\n", b" ")),
    min_size=1,
    max_size=8,
)


def feed(framer: Framer, stream: bytes, cuts: list[int]) -> tuple[list[bytes], list[bytes]]:
    whole: list[bytes] = []
    cut: list[bytes] = []
    points = sorted({0, len(stream), *(c % (len(stream) + 1) for c in cuts)})
    for start, end in itertools.pairwise(points):
        messages, truncated = framer.feed(stream[start:end])
        whole += messages
        cut += truncated
    return whole, cut


@settings(max_examples=300, deadline=None)
@given(_MESSAGES, st.lists(st.integers(0, 100_000), max_size=12))
def test_octet_counting_in_any_chunking(messages: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(f"{len(m)} ".encode() + m for m in messages)
    whole, cut = feed(Framer(LIMIT), stream, cuts)
    assert whole == [m.rstrip(b"\n") for m in messages if len(m) <= LIMIT]
    assert cut == [m[:LIMIT] for m in messages if len(m) > LIMIT]


@settings(max_examples=300, deadline=None)
@given(_MESSAGES, st.lists(st.integers(0, 100_000), max_size=12))
def test_newline_framing_in_any_chunking(messages: list[bytes], cuts: list[int]) -> None:
    clean = [m.rstrip(b"\r") for m in messages]
    stream = b"".join(m + b"\n" for m in clean)
    whole, cut = feed(Framer(LIMIT), stream, cuts)
    assert whole == [m for m in clean if len(m) <= LIMIT]
    assert cut == [m[:LIMIT] for m in clean if len(m) > LIMIT]


def test_newlines_inside_octet_counted_messages_are_escaped() -> None:
    messages, _ = Framer(LIMIT).feed(b"8 <13>a\nb\n10 <13>second")
    assert messages == [b"<13>a#012b", b"<13>second"]


def test_a_broken_octet_frame_ends_the_connection() -> None:
    framer = Framer(LIMIT)
    framer.feed(b"5 <13>x")
    with pytest.raises(ConnectionError, match="octet-counted"):
        framer.feed(b"garbage without a length")


def test_unterminated_last_line_is_kept_when_the_stream_ends() -> None:
    framer = Framer(LIMIT)
    assert framer.feed(b"<13>one\n<13>two") == ([b"<13>one"], [])
    assert framer.rest() == b"<13>two"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("udp:0.0.0.0:514", ("0.0.0.0", 514)), ("udp:[::1]:5514", ("::1", 5514))],
)
def test_listen_addresses(value: str, expected: tuple[str, int]) -> None:
    assert parse_listen(value, "udp") == expected


@pytest.mark.parametrize("value", ["tcp:0.0.0.0:514", "udp:0.0.0.0", "udp:host:port", "514"])
def test_bad_listen_addresses(value: str) -> None:
    with pytest.raises(ValueError, match="expected 'udp:HOST:PORT'"):
        parse_listen(value, "udp")


def test_a_listen_port_past_65535_names_the_range() -> None:
    """An out-of-range port is told as such, not as a malformed address."""
    with pytest.raises(ValueError, match="the port must be 1-65535, or 0 for any free port"):
        parse_listen("udp:127.0.0.1:99999", "udp")
