"""The alert outbox (both engines): routed rows written with the alert, leases, outcomes,
manual retries."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "delivery"))

from deliverysupport import make_alert
from schemasupport import rewind_before

from daemon.alert import Alert
from daemon.logtypes import normalize_record
from daemon.routing import Routes, routed
from daemon.store.base import Delivery, Outcome, Store
from daemon.store.sqlite import SqliteStore

EVERYTHING: Routes = {"chat": lambda alert: True, "siem": lambda alert: True}


def now() -> datetime:
    return datetime.now(UTC)


def lease(store: Store, output: str, at: datetime, limit: int) -> list[Delivery]:
    return store.delivery_round([], {output: limit}, at).leased.get(output, [])


def record(store: Store, *outcomes: Outcome) -> None:
    assert store.delivery_round(outcomes, {}, now()).leased == {}


def test_one_row_per_alert_and_routed_output(store: Store) -> None:
    """Each alert is queued for each output whose route takes it, and only those."""
    routes: Routes = {"chat": lambda a: a.severity == "high", "siem": lambda a: True}
    queued = store.write_alerts(routed([make_alert(1), make_alert(2, severity="low")], routes))
    assert queued == 3
    assert store.delivery_counts() == {("chat", "pending"): 1, ("siem", "pending"): 2}


def test_requeued_alert_refreshes_pending_row_and_leaves_sent_one(store: Store) -> None:
    """The same alert id again: a pending row gets the new snapshot, a sent one stays sent."""
    alert = make_alert()
    store.write_alerts(routed([alert], EVERYTHING))
    (chat,) = lease(store, "chat", now(), 10)
    record(store, Outcome((chat.id,), "sent", now()))
    alert.count = 5
    store.write_alerts(routed([alert], EVERYTHING))
    (siem,) = store.deliveries("pending")
    assert siem.output == "siem"
    assert siem.alert["count"] == 5
    (sent,) = store.deliveries("sent")
    assert sent.alert["count"] == 1


def test_a_failed_write_queues_nothing(store: Store) -> None:
    """A route that raises rolls the whole transaction back."""

    def broken(alert: Alert) -> bool:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        store.write_alerts(routed([make_alert()], {"chat": lambda a: True, "siem": broken}))
    assert store.delivery_counts() == {}


def test_leased_rows_are_claimed_once_until_released(store: Store) -> None:
    """A round leases rows; the next skips them; a release (restart) hands them back."""
    store.write_alerts(routed([make_alert(n) for n in range(3)], {"chat": lambda a: True}))
    first = lease(store, "chat", now(), 2)
    assert len(first) == 2
    assert len(lease(store, "chat", now(), 10)) == 1
    assert lease(store, "chat", now(), 10) == []
    assert store.release_deliveries("chat") == 3
    assert len(lease(store, "chat", now(), 10)) == 3


def test_one_round_leases_for_every_output_and_records_outcomes_first(
    store: Store,
) -> None:
    """Outcomes are stored before the lease: a row handed back as held is leased again."""
    store.write_alerts(routed([make_alert(n) for n in range(3)], EVERYTHING))
    first = store.delivery_round([], {"chat": 2, "siem": 1}, now())
    assert {name: len(rows) for name, rows in first.leased.items()} == {"chat": 2, "siem": 1}
    assert first.next_due is not None  # the third chat row is due and unleased
    chat = first.leased["chat"]
    at = now()
    second = store.delivery_round(
        [Outcome((chat[0].id,), "sent", at), Outcome((chat[1].id,), "held", at, at)],
        {"chat": 10, "siem": 10},
        at,
    )
    (third,) = (
        row.id
        for row in store.deliveries("pending", output="chat")
        if row.id not in {chat[0].id, chat[1].id}
    )
    assert sorted(row.id for row in second.leased["chat"]) == sorted([chat[1].id, third])
    assert len(second.leased["siem"]) == 2
    assert second.next_due is None
    assert store.delivery_counts()[("chat", "sent")] == 1


def test_retry_schedules_and_counts(store: Store) -> None:
    """A retry counts the attempt, keeps the error and is not due before its time."""
    store.write_alerts(routed([make_alert()], {"chat": lambda a: True}))
    (row,) = lease(store, "chat", now(), 1)
    later = now() + timedelta(minutes=5)
    record(store, Outcome((row.id,), "retry", now(), later, "HTTP 500"))
    nothing = store.delivery_round([], {"chat": 1}, now())
    assert nothing.leased == {}
    assert nothing.next_due == pytest.approx(later, abs=timedelta(milliseconds=1))
    (again,) = lease(store, "chat", later, 1)
    assert again.attempts == 1
    assert again.last_error == "HTTP 500"


def test_failed_rows_go_back_to_pending_with_a_fresh_budget(store: Store) -> None:
    """retry_deliveries: one id or every failed row; sent rows are never touched."""
    store.write_alerts(routed([make_alert(n) for n in range(3)], {"chat": lambda a: True}))
    rows = lease(store, "chat", now(), 3)
    record(
        store,
        Outcome((rows[0].id, rows[1].id), "failed", now(), error="gave up"),
        Outcome((rows[2].id,), "sent", now()),
    )
    assert store.retry_deliveries([rows[0].id], now()) == 1
    assert store.retry_deliveries(None, now()) == 1
    assert store.retry_deliveries(None, now()) == 0
    pending = store.deliveries("pending")
    assert [row.attempts for row in pending] == [0, 0]
    assert all(row.budget_from > rows[0].budget_from for row in pending)
    assert len(store.deliveries("sent")) == 1


def test_outbox_table_comes_with_the_migration(tmp_path: Path) -> None:
    """SQLite only: a store made before the outbox existed gains the table on open, data intact."""
    path = tmp_path / "old.db"
    SqliteStore(path, retention_days=0, normalize=normalize_record).close()
    rewind_before(path, "outbox")
    store = SqliteStore(path, retention_days=0, normalize=normalize_record)
    try:
        assert store.write_alerts(routed([make_alert()], {"chat": lambda a: True})) == 1
    finally:
        store.close()
