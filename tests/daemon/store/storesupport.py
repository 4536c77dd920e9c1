"""Both store engines behind one small interface, so one suite tests both.

An ``Engine`` makes empty store places and opens stores at them: for SQLite
a file in a temporary folder, for PostgreSQL a schema of its own in a
database made for the test module (``auditcorr_test_<random>`` on
127.0.0.1:5432 as ``postgres``, trust auth) and dropped after it.  Under
``CI=true`` an unreachable PostgreSQL fails the tests; elsewhere they skip.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import count
from pathlib import Path
from typing import Any, Protocol

import psycopg
import pytest
from testdata import unavailable

from daemon.alert import Alert
from daemon.correlator.entries import alert_entries
from daemon.logtypes import normalize_record
from daemon.model import AuditEvent
from daemon.process import Processed, init_worker
from daemon.store import codec as codecs
from daemon.store import pgschema, schema, stored
from daemon.store.base import Store
from daemon.store.keys import event_hash, row_key
from daemon.store.postgres import PostgresStore
from daemon.store.reads import as_format
from daemon.store.sqlite import SqliteStore
from daemon.store.text import event_tags, search_text
from daemon.store.units import Round

SERVER = "host=127.0.0.1 port=5432 user=postgres connect_timeout=5"
ENGINES = ["sqlite", "postgresql"]


class Engine(Protocol):
    name: str

    def place(self) -> str:
        """A new, empty place for a store."""

    def open(self, place: str, *, retention_days: int = 0, readonly: bool = False) -> Store: ...

    def months(self, place: str) -> set[str]:
        """Months (``YYYYMM``) the store at ``place`` keeps a table of events or index for."""


class SqliteEngine:
    name = "sqlite"

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._made = count()

    def place(self) -> str:
        return str(self._folder / f"store{next(self._made)}" / "timeline.db")

    def open(self, place: str, *, retention_days: int = 0, readonly: bool = False) -> Store:
        return SqliteStore(
            Path(place),
            retention_days=retention_days,
            readonly=readonly,
            normalize=normalize_record,
        )

    def months(self, place: str) -> set[str]:
        with sqlite3.connect(place) as db:
            rows = db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name GLOB 'fts_[0-9]*'"
                " AND name NOT GLOB 'fts_*_*'"
            )
            return {name.removeprefix("fts_") for (name,) in rows}


class PostgresEngine:
    name = "postgresql"

    def __init__(self, database: str) -> None:
        self._database = database
        self._made = count()

    def place(self) -> str:
        schema = f"store{next(self._made)}"
        with psycopg.connect(self.dsn(""), autocommit=True) as db:
            db.execute(f"CREATE SCHEMA {schema}".encode())
        return self.dsn(schema)

    def dsn(self, schema: str) -> str:
        path = f" options='-c search_path={schema}'" if schema else ""
        return f"{SERVER} dbname={self._database}{path}"

    def open(self, place: str, *, retention_days: int = 0, readonly: bool = False) -> Store:
        return PostgresStore(
            place, retention_days=retention_days, readonly=readonly, normalize=normalize_record
        )

    def months(self, place: str) -> set[str]:
        with psycopg.connect(place, autocommit=True) as db:
            return pgschema.partitions(db)


def server_reachable() -> bool:
    """True when PostgreSQL answers; under CI a silent server fails the test instead."""
    try:
        with psycopg.connect(f"{SERVER} dbname=postgres"):
            return True
    except psycopg.OperationalError as err:
        if os.environ.get("CI") == "true":
            unavailable(f"PostgreSQL is not reachable on 127.0.0.1:5432: {err}")
        return False


@contextmanager
def module_database() -> Iterator[str]:
    """A fresh database for one test module, dropped after it."""
    name = f"auditcorr_test_{secrets.token_hex(6)}"
    with psycopg.connect(f"{SERVER} dbname=postgres", autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}".encode())
    try:
        yield name
    finally:
        with psycopg.connect(f"{SERVER} dbname=postgres", autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)".encode())


@contextmanager
def fresh_dsn() -> Iterator[str]:
    """The DSN of a fresh, empty database, dropped after; skips (fails under CI) without
    a server."""
    if not server_reachable():
        pytest.skip("PostgreSQL is not running on 127.0.0.1:5432")
    with module_database() as database:
        yield f"{SERVER} dbname={database}"


@contextmanager
def engine_for(name: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """The engine ``name``; skips (or fails under CI) when its server is not there."""
    if name == "sqlite":
        yield SqliteEngine(tmp_path_factory.mktemp("stores"))
        return
    if not server_reachable():
        pytest.skip("PostgreSQL is not running on 127.0.0.1:5432")
    with module_database() as database:
        yield PostgresEngine(database)


def open_for_workers(engine: Engine, place: str, *, retention_days: int = 0) -> Store:
    """A store at ``place``, with this process's decoding reading its dictionaries."""
    store = engine.open(place, retention_days=retention_days)
    init_worker(store.dictionaries())
    return store


def crafted(source: str, events: list[AuditEvent], *, key: int | None = None) -> Processed:
    """Rows built by hand; ``key`` forces every event onto the same row key."""
    out = Processed(source=source, origin="crafted")
    compress = codecs.Codecs(lambda _codec: b"").compressor(codecs.PLAIN).compress
    for event in events:
        eid = event_hash(event.id)
        out.rows.append(
            (
                key if key is not None else row_key(event.timestamp, eid),
                eid,
                codecs.PLAIN,
                compress(stored.encode("ecs", "2026-11-27T00:00:00Z", event.to_document())),
            )
        )
        out.texts.append((search_text(event), event_tags(event, source)))
    return out


# -- fixtures (imported by conftest.py, and by test modules elsewhere) ----------


@pytest.fixture(scope="module", params=ENGINES)
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    """One engine per test module and parameter (PostgreSQL: one database for the module)."""
    with engine_for(request.param, tmp_path_factory) as found:
        yield found


@pytest.fixture
def place(engine: Engine) -> str:
    """Where this test's own store lives: a fresh file or schema."""
    return engine.place()


@pytest.fixture
def store(engine: Engine, place: str) -> Iterator[Store]:
    """An empty store of this test's own, on each engine."""
    opened = open_for_workers(engine, place)
    yield opened
    opened.close()


def commit_alerts(store: Store, alerts: list[Alert]) -> None:
    """Store ``alerts`` with their timeline entries as a correlator round does."""
    position, _ = store.correlation_state()
    store.commit_round(
        Round(after=position, position=position, alerts=alerts, entries=alert_entries(alerts))
    )


@contextlib.contextmanager
def behind(engine: Engine, place: str) -> Iterator[Any]:
    """A connection of its own to the store's tables, in autocommit."""
    if engine.name == "sqlite":
        with contextlib.closing(sqlite3.connect(place, isolation_level=None)) as db:
            yield db
    else:
        with psycopg.connect(place, autocommit=True) as db:
            yield db


def run(engine: Engine, place: str, sql: str, params: Sequence[Any] = ()) -> list[Any]:
    """One statement (``?`` placeholders on both engines) on a connection of its own."""
    with behind(engine, place) as db:
        cursor = db.execute(sql if engine.name == "sqlite" else as_format(sql), params)
        return cursor.fetchall() if cursor.description else []


def open_before(engine: Engine, place: str, table: str) -> None:
    """Make the store at ``place`` as the release before the migration that creates
    ``table`` left it: every migration before that one applied (all of an engine's
    when it has no such table)."""
    with pytest.MonkeyPatch.context() as patch:
        for module in (schema, pgschema):
            scripts = module.MIGRATIONS
            made = next(
                (n for n, text in enumerate(scripts) if f"CREATE TABLE {table} (" in text),
                len(scripts),
            )
            patch.setattr(module, "MIGRATIONS", scripts[:made])
        engine.open(place).close()
