"""``auditcorr doctor``'s check of a PostgreSQL store: reachable, writable, a known schema."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "store"))

from storesupport import fresh_dsn

from daemon.doctor import postgres
from daemon.logtypes import normalize_record
from daemon.store import pgschema
from daemon.store.postgres import PostgresStore


@pytest.fixture
def dsn() -> Iterator[str]:
    with fresh_dsn() as found:
        yield found


def test_empty_database_passes_and_is_left_empty(dsn: str) -> None:
    """A database without auditcorr's tables passes (they are made at first start) and
    the check makes none."""
    check, facts = postgres.store(dsn)
    assert check.ok, check.detail
    assert "made at first start" in check.detail
    assert facts is not None
    assert facts.version == 0
    with psycopg.connect(dsn) as db:
        assert pgschema.version_of(db) == 0


def test_store_at_current_schema_passes(dsn: str) -> None:
    """A store the daemon made passes and reports its schema."""
    PostgresStore(dsn, retention_days=0, normalize=normalize_record).close()
    check, facts = postgres.store(dsn)
    assert check.ok, check.detail
    assert f"schema {len(pgschema.MIGRATIONS)}" in check.detail
    assert facts is not None
    assert facts.last_write is None


def test_store_of_a_newer_auditcorr_fails(dsn: str) -> None:
    """A schema from a newer release is refused, as the daemon would refuse it."""
    PostgresStore(dsn, retention_days=0, normalize=normalize_record).close()
    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute("UPDATE schema_version SET version = 99")
    check, _ = postgres.store(dsn)
    assert not check.ok
    assert "newer than this auditcorr" in check.detail


def test_unreachable_server_fails_with_a_hint() -> None:
    """No server on the port: the check fails, names the address and says what to look at."""
    check, facts = postgres.store("host=127.0.0.1 port=1 user=postgres dbname=x")
    assert not check.ok
    assert "port=1" in check.detail
    assert check.hint is not None
    assert "[store].dsn" in check.hint
    assert facts is None
