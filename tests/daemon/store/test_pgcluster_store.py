"""What the PostgreSQL store does for a cluster: the commit-order feed of hits, the
correlator's place in it, and outbox leases that name their holder and expire."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from storesupport import PostgresEngine, engine_for

sys.path.insert(0, str(Path(__file__).parents[2] / "delivery"))
sys.path.insert(0, str(Path(__file__).parents[1] / "cluster"))

from clustersupport import make_hit
from deliverysupport import make_alert

from daemon.cluster import entries
from daemon.process import Processed
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


def _open(place: str, member: str, *, feeds: bool = False) -> PostgresStore:
    return PostgresStore(place, retention_days=0, member=member, feeds=feeds)


def test_writes_with_hits_feed_the_correlator_in_commit_order(place: str) -> None:
    """Each member write that holds hits adds one feed row, numbered in commit order;
    a write without hits adds none, and a store that does not feed adds none."""
    one, two, plain = (
        _open(place, "one", feeds=True),
        _open(place, "two", feeds=True),
        _open(place, "plain"),
    )
    try:
        one.write([Processed("syslog_a", "a.log", hits=[make_hit("a", 1)])])
        two.write([Processed("syslog_b", "b.log")])
        two.write([Processed("syslog_b", "b.log", hits=[make_hit("b", 2), make_hit("b", 3)])])
        plain.write([Processed("syslog_c", "c.log", hits=[make_hit("c", 4)])])
        rows = one.feed_after(0, 10)
        assert [len(entries.decode(entry)[0]) for _, entry in rows] == [1, 2]
        assert rows[0][0] < rows[1][0]
        assert one.feed_after(rows[0][0], 10) == rows[1:]
    finally:
        for store in (one, two, plain):
            store.close()


def test_the_correlator_place_moves_only_forward_and_pruning_keeps_what_is_ahead(
    place: str,
) -> None:
    """The stored place never goes back (a stale leader cannot undo its successor), and
    pruning drops only the rows at or before it."""
    store = _open(place, "one", feeds=True)
    try:
        for n in range(3):
            store.write([Processed("syslog_a", "a.log", hits=[make_hit("a", n)])])
        seqs = [seq for seq, _ in store.feed_after(0, 10)]
        store.write([], [], position=seqs[1])
        store.write([], [], position=seqs[0])
        assert store.feed_position() == seqs[1]
        assert store.prune_feed() == 2
        assert [seq for seq, _ in store.feed_after(0, 10)] == seqs[2:]
    finally:
        store.close()


def test_a_member_lifts_only_its_own_leases_and_takes_over_expired_ones(place: str) -> None:
    """Leases name their holder: a restarting member releases its own rows, not another
    member's in-flight ones; a lease left by a member that died is taken after it expires."""
    a, b = _open(place, "a"), _open(place, "b")
    routes = {"chat": lambda alert: True}
    try:
        a.write_alerts([make_alert(1), make_alert(2)], routes)
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
