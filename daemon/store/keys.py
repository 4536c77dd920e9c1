"""Store keys that make the events table time-ordered and self-deduplicating.

An event's row key is its event time in milliseconds shifted left by 20 bits,
plus 20 bits of a hash of its ``event.id``.  Rows therefore sit on disk in
event-time order (range scans and "newest first" are index walks, and the
full-text index returns matches in time order), and a repeated event lands
on the key it already has.  Two different events can share a key (same
millisecond, same 20 hash bits); ``eid``, a 64-bit hash of the id, tells them
apart, and the later one is stored on a free key of the same millisecond
(``placing.py``), or of a later one once its millisecond is full.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from hashlib import blake2b

HASH_BITS = 20
_HASH_MASK = (1 << HASH_BITS) - 1
LAST_MS = (1 << (63 - HASH_BITS)) - 1
"""The last millisecond keys can hold (in 2248): later times are stored at it."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def _ms(moment: datetime) -> int:
    """Milliseconds since the epoch, in integers (floats lose a millisecond after 2038)."""
    return min(max((moment - _EPOCH) // _MS, 0), LAST_MS)


def event_hash(event_id: str) -> int:
    """Signed 64-bit hash of an event id (SQLite integers are signed)."""
    digest = blake2b(event_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def row_key(timestamp: datetime, eid: int) -> int:
    return (_ms(timestamp) << HASH_BITS) | (eid & _HASH_MASK)


def key_floor(moment: datetime) -> int:
    """Smallest row key at or after ``moment``."""
    return _ms(moment) << HASH_BITS


def key_ceiling(moment: datetime) -> int:
    """Largest row key at or before ``moment``."""
    return key_floor(moment) | _HASH_MASK


def key_time(key: int) -> datetime:
    return _EPOCH + (key >> HASH_BITS) * _MS


def key_minute(key: int) -> int:
    """Minutes since the epoch of the key's event time (the histogram's unit)."""
    return (key >> HASH_BITS) // 60_000


def month_of(key: int) -> str:
    """``YYYYMM`` of the key's event time: the full-text index is split by month."""
    return month_span(key)[0]


def month_span(key: int) -> tuple[str, int, int]:
    """The month of ``key`` with the first and last key inside it."""
    moment = key_time(key)
    start = datetime(moment.year, moment.month, 1, tzinfo=UTC)
    following = datetime(moment.year + moment.month // 12, moment.month % 12 + 1, 1, tzinfo=UTC)
    return f"{moment.year:04d}{moment.month:02d}", key_floor(start), key_floor(following) - 1
