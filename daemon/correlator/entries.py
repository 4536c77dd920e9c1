"""The timeline entries of alerts, made where the alerts are made.

See ``daemon/normalize/alert.py`` for what an entry is and its id; the store
compresses and places them in the correlator's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from daemon.alert import Alert
from daemon.model import format_timestamp
from daemon.normalize import alert as alert_log
from daemon.store import codec, stored
from daemon.store.alert_events import LOG_TYPE, SOURCE
from daemon.store.keys import event_hash, row_key
from daemon.store.text import event_tags, search_text
from daemon.store.units import Entry


def alert_entries(alerts: Sequence[Alert]) -> list[Entry]:
    """One entry per alert as it stands, its document uncompressed."""
    ingested = format_timestamp(datetime.now(UTC))
    found: list[Entry] = []
    for alert in alerts:
        record = alert.to_json()
        event = alert_log.event_of(alert, record)
        eid = event_hash(event.id)
        row = (
            row_key(event.timestamp, eid),
            eid,
            codec.PLAIN,
            stored.encode(LOG_TYPE, ingested, record, event),
        )
        found.append((SOURCE, row, (search_text(event), event_tags(event, SOURCE)), LOG_TYPE))
    return found
