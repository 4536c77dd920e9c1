"""The alerts table: one row per alert id, updated in place as repeats arrive.

Rows hold the alert's documented JSON form (``daemon/alert.py``), so what
``auditcorr alerts --json`` prints is what was stored.  Writes happen in the
same transaction as the events that raised them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime

import orjson

from daemon.alert import Alert

UPSERT = (
    "INSERT INTO alerts (id, rule_id, severity, first_seen, last_seen, updated_at, doc)"
    " VALUES (?,?,?,?,?,?,?)"
    " ON CONFLICT (id) DO UPDATE SET severity = excluded.severity,"
    " first_seen = excluded.first_seen, last_seen = excluded.last_seen,"
    " updated_at = excluded.updated_at, doc = excluded.doc"
)


def micros(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


def upsert_rows(alerts: Sequence[Alert], now_us: int) -> list[tuple[object, ...]]:
    """The parameters of ``UPSERT`` for each alert."""
    return [
        (
            alert.id,
            alert.rule_id,
            alert.severity,
            micros(alert.first_seen),
            micros(alert.last_seen),
            now_us,
            alert.document(),
        )
        for alert in alerts
    ]


def upsert(db: sqlite3.Connection, alerts: Sequence[Alert], now_us: int) -> None:
    """Insert new alerts and replace updated ones; call inside the write transaction."""
    db.executemany(UPSERT, upsert_rows(alerts, now_us))


def select_query(
    *,
    since: datetime | None,
    rule: str | None,
    severities: Sequence[str] | None,
    limit: int,
    newest_first: bool,
) -> tuple[str, list[object]]:
    """The SQL (``?`` parameters) and parameters of a selection of alerts: those whose
    last event is at or after ``since``.

    Oldest first is by the alert's first event (then rule and id, so alerts raised by
    one event list the same way in every store), so a listing reads as the story
    happened; ``newest_first`` is by the last event, so the alerts still growing
    come on top."""
    sql = "SELECT doc FROM alerts WHERE last_seen >= ?"
    params: list[object] = [micros(since) if since else 0]
    if rule is not None:
        sql += " AND rule_id = ?"
        params.append(rule)
    if severities is not None:
        sql += f" AND severity IN ({','.join('?' * len(severities))})"
        params.extend(severities)
    sql += (
        " ORDER BY last_seen DESC, id DESC" if newest_first else " ORDER BY first_seen, rule_id, id"
    )
    sql += " LIMIT ?"
    params.append(limit)
    return sql, params


def decode(doc: bytes) -> Alert:
    return Alert.from_json(orjson.loads(doc))
