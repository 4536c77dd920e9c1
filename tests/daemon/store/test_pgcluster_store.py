"""What the PostgreSQL store does for a cluster: one commit-order feed across members,
and outbox leases that name their holder and expire."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import psycopg
import pytest
from storesupport import PostgresEngine, engine_for

sys.path.insert(0, str(Path(__file__).parents[1] / "delivery"))

from deliverysupport import make_alert
from test_feed import fed

from daemon.logtypes import normalize_record
from daemon.routing import routed
from daemon.store.pgoutbox import LEASE_SECS
from daemon.store.postgres import PostgresStore


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresEngine]:
    with engine_for("postgresql", tmp_path_factory) as found:
        assert isinstance(found, PostgresEngine)
        yield found


@pytest.fixture
def place(postgres: PostgresEngine) -> str:
    return postgres.place()


def _open(place: str, member: str) -> PostgresStore:
    return PostgresStore(place, retention_days=0, member=member, normalize=normalize_record)


def test_members_writes_feed_the_correlator_in_commit_order(place: str) -> None:
    """Each member's write with hits adds one feed row, numbered in commit order across
    members, and tagged with the member that wrote it."""
    one, two = _open(place, "one"), _open(place, "two")
    try:
        one.write([fed("syslog_a", 1)])
        two.write([fed("syslog_b", 2, 3)])
        rows = one.feed_after(0, 10)
        assert [[item["n"] for item in orjson.loads(entry)] for _, entry in rows] == [[1], [2, 3]]
        with psycopg.connect(place) as db:
            members = db.execute("SELECT member FROM ingest_feed ORDER BY seq").fetchall()
        assert members == [("one",), ("two",)]
    finally:
        one.close()
        two.close()


def test_a_member_lifts_only_its_own_leases_and_takes_over_expired_ones(place: str) -> None:
    """Leases name their holder: a restarting member releases its own rows, not another
    member's in-flight ones; a lease left by a member that died is taken after it expires."""
    a, b = _open(place, "a"), _open(place, "b")
    routes = {"chat": lambda alert: True}
    try:
        a.write_alerts(routed([make_alert(1), make_alert(2)], routes))
        now = datetime.now(UTC)
        held_by_a = a.delivery_round([], {"chat": 1}, now).leased["chat"]
        held_by_b = b.delivery_round([], {"chat": 5}, now).leased["chat"]
        assert {row.id for row in held_by_a}.isdisjoint(row.id for row in held_by_b)
        assert b.release_deliveries("chat") == 1
        assert b.delivery_round([], {"chat": 5}, now).leased["chat"] == held_by_b
        assert b.delivery_round([], {"chat": 5}, now).leased == {}
        later = now + timedelta(seconds=LEASE_SECS + 1)
        taken = b.delivery_round([], {"chat": 5}, later).leased["chat"]
        assert {row.id for row in taken} == {row.id for row in held_by_a + held_by_b}
        with psycopg.connect(place) as db:
            holders = db.execute("SELECT DISTINCT leased_by FROM outbox").fetchall()
        assert holders == [("b",)]
    finally:
        a.close()
        b.close()
