"""SQLite schema and its forward migrations.

Each migration runs once, in order, inside a transaction; ``schema_version``
records the last one applied.  Never edit a released migration: add one.
"""

from __future__ import annotations

import sqlite3

MIGRATIONS: list[str] = [
    # 1: events keyed by time (see keys.py), checkpoints, quarantine,
    # compression dictionaries.  The full-text and field indexes are per-month
    # FTS5 tables made on demand (fts_YYYYMM), so retention drops them whole.
    """
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        eid INTEGER NOT NULL,
        source TEXT NOT NULL,
        codec INTEGER NOT NULL,
        doc BLOB NOT NULL
    );
    CREATE TABLE checkpoints (
        source TEXT NOT NULL,
        key TEXT NOT NULL,
        value BLOB NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (source, key)
    ) WITHOUT ROWID;
    CREATE TABLE quarantine (
        id INTEGER PRIMARY KEY,
        at INTEGER NOT NULL,
        source TEXT NOT NULL,
        origin TEXT NOT NULL,
        position INTEGER,
        reason TEXT NOT NULL,
        raw BLOB NOT NULL,
        raw_size INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX quarantine_once
        ON quarantine(source, origin, ifnull(position, -1), reason);
    CREATE TABLE codecs (
        id INTEGER PRIMARY KEY,
        created_at INTEGER NOT NULL,
        data BLOB NOT NULL
    );
    """,
    # 2 (api): events per minute and log type, kept by the writer in the same
    # transaction, so the timeline histogram reads a few thousand rows instead
    # of every event.  Stores made before it held CloudTrail only, so their
    # events are counted as such.
    """
    CREATE TABLE minute_counts (
        minute INTEGER NOT NULL,
        log_type TEXT NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (minute, log_type)
    ) WITHOUT ROWID;
    INSERT INTO minute_counts (minute, log_type, count)
        SELECT (id >> 20) / 60000, 'cloudtrail', count(*) FROM events GROUP BY 1;
    """,
]

LATEST = len(MIGRATIONS)


def migrate(db: sqlite3.Connection) -> int:
    """Bring the schema to the latest version; returns the version found before."""
    db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = db.execute("SELECT version FROM schema_version").fetchone()
    found = int(row[0]) if row else 0
    if found > LATEST:
        raise RuntimeError(
            f"store schema version {found} is newer than this auditcorr ({LATEST}); "
            "upgrade auditcorr or restore an older store"
        )
    for version in range(found + 1, LATEST + 1):
        db.execute("BEGIN IMMEDIATE")
        for statement in _statements(MIGRATIONS[version - 1]):
            db.execute(statement)
        db.execute("DELETE FROM schema_version")
        db.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
        db.execute("COMMIT")
    return found


def _statements(script: str) -> list[str]:
    return [part.strip() for part in script.split(";") if part.strip()]
