"""What ``auditcorr doctor`` checks of a PostgreSQL store: reachable, writable, a known schema.

Only looks: the connection is read-only, so a doctor run never makes or
changes tables.
"""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg

from connectors.base import Check
from daemon.doctor.host import StoreFacts
from daemon.store import pgschema
from daemon.store.base import StoreUnavailableError
from daemon.store.postgres import connect, describe

_NAME = "store writable"


def store(dsn: str) -> tuple[Check, StoreFacts | None]:
    """The database answers, this role may write it, and its schema is one this version reads."""
    where = describe(dsn)
    try:
        with connect(dsn, readonly=True) as db:
            version = pgschema.version_of(db)
            facts = StoreFacts(version, _last_write(db) if version else None)
            allowed = _may_write(db, version)
    except StoreUnavailableError as err:
        hint = "check [store].dsn, that PostgreSQL runs and that pg_hba.conf lets this host in"
        return Check(_NAME, False, str(err), hint), None
    except psycopg.Error as err:
        return Check(_NAME, False, f"{where}: {err}", None), None
    if not allowed:
        what = "write auditcorr's tables" if version else "create tables in the database"
        hint = "GRANT the role ownership of the database (see docs/install.md)"
        return Check(_NAME, False, f"{where}: this role may not {what}", hint), facts
    latest = len(pgschema.MIGRATIONS)
    if version > latest:
        detail = f"{where}: schema {version} is newer than this auditcorr ({latest})"
        return Check(_NAME, False, detail, "install the newer auditcorr again"), facts
    if version == 0:
        return Check(_NAME, True, f"{where}: empty; its tables are made at first start"), facts
    detail = f"{where} (schema {version})"
    if version < latest:
        detail += f"; upgraded to schema {latest} at the next start"
    return Check(_NAME, True, detail), facts


def _last_write(db: psycopg.Connection) -> datetime | None:
    row = db.execute("SELECT max(updated_at) FROM checkpoints").fetchone()
    return datetime.fromtimestamp(row[0] / 1e6, UTC) if row and row[0] else None


def _may_write(db: psycopg.Connection, version: int) -> bool:
    if version:
        sql = "SELECT has_table_privilege('checkpoints', 'INSERT')"
    else:
        sql = "SELECT has_database_privilege(current_database(), 'CREATE')"
    row = db.execute(sql.encode()).fetchone()
    return bool(row and row[0])
