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
    # Change records: every version received (history) and the current one
    # per record, written in the same transaction as their timeline events.
    """
    CREATE TABLE change_versions (
        id TEXT NOT NULL,
        revision TEXT NOT NULL,
        received_at INTEGER NOT NULL,
        source TEXT NOT NULL,
        record BLOB NOT NULL,
        PRIMARY KEY (id, revision)
    ) WITHOUT ROWID;
    CREATE TABLE change_records (
        id TEXT PRIMARY KEY,
        revision TEXT NOT NULL,
        version INTEGER,
        updated INTEGER NOT NULL,
        window_start INTEGER NOT NULL,
        window_end INTEGER NOT NULL,
        state TEXT NOT NULL,
        record BLOB NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX change_records_window ON change_records(window_end, window_start);
    """,
    # alerts: one row per alert id (see store/alerts.py), upserted with the
    # events that raise or update it.
    """
    CREATE TABLE alerts (
        id TEXT PRIMARY KEY,
        rule_id TEXT NOT NULL,
        severity TEXT NOT NULL,
        first_seen INTEGER NOT NULL,
        last_seen INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        doc BLOB NOT NULL
    );
    CREATE INDEX alerts_by_time ON alerts(last_seen);
    CREATE INDEX alerts_by_rule ON alerts(rule_id, last_seen);
    """,
    # the alert outbox: one row per (alert, output) with the alert as it was
    # when raised, written in the transaction that stores the alert.
    """
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        alert_id TEXT NOT NULL,
        output TEXT NOT NULL,
        alert BLOB NOT NULL,
        state TEXT NOT NULL,
        enqueued_at INTEGER NOT NULL,
        budget_from INTEGER NOT NULL,
        due_at INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        leased INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        updated_at INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX outbox_once ON outbox(alert_id, output);
    CREATE INDEX outbox_due ON outbox(output, state, due_at);
    """,
    # events per minute and log type, kept by the writer in the same
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
    # correlation as its own stage: each write appends the detection hits of the
    # events it stored to the feed, in commit order; the correlator keeps its
    # place and its window state here, committed with the alerts they raise.
    """
    CREATE TABLE ingest_feed (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        entry BLOB NOT NULL
    );
    CREATE TABLE feed_position (
        name TEXT PRIMARY KEY,
        position INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE correlator_state (
        key TEXT PRIMARY KEY,
        value BLOB NOT NULL
    ) WITHOUT ROWID;
    """,
    # 7: events stored away from their natural key (placing.py) and, per
    # millisecond, the lowest key handed out to them.  Older auditcorr put such
    # an event on the next free key after its natural one (in the same
    # millisecond or the next), so those rows are found by their low bits.
    """
    CREATE TABLE displaced (
        home INTEGER NOT NULL,
        eid INTEGER NOT NULL,
        id INTEGER NOT NULL,
        PRIMARY KEY (home, eid)
    ) WITHOUT ROWID;
    CREATE TABLE fill_marks (
        ms INTEGER PRIMARY KEY,
        low INTEGER NOT NULL
    );
    INSERT INTO displaced (home, eid, id)
        SELECT CASE WHEN own <= id THEN own ELSE own - 1048576 END, eid, id
        FROM (SELECT id, eid, (id & ~1048575) | (eid & 1048575) AS own FROM events
              WHERE (id & 1048575) != (eid & 1048575));
    """,
    # 8: the hits correlation groups hold, apart from the other state rows, so the
    # correlator reads a group when a hit needs it and sweeps them by event time.
    """
    CREATE TABLE held_hits (
        correlation TEXT NOT NULL,
        grp TEXT NOT NULL,
        hit TEXT NOT NULL,
        at INTEGER NOT NULL,
        value BLOB NOT NULL,
        PRIMARY KEY (correlation, grp, hit)
    ) WITHOUT ROWID;
    CREATE INDEX held_hits_at ON held_hits (correlation, at);
    INSERT INTO held_hits (correlation, grp, hit, at, value)
        SELECT correlation, grp, hit,
               CAST(strftime('%s', ts) AS INTEGER) * 1000000 + CASE WHEN instr(ts, '.') > 0
                   THEN CAST(substr(rtrim(substr(ts, instr(ts, '.') + 1), 'Z') || '000000', 1, 6)
                             AS INTEGER)
                   ELSE 0 END,
               value
        FROM (SELECT json_extract(key, '$[1]') AS correlation, json_extract(key, '$[2]') AS grp,
                     json_extract(key, '$[3]') || char(31) || json_extract(key, '$[4]') AS hit,
                     json_extract(value, '$.evidence."@timestamp"') AS ts, value
              FROM correlator_state WHERE key LIKE '["window",%');
    DELETE FROM correlator_state WHERE key LIKE '["window",%';
    """,
    # 9: crowded milliseconds looked up in displaced rows alone (placing.py): the
    # milliseconds crowded, and the small table new displaced rows go to before
    # they move into displaced; displaced_all reads both (and store copies read
    # it).  Milliseconds marked before are crowded at their next collision.
    """
    CREATE TABLE crowds (ms INTEGER PRIMARY KEY);
    CREATE TABLE displaced_recent (
        home INTEGER NOT NULL,
        eid INTEGER NOT NULL,
        id INTEGER NOT NULL,
        PRIMARY KEY (home, eid)
    ) WITHOUT ROWID;
    CREATE VIEW displaced_all AS
        SELECT home, eid, id FROM displaced UNION ALL SELECT home, eid, id FROM displaced_recent;
    """,
]


class StoreUpgradeError(RuntimeError):
    """The store cannot be brought to this version's schema; it is left as it was."""


def version_of(db: sqlite3.Connection) -> int:
    """The schema version of the store; 0 for a new, empty one."""
    table = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    row = db.execute("SELECT version FROM schema_version").fetchone() if table else None
    return int(row[0]) if row else 0


def migrate(db: sqlite3.Connection) -> int:
    """Bring the schema to the latest version; returns the version found before."""
    latest = len(MIGRATIONS)
    db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    found = version_of(db)
    if found > latest:
        raise StoreUpgradeError(
            f"store schema version {found} is newer than this auditcorr ({latest}); "
            "upgrade auditcorr or restore an older store"
        )
    for version in range(found + 1, latest + 1):
        db.execute("BEGIN IMMEDIATE")
        for statement in _statements(MIGRATIONS[version - 1]):
            db.execute(statement)
        db.execute("DELETE FROM schema_version")
        db.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
        db.execute("COMMIT")
    return found


def _statements(script: str) -> list[str]:
    return [part.strip() for part in script.split(";") if part.strip()]
