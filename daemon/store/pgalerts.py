"""The alerts table in PostgreSQL: the statements of ``alerts.py``, run by psycopg."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import psycopg

from daemon.alert import Alert
from daemon.store import alerts


def placeholders(sql: str) -> bytes:
    """SQLite's ``?`` parameters as psycopg's ``%s`` (the statements hold no other ``?``)."""
    return sql.replace("%", "%%").replace("?", "%s").encode()


_UPSERT = placeholders(alerts.UPSERT)


def upsert(db: psycopg.Connection, found: Sequence[Alert], now_us: int) -> None:
    """Insert new alerts and replace updated ones; call inside the write transaction."""
    with db.cursor() as cursor:
        cursor.executemany(_UPSERT, alerts.upsert_rows(found, now_us))


def select(
    db: psycopg.Connection,
    *,
    since: datetime | None = None,
    rule: str | None = None,
    severities: Sequence[str] | None = None,
    limit: int = 1000,
    newest_first: bool = False,
) -> list[Alert]:
    """Alerts whose last event is at or after ``since``, oldest first unless ``newest_first``."""
    sql, params = alerts.select_query(
        since=since, rule=rule, severities=severities, limit=limit, newest_first=newest_first
    )
    return [alerts.decode(row[0]) for row in db.execute(placeholders(sql), params)]


def select_one(db: psycopg.Connection, alert_id: str) -> Alert | None:
    row = db.execute("SELECT doc FROM alerts WHERE id = %s", (alert_id,)).fetchone()
    return None if row is None else alerts.decode(row[0])
