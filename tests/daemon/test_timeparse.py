"""Times as operators type them: durations for config and CLI, moments for --since/--until."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from daemon.timeparse import parse_duration, parse_moment

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TOKYO = ZoneInfo("Asia/Tokyo")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("500ms", timedelta(milliseconds=500)),
        ("90s", timedelta(seconds=90)),
        ("20m", timedelta(minutes=20)),
        ("2h", timedelta(hours=2)),
        ("7d", timedelta(days=7)),
        ("1w", timedelta(weeks=1)),
        ("1.5h", timedelta(minutes=90)),
        ("0s", timedelta(0)),
        (" 20 m ", timedelta(minutes=20)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    """A number and one unit (ms, s, m, h, d, w) is a duration; blanks around are fine."""
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "20", "m", "-5m", "20 min", "5M", "2h30m", "1e3s", "1,5h", "twenty minutes"],
)
def test_not_durations(text: str) -> None:
    """Anything else is a ValueError that quotes the input and gives examples."""
    with pytest.raises(ValueError, match=r"not a duration: .*\(examples: 90s, 20m, 2h, 7d\)"):
        parse_duration(text)


def test_duration_too_large_is_a_value_error() -> None:
    """A duration beyond what a timedelta holds is reported as a bad value, not a crash."""
    with pytest.raises(ValueError, match="99999999999d"):
        parse_duration("99999999999d")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-20T01:00:00Z", datetime(2026, 11, 20, 1, tzinfo=UTC)),
        ("2026-11-20T01:00:00+09:00", datetime(2026, 11, 19, 16, tzinfo=UTC)),
        ("2026-11-20T01:00:00.250-05:00", datetime(2026, 11, 20, 6, 0, 0, 250000, tzinfo=UTC)),
        (" 2026-11-20T01:00:00Z ", datetime(2026, 11, 20, 1, tzinfo=UTC)),
    ],
)
def test_moments_with_a_zone(text: str, expected: datetime) -> None:
    """An ISO 8601 time with a zone or Z is that instant, returned in UTC."""
    found = parse_moment(text, now=NOW, zone=TOKYO)
    assert found == expected
    assert found.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-20T01:00:00", datetime(2026, 11, 19, 16, tzinfo=UTC)),
        ("2026-11-20 01:00", datetime(2026, 11, 19, 16, tzinfo=UTC)),
        ("2026-11-20", datetime(2026, 11, 19, 15, tzinfo=UTC)),
    ],
)
def test_moments_without_a_zone_are_in_the_given_zone(text: str, expected: datetime) -> None:
    """A time or date without a zone is read in the configured zone (here Asia/Tokyo)."""
    assert parse_moment(text, now=NOW, zone=TOKYO) == expected


def test_moments_without_a_zone_default_to_utc() -> None:
    """Without a zone argument, a bare time is UTC."""
    assert parse_moment("2026-11-20T01:00:00", now=NOW) == datetime(2026, 11, 20, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "ago"),
    [("2h", timedelta(hours=2)), ("7d", timedelta(days=7)), ("90s", timedelta(seconds=90))],
)
def test_relative_moments_count_back_from_now(text: str, ago: timedelta) -> None:
    """A duration means that long before now, whatever the zone."""
    assert parse_moment(text, now=NOW, zone=TOKYO) == NOW - ago


def test_relative_moment_uses_the_clock_by_default() -> None:
    """Without ``now`` a relative moment counts back from the current time."""
    before = datetime.now(UTC)
    found = parse_moment("1h")
    after = datetime.now(UTC)
    assert before - timedelta(hours=1) <= found <= after - timedelta(hours=1)


@pytest.mark.parametrize("text", ["yesterday", "", "90", "2026-13-01", "20/11/2026", "2h ago"])
def test_not_moments(text: str) -> None:
    """Anything else is a ValueError with examples of both forms."""
    with pytest.raises(ValueError, match=r"not a time: .*ISO 8601 .*2h / 7d ago"):
        parse_moment(text, now=NOW)


@pytest.mark.parametrize("text", ["9999999d", "0001-01-01T00:00:00+01:00"])
def test_moments_out_of_range_are_value_errors(text: str) -> None:
    """A moment outside the datetime range is a bad value (the CLI turns it into exit 2)."""
    with pytest.raises(ValueError, match=r"9999999d|0001-01-01"):
        parse_moment(text, now=NOW)
