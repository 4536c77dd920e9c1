"""The alert outbox (both engines): routed rows written with the alert, leases, outcomes,
manual retries."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "delivery"))

from deliverysupport import make_alert
from schemasupport import rewind_before

from daemon.alert import Alert
from daemon.store.base import Routes, Store
from daemon.store.sqlite import SqliteStore

EVERYTHING: Routes = {"chat": lambda alert: True, "siem": lambda alert: True}


def now() -> datetime:
    return datetime.now(UTC)


def test_one_row_per_alert_and_routed_output(store: Store) -> None:
    """Each alert is queued for each output whose route takes it, and only those."""
    routes: Routes = {"chat": lambda a: a.severity == "high", "siem": lambda a: True}
    queued = store.write_alerts([make_alert(1), make_alert(2, severity="low")], routes)
    assert queued == 3
    assert store.delivery_counts() == {("chat", "pending"): 1, ("siem", "pending"): 2}


def test_requeued_alert_refreshes_pending_row_and_leaves_sent_one(store: Store) -> None:
    """The same alert id again: a pending row gets the new snapshot, a sent one stays sent."""
    alert = make_alert()
    store.write_alerts([alert], EVERYTHING)
    (chat,) = store.claim_deliveries("chat", now(), 10)
    store.mark_sent([chat.id], now())
    alert.count = 5
    store.write_alerts([alert], EVERYTHING)
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
        store.write_alerts([make_alert()], {"chat": lambda a: True, "siem": broken})
    assert store.delivery_counts() == {}


def test_leased_rows_are_claimed_once_until_released(store: Store) -> None:
    """A claim leases rows; a second claim skips them; a release (restart) hands them back."""
    store.write_alerts([make_alert(n) for n in range(3)], {"chat": lambda a: True})
    first = store.claim_deliveries("chat", now(), 2)
    assert len(first) == 2
    assert len(store.claim_deliveries("chat", now(), 10)) == 1
    assert store.claim_deliveries("chat", now(), 10) == []
    assert store.release_deliveries("chat") == 3
    assert len(store.claim_deliveries("chat", now(), 10)) == 3


def test_retry_schedules_and_counts(store: Store) -> None:
    """A retry counts the attempt, keeps the error and is not due before its time."""
    store.write_alerts([make_alert()], {"chat": lambda a: True})
    (row,) = store.claim_deliveries("chat", now(), 1)
    later = now() + timedelta(minutes=5)
    store.mark_retry([row.id], later, "HTTP 500", now())
    assert store.claim_deliveries("chat", now(), 1) == []
    assert store.next_due("chat") == pytest.approx(later, abs=timedelta(milliseconds=1))
    (again,) = store.claim_deliveries("chat", later, 1)
    assert again.attempts == 1
    assert again.last_error == "HTTP 500"


def test_failed_rows_go_back_to_pending_with_a_fresh_budget(store: Store) -> None:
    """retry_deliveries: one id or every failed row; sent rows are never touched."""
    store.write_alerts([make_alert(n) for n in range(3)], {"chat": lambda a: True})
    rows = store.claim_deliveries("chat", now(), 3)
    store.mark_failed([rows[0].id, rows[1].id], "gave up", now())
    store.mark_sent([rows[2].id], now())
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
    SqliteStore(path, retention_days=0).close()
    rewind_before(path, "outbox")
    store = SqliteStore(path, retention_days=0)
    try:
        assert store.write_alerts([make_alert()], {"chat": lambda a: True}) == 1
    finally:
        store.close()
