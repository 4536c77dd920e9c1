"""TCP framing of syslog streams: newline and RFC 6587 octet counting, in any chunking."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.syslog.framing import Framer, FramingError
from connectors.syslog.listener import parse_listen

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
    """Something that is not a frame, after frames, ends the octet-counted stream."""
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


def test_every_whole_frame_before_a_broken_one_is_kept() -> None:
    """1,000 valid frames and one bad frame in the same read: the error carries all 1,000."""
    frames = [b"<13>message %d" % n for n in range(1000)]
    stream = b"".join(b"%d %s" % (len(m), m) for m in frames) + b"garbage, not a frame"
    with pytest.raises(FramingError, match="octet-counted") as caught:
        Framer(LIMIT).feed(stream)
    assert caught.value.messages == frames
    assert caught.value.truncated == []


@settings(max_examples=300, deadline=None)
@given(_MESSAGES, st.lists(st.integers(0, 100_000), max_size=12), st.binary(max_size=40))
def test_frames_before_garbage_are_kept_in_any_chunking(
    messages: list[bytes], cuts: list[int], junk: bytes
) -> None:
    """Whatever chunking, the frames that came whole before a non-frame are all handed on."""
    stream = b"".join(f"{len(m)} ".encode() + m for m in messages) + b"x" + junk
    framer = Framer(LIMIT)
    whole: list[bytes] = []
    cut: list[bytes] = []
    points = sorted({0, len(stream), *(c % (len(stream) + 1) for c in cuts)})
    try:
        for start, end in itertools.pairwise(points):
            got, got_cut = framer.feed(stream[start:end])
            whole += got
            cut += got_cut
    except FramingError as err:
        whole += err.messages
        cut += err.truncated
    else:
        pytest.fail("the garbage after the frames was taken for a frame")
    assert whole == [m for m in messages if len(m) <= LIMIT]
    assert cut == [m[:LIMIT] for m in messages if len(m) > LIMIT]


def test_a_lying_count_gives_up_and_recovers_the_frames_after_it() -> None:
    """A count larger than the data: expiring the frame keeps its bytes (truncated) and
    the whole frames that follow it."""
    framer = Framer(LIMIT)
    assert framer.feed(b"5 <13>a200 <13>short lie\n17 <13>next is valid") == ([b"<13>a"], [])
    assert framer.waiting
    assert framer.expire() == ([b"<13>next is valid"], [b"<13>short lie"])
    assert not framer.waiting
    assert framer.feed(b"6 <13>on") == ([b"<13>on"], [])


def test_a_lying_count_with_nothing_after_it_is_kept_whole() -> None:
    """With no frame to resynchronise on, the partial frame is one truncated message."""
    framer = Framer(LIMIT)
    framer.feed(b"90 <13>only this arrived")
    assert framer.expire() == ([], [b"<13>only this arrived"])


def test_a_newline_framed_stream_never_waits_for_a_count() -> None:
    """Only octet counting can wait on a count; a partial line is not an expired frame."""
    framer = Framer(LIMIT)
    framer.feed(b"<13>no newline yet")
    assert not framer.waiting
