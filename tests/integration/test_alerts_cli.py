"""``auditcorr alerts``, and delivery by ``run`` and ``backfill``, on a store with queued alerts.

Until the correlator raises alerts, the store is filled through its own API
(``write_alerts``) before the CLI runs, as a previous daemon would have left it.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from itsupport import Daemon, Workspace

sys.path.insert(0, str(Path(__file__).parents[1] / "daemon" / "delivery"))

from deliverysupport import Receiver, hang, make_alert, wait_until

from daemon.alert import Alert
from daemon.logtypes import normalize_record
from daemon.routing import routed
from daemon.store.base import Outcome
from daemon.store.sqlite import SqliteStore

pytestmark = pytest.mark.integration

StartDaemon = Callable[[Workspace, str], Daemon]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with Receiver() as running:
        yield running


def configure(workspace: Workspace, endpoint: str) -> None:
    workspace.write_config()
    with workspace.config.open("a") as config:
        config.write(
            f'\n[outputs.hook]\ntype = "webhook"\nendpoint = "{endpoint}"\ntimeout_secs = 2\n'
        )


def fill(workspace: Workspace, alerts: list[Alert], *, failed: int = 0) -> SqliteStore:
    """Queue ``alerts`` for the ``hook`` output; the first ``failed`` of them end failed."""
    store = SqliteStore(workspace.db, retention_days=0, normalize=normalize_record)
    store.write_alerts(routed(alerts, {"hook": lambda alert: True}))
    now = datetime.now(UTC)
    rows = store.delivery_round([], {"hook": failed}, now).leased.get("hook", [])
    gave_up = Outcome(tuple(row.id for row in rows), "failed", now, error="HTTP 500: broken")
    store.delivery_round([gave_up], {}, now)
    store.release_deliveries("hook")
    return store


def test_pending_and_failed_are_listed_and_retried(workspace: Workspace) -> None:
    """--pending and --failed list rows with the last error; retry ID and --all-failed requeue."""
    configure(workspace, "http://127.0.0.1:9/hook")
    store = fill(workspace, [make_alert(n) for n in range(4)], failed=2)
    store.close()
    pending = workspace.cli("alerts", "--pending")
    assert pending.returncode == 0, str(pending)
    assert "pending per output: hook=2" in pending.stdout
    failed = workspace.cli("alerts", "--failed", "--json")
    rows = [orjson.loads(line) for line in failed.stdout.splitlines()]
    assert [row["state"] for row in rows] == ["failed", "failed"]
    assert rows[0]["last_error"] == "HTTP 500: broken"
    listed = workspace.cli("alerts", "--failed")
    assert f"#{rows[0]['id']} [hook] failed" in listed.stdout
    assert "last error: HTTP 500: broken" in listed.stdout
    again = workspace.cli("alerts", "retry", str(rows[0]["id"]))
    assert again.returncode == 0, str(again)
    assert "1 delivery queued again" in again.stdout
    assert workspace.cli("alerts", "retry", str(rows[0]["id"])).returncode == 1
    assert "1 delivery queued again" in workspace.cli("alerts", "retry", "--all-failed").stdout
    assert "pending per output: hook=4" in workspace.cli("alerts", "--pending").stdout


async def test_daemon_killed_with_pending_rows_delivers_them_after_restart(
    workspace: Workspace, daemons: StartDaemon, receiver: Receiver
) -> None:
    """kill -9 while sends hang; the restarted daemon delivers every queued alert, each once."""
    configure(workspace, receiver.url)
    alerts = [make_alert(n) for n in range(6)]
    fill(workspace, alerts).close()
    receiver.script = [hang(60)] * 4
    first = daemons(workspace, "first")
    await wait_until(lambda: receiver.in_flight == 4, within_secs=60)
    first.signal(signal.SIGKILL)
    await asyncio.to_thread(first.proc.wait)  # type: ignore[union-attr]
    receiver.script = []
    second = daemons(workspace, "second")
    await receiver.wait_for(6, within_secs=60)
    assert await asyncio.to_thread(second.stop) == 0
    keys = [r.headers["Idempotency-Key"] for r in receiver.accepted]
    assert sorted(keys) == sorted(alert.id for alert in alerts)
    assert second.events("deliveries_resumed")


async def test_backfill_delivers_queued_alerts_unless_told_not_to(
    workspace: Workspace, receiver: Receiver
) -> None:
    """--no-deliver leaves the outbox alone; a plain backfill drains it and says so."""
    configure(workspace, receiver.url)
    fill(workspace, [make_alert(n) for n in range(3)]).close()
    kept = await asyncio.to_thread(workspace.backfill, "--no-deliver")
    assert kept.returncode == 0, str(kept)
    assert receiver.requests == []
    assert "undelivered" not in kept.summary
    drained = await asyncio.to_thread(workspace.backfill)
    assert drained.returncode == 0, str(drained)
    assert drained.summary["undelivered"] == 0
    assert len(receiver.accepted) == 3
