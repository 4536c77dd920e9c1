"""The timeline entries of alerts: rows stored beside the alerts in one transaction.

See ``daemon/normalize/alert.py`` for what an entry is and its id.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Final

from daemon.alert import Alert
from daemon.model import format_timestamp
from daemon.normalize import alert as alert_log
from daemon.store import stored
from daemon.store.keys import event_hash, row_key
from daemon.store.text import event_tags, search_text

LOG_TYPE: Final = "alert"
SOURCE: Final = "rules"
"""The source name alert entries are stored under (``--source rules`` finds them)."""

Entry = tuple[str, tuple[int, int, int, bytes], tuple[str, str], str]
"""source, (key, eid, codec, compressed stored record), (text, tags), log type"""


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
