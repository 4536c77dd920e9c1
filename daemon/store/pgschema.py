"""PostgreSQL schema, its forward migrations and the events table's monthly partitions.

The same tables as the SQLite store (``schema.py``), the same rules: each
migration runs once, in order, in a transaction; ``schema_version`` records
the last one applied; never edit a released migration, add one.  Times are
microseconds since the epoch and event rows are keyed as in ``keys.py``, so
both engines share everything that is not SQL.

The events table is partitioned by month on its row key (the key starts with
the event time), so retention drops whole months, and the key (the unique
constraint) holds the partition column: an event's time never changes, so its
key always lands in the same partition.
"""

from __future__ import annotations

import psycopg

from daemon.store.keys import month_span
from daemon.store.schema import StoreUpgradeError

MIGRATIONS: list[str] = [
    # 1: every table of SQLite's migrations 1-5 in their current form.  The
    # full-text and field index is one tsvector column (search.py) under GIN.
    """
    CREATE TABLE events (
        id bigint NOT NULL,
        eid bigint NOT NULL,
        source text NOT NULL,
        codec integer NOT NULL,
        doc bytea NOT NULL,
        search tsvector NOT NULL,
        PRIMARY KEY (id)
    ) PARTITION BY RANGE (id);
    CREATE INDEX events_search ON events USING gin (search);
    CREATE TABLE checkpoints (
        source text NOT NULL,
        key text NOT NULL,
        value bytea NOT NULL,
        updated_at bigint NOT NULL,
        PRIMARY KEY (source, key)
    );
    CREATE TABLE quarantine (
        id bigserial PRIMARY KEY,
        at bigint NOT NULL,
        source text NOT NULL,
        origin text NOT NULL,
        position bigint,
        reason text NOT NULL,
        raw bytea NOT NULL,
        raw_size bigint NOT NULL
    );
    CREATE UNIQUE INDEX quarantine_once
        ON quarantine (source, origin, coalesce(position, -1), reason);
    CREATE TABLE codecs (
        id serial PRIMARY KEY,
        created_at bigint NOT NULL,
        data bytea NOT NULL
    );
    CREATE TABLE change_versions (
        id text NOT NULL,
        revision text NOT NULL,
        received_at bigint NOT NULL,
        source text NOT NULL,
        record bytea NOT NULL,
        PRIMARY KEY (id, revision)
    );
    CREATE TABLE change_records (
        id text PRIMARY KEY,
        revision text NOT NULL,
        version bigint,
        updated bigint NOT NULL,
        window_start bigint NOT NULL,
        window_end bigint NOT NULL,
        state text NOT NULL,
        record bytea NOT NULL
    );
    CREATE INDEX change_records_window ON change_records (window_end, window_start);
    CREATE TABLE alerts (
        id text PRIMARY KEY,
        rule_id text NOT NULL,
        severity text NOT NULL,
        first_seen bigint NOT NULL,
        last_seen bigint NOT NULL,
        updated_at bigint NOT NULL,
        doc bytea NOT NULL
    );
    CREATE INDEX alerts_by_time ON alerts (last_seen);
    CREATE INDEX alerts_by_rule ON alerts (rule_id, last_seen);
    CREATE TABLE outbox (
        id bigserial PRIMARY KEY,
        alert_id text NOT NULL,
        output text NOT NULL,
        alert bytea NOT NULL,
        state text NOT NULL,
        enqueued_at bigint NOT NULL,
        budget_from bigint NOT NULL,
        due_at bigint NOT NULL,
        attempts integer NOT NULL DEFAULT 0,
        leased integer NOT NULL DEFAULT 0,
        last_error text,
        updated_at bigint NOT NULL
    );
    CREATE UNIQUE INDEX outbox_once ON outbox (alert_id, output);
    CREATE INDEX outbox_due ON outbox (output, state, due_at);
    CREATE TABLE minute_counts (
        minute bigint NOT NULL,
        log_type text NOT NULL,
        count bigint NOT NULL,
        PRIMARY KEY (minute, log_type)
    );
    """,
    # 2: several daemons on one store (daemon/cluster): the commit-order feed
    # the correlator reads, its place in it, the members' heartbeats, and
    # outbox leases that name their holder and expire.
    """
    CREATE TABLE ingest_feed (
        seq bigserial PRIMARY KEY,
        member text NOT NULL,
        at bigint NOT NULL,
        entry bytea NOT NULL
    );
    CREATE TABLE cluster_state (
        name text PRIMARY KEY,
        position bigint NOT NULL
    );
    CREATE TABLE members (
        member text PRIMARY KEY,
        host text NOT NULL,
        pid integer NOT NULL,
        started bigint NOT NULL,
        last_seen bigint NOT NULL,
        is_leader boolean NOT NULL,
        sources bytea NOT NULL
    );
    ALTER TABLE outbox ADD COLUMN leased_by text, ADD COLUMN lease_until bigint;
    """,
    # correlation as its own stage, the same on every engine: every write (not
    # only a cluster member's) appends the hits of the events it stored; the
    # correlator's window state is committed with its place.  Feed rows of the
    # earlier format (hits and change records) are dropped.
    """
    CREATE TABLE correlator_state (
        key text PRIMARY KEY,
        value bytea NOT NULL
    );
    DELETE FROM ingest_feed;
    """,
    # 4: SQLite's migration 7: events stored away from their natural key
    # (placing.py), the lowest key handed out per millisecond, and the rows
    # older auditcorr put on the next free key after their natural one.
    """
    CREATE TABLE displaced (
        home bigint NOT NULL,
        eid bigint NOT NULL,
        id bigint NOT NULL,
        PRIMARY KEY (home, eid)
    );
    CREATE TABLE fill_marks (
        ms bigint PRIMARY KEY,
        low bigint NOT NULL
    );
    INSERT INTO displaced (home, eid, id)
        SELECT CASE WHEN own <= id THEN own ELSE own - 1048576 END, eid, id
        FROM (SELECT id, eid, (id & ~1048575::bigint) | (eid & 1048575) AS own FROM events
              WHERE (id & 1048575) != (eid & 1048575)) AS moved;
    """,
    # 5: SQLite's migration 8: the hits correlation groups hold, apart from the
    # other state rows, read by group and swept by event time.
    """
    CREATE TABLE held_hits (
        correlation text NOT NULL,
        grp text NOT NULL,
        hit text NOT NULL,
        at bigint NOT NULL,
        value bytea NOT NULL,
        PRIMARY KEY (correlation, grp, hit)
    );
    CREATE INDEX held_hits_at ON held_hits (correlation, at);
    INSERT INTO held_hits (correlation, grp, hit, at, value)
        SELECT name ->> 1, name ->> 2, (name ->> 3) || chr(31) || (name ->> 4),
               (extract(epoch FROM (convert_from(value, 'UTF8')::jsonb
                                    -> 'evidence' ->> '@timestamp')::timestamptz)
                * 1000000)::bigint,
               value
        FROM (SELECT key::jsonb AS name, value FROM correlator_state
              WHERE key LIKE '["window",%') AS windows;
    DELETE FROM correlator_state WHERE key LIKE '["window",%';
    """,
    # 6: SQLite's migration 9: the displaced rows as store copies read them
    # (SQLite keeps its newest ones in a second table, placing.py); PostgreSQL
    # has one table.
    """
    CREATE VIEW displaced_all AS SELECT home, eid, id FROM displaced;
    """,
]

_MIGRATION_LOCK = 0x61756469  # "audi": one daemon migrates at a time
_PARTITION_LOCK = 0x61756470  # "audp": one daemon makes a month's partition at a time
_PARTITION = "events_"


def version_of(db: psycopg.Connection) -> int:
    """The schema version of the database; 0 for one without auditcorr's tables."""
    exists = db.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return 0
    row = db.execute("SELECT version FROM schema_version").fetchone()
    return int(row[0]) if row else 0


def migrate(db: psycopg.Connection) -> int:
    """Bring the schema to the latest version; returns the version found before.

    Daemons starting together against one database take turns: the first
    migrates, the others find it done.
    """
    latest = len(MIGRATIONS)
    with db.transaction():
        db.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        db.execute("CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)")
        found = version_of(db)
        if found > latest:
            raise StoreUpgradeError(
                f"store schema version {found} is newer than this auditcorr ({latest}); "
                "upgrade auditcorr or restore an older store"
            )
        for version in range(found + 1, latest + 1):
            db.execute(MIGRATIONS[version - 1].encode())
            db.execute("DELETE FROM schema_version")
            db.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))
    return found


def partitions(db: psycopg.Connection) -> set[str]:
    """Months (``YYYYMM``) that have a partition of the events table."""
    rows = db.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'events'::regclass"
    )
    return {name.removeprefix(_PARTITION) for (name,) in rows}


def create_partition(db: psycopg.Connection, key: int) -> str:
    """Make the partition of the month that holds row key ``key``; returns the month."""
    month, low, high = month_span(key)
    # IF NOT EXISTS is no guard against another daemon creating the same month
    # at the same moment: they take turns (until the caller's commit).
    db.execute("SELECT pg_advisory_xact_lock(%s)", (_PARTITION_LOCK,))
    db.execute(
        f"CREATE TABLE IF NOT EXISTS {_PARTITION}{month} PARTITION OF events"
        f" FOR VALUES FROM ({low}) TO ({high + 1})"
    )
    return month


def drop_partition(db: psycopg.Connection, month: str) -> int:
    """Drop one month of events; returns how many it held."""
    table = f"{_PARTITION}{int(month):06d}"
    row = db.execute(f"SELECT count(*) FROM {table}").fetchone()
    db.execute(f"DROP TABLE {table}")
    return int(row[0]) if row else 0
