"""The timeline entries of alerts: rows stored beside the alerts in one transaction.

See ``daemon/normalize/alert.py`` for what an entry is and its id.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Final

from daemon.alert import Alert
from daemon.model import format_timestamp
from daemon.normalize import alert as alert_log
from daemon.store import placing, stored
from daemon.store.keys import event_hash, key_minute, row_key
from daemon.store.text import event_tags, search_text
from daemon.store.writing import Entry

LOG_TYPE: Final = "alert"
SOURCE: Final = "rules"
"""The source name alert entries are stored under (``--source rules`` finds them)."""


def entries(alerts: Sequence[Alert], codec: int, compress: Callable[[bytes], bytes]) -> list[Entry]:
    ingested = format_timestamp(datetime.now(UTC))
    found: list[Entry] = []
    for alert in alerts:
        record = alert.to_json()
        event = alert_log.normalize(record)
        eid = event_hash(event.id)
        row = (
            row_key(event.timestamp, eid),
            eid,
            codec,
            compress(stored.encode(LOG_TYPE, ingested, record, event)),
        )
        found.append((SOURCE, row, (search_text(event), event_tags(event, SOURCE)), LOG_TYPE))
    return found


def place(
    alerts: Sequence[Alert],
    codec: int,
    compress: Callable[[bytes], bytes],
    access: placing.Access,
) -> Counter[tuple[int, str]]:
    """Store the alerts' entries inside the caller's write; minute counts of those new.

    An entry already stored (the same alert at the same count) is left alone,
    so a replay or a rebuild adds nothing twice.
    """
    made = entries(alerts, codec, compress)
    minutes: Counter[tuple[int, str]] = Counter()
    for entry, placed in zip(made, placing.place(made, access), strict=True):
        if placed is not None:
            minutes[key_minute(placed), entry[3]] += 1
    return minutes
