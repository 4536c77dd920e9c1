"""Row keys: event time in the high bits, a hash of the event id in the low ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from daemon.store.keys import (
    HASH_BITS,
    event_hash,
    key_ceiling,
    key_floor,
    key_time,
    month_of,
    row_key,
)

moments = st.datetimes(
    min_value=datetime(1970, 1, 2),
    max_value=datetime(2200, 1, 1),
    timezones=st.just(UTC),
)
eids = st.integers(min_value=-(2**63), max_value=2**63 - 1)
# Past 2**31 seconds a float timestamp times 1000 often lands just below the
# whole millisecond; these examples keep that case in every run.
AFTER_2038 = datetime(2038, 2, 1, 0, 0, 0, 1000, tzinfo=UTC)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@given(moments, eids, eids)
@example(AFTER_2038, -1, 0)
def test_row_keys_follow_event_time(moment: datetime, first: int, second: int) -> None:
    """A later millisecond always sorts after an earlier one, whatever the id hashes."""
    later = moment + timedelta(milliseconds=1)
    assert row_key(moment, first) < row_key(later, second)


@given(moments, eids)
@example(AFTER_2038, 0)
def test_floor_and_ceiling_bracket_every_key_of_a_moment(moment: datetime, eid: int) -> None:
    """key_floor and key_ceiling of a moment enclose the key of any event at that moment."""
    key = row_key(moment, eid)
    assert key_floor(moment) <= key <= key_ceiling(moment)
    assert key_ceiling(moment) < key_floor(moment + timedelta(milliseconds=1))
    assert key_ceiling(moment - timedelta(milliseconds=1)) < key_floor(moment)


@given(moments, eids)
@example(AFTER_2038 + timedelta(milliseconds=1), 0)
def test_key_time_is_the_event_millisecond(moment: datetime, eid: int) -> None:
    """The time read back from a key is the event time cut to the millisecond."""
    assert key_time(row_key(moment, eid)) == moment.replace(
        microsecond=moment.microsecond // 1000 * 1000
    )


def test_keys_are_non_negative_and_use_the_low_bits_for_the_hash() -> None:
    """Keys fit SQLite's signed integers; the low HASH_BITS come from the id hash."""
    moment = at("2026-11-20T01:02:03.456")
    eid = event_hash("8c1f2a3b-4d5e-4f60-8a7b-9c0d1e2f3a43")
    key = row_key(moment, eid)
    assert 0 <= key < 2**63
    assert key & ((1 << HASH_BITS) - 1) == eid & ((1 << HASH_BITS) - 1)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    assert key >> HASH_BITS == (moment - epoch) // timedelta(milliseconds=1)


def test_times_before_the_epoch_clamp_to_zero() -> None:
    """An event time before 1970 gets the smallest key instead of a negative one."""
    early = at("1969-12-31T23:59:59")
    assert key_floor(early) == 0
    assert row_key(early, -1) == (1 << HASH_BITS) - 1


def test_event_hash_is_stable_and_signed_64_bit() -> None:
    """The same id always hashes alike, within SQLite's integer range; ids differ."""
    first = event_hash("0a1b2c3d-4e5f-6789-abcd-ef0123456789")
    assert first == event_hash("0a1b2c3d-4e5f-6789-abcd-ef0123456789")
    assert -(2**63) <= first < 2**63
    assert first != event_hash("0a1b2c3d-4e5f-6789-abcd-ef012345678a")


@pytest.mark.parametrize(
    ("moment", "month"),
    [
        ("2026-10-31T23:59:59.999", "202610"),
        ("2026-11-01T00:00:00", "202611"),
        ("2026-12-31T23:59:59.999", "202612"),
        ("2027-01-01T00:00:00", "202701"),
        ("2024-02-29T12:00:00", "202402"),
    ],
)
def test_month_of_a_key(moment: str, month: str) -> None:
    """month_of names the UTC month of a key, at both edges of a month."""
    when = at(moment)
    assert month_of(row_key(when, event_hash("x"))) == month
    assert month_of(key_floor(when)) == month
    assert month_of(key_ceiling(when)) == month


def test_month_of_uses_utc() -> None:
    """An event early on the 1st in Tokyo belongs to the previous month in UTC."""
    tokyo = datetime.fromisoformat("2026-11-01T08:00:00+09:00")
    assert month_of(key_floor(tokyo)) == "202610"
