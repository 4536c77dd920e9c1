"""Writing the alerts table in PostgreSQL: the statement of ``alerts.py``, run by psycopg."""

from __future__ import annotations

from collections.abc import Sequence

import psycopg

from daemon.alert import Alert
from daemon.store import alerts
from daemon.store.reads import as_format

_UPSERT = as_format(alerts.UPSERT)


def upsert(db: psycopg.Connection, found: Sequence[Alert], now_us: int) -> None:
    """Insert new alerts and replace updated ones; call inside the write transaction."""
    with db.cursor() as cursor:
        cursor.executemany(_UPSERT, alerts.upsert_rows(found, now_us))
