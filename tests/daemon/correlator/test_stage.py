"""The correlator stage over a real store (both engines): the feed read in commit order,
state and alerts committed together, a restart that continues, a second correlator that
cannot commit over the first, and the review of a change record that closes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from storesupport import Engine

from connectors.base import RawBatch
from connectors.syslog.batch import header
from daemon.changes.closing import REVIEW_RULE
from daemon.correlator.stage import CorrelatorStage
from daemon.identity import build
from daemon.normalize import Limits
from daemon.process import Job, Processed, init_worker, process
from daemon.rules.engine import RuleEngine
from daemon.rules.unapproved import Approvals
from daemon.store.base import CorrelationLog, Store

IDENTITIES = build([{"id": "alice", "unix": ["alice"]}])
T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def syslog(*lines: str) -> RawBatch:
    """Syslog lines as a listener hands them over, received just after T0."""
    received = int((T0 + timedelta(minutes=5)).timestamp()) * 10**9
    body = header(received, "UTC") + "\n".join(lines).encode()
    return RawBatch("syslog", "tcp://bastion", body)


def failure(n: int) -> str:
    at = T0 + timedelta(seconds=10 * n)
    return (
        f"<38>{at:%b %d %H:%M:%S} bastion sshd[{n}]: Failed password for u{n}"
        f" from 203.0.113.9 port {4000 + n} ssh2"
    )


def batch(store: Store, raw: RawBatch, source: str = "auth") -> Processed:
    job = Job(source, raw, store.codec, Limits())
    return process(job)


def stage(engine: Engine, place: str, raised: list[Any]) -> CorrelatorStage:
    def engine_for(log: CorrelationLog) -> RuleEngine:
        rules = RuleEngine.load(["builtin"])
        rules.approvals = Approvals(
            lambda since, until: log.change_records(since=since, until=until), IDENTITIES
        )
        return rules

    return CorrelatorStage(
        lambda: engine.open(place),
        engine_for,
        lambda: {"chat": lambda alert: True},
        raised.extend,
    )


@pytest.fixture(autouse=True)
def _workers(store: Store) -> None:
    init_worker(store.dictionaries(), rule_paths=("builtin",))


async def test_a_window_spans_rounds_and_restarts_and_counts_each_event_once(
    store: Store, engine: Engine, place: str
) -> None:
    """Three failures, a correlator that stops, a read again of the same lines, two more:
    one ssh_brute_force alert counting five, queued once for the output."""
    raised: list[Any] = []
    store.write([batch(store, syslog(*(failure(n) for n in range(3))))])
    first = stage(engine, place, raised)
    assert await first.drain()
    await first.close()
    assert raised == []
    store.write([batch(store, syslog(*(failure(n) for n in range(3))))])  # read again
    store.write([batch(store, syslog(*(failure(n) for n in range(3, 5))))])
    second = stage(engine, place, raised)
    assert await second.drain()
    await second.close()
    (alert,) = [a for a in store.alerts() if a.rule_id == "ssh_brute_force"]
    assert alert.count == 5
    assert [row.output for row in store.alert_deliveries(alert.id)] == ["chat"]
    assert [a.id for a in raised if a.rule_id == "ssh_brute_force"] == [alert.id]


def change(state: str, updated: str) -> dict[str, Any]:
    return {
        "id": "CHG0031001",
        "title": "Stop and start the batch host",
        "state": state,
        "requested_by": "dave",
        "implementers": ["alice"],
        "window": {"start": "2026-11-20T09:00:00Z", "end": "2026-11-20T09:30:00Z"},
        "scope": {"hosts": ["bastion"]},
        "updated": updated,
    }


def changes(*records: dict[str, Any]) -> RawBatch:
    return RawBatch("change", "changes/chg.json", orjson.dumps(list(records)))


async def test_a_record_that_closes_is_reviewed_once_as_an_alert(
    store: Store, engine: Engine, place: str
) -> None:
    """approved, then completed after its window: one change_review alert, routed like
    any alert; the same versions read again, or a restart, review nothing twice.  A
    record first seen closed is not reviewed."""
    raised: list[Any] = []
    store.write([batch(store, changes(change("approved", "2026-11-19T12:00:00Z")), "itsm")])
    store.write([batch(store, changes(change("completed", "2026-11-20T09:40:00Z")), "itsm")])
    first = stage(engine, place, raised)
    assert await first.drain()
    await first.close()
    (review,) = [a for a in store.alerts() if a.rule_id == REVIEW_RULE]
    assert review.tags == ["change_review.not_executed"]
    assert [row.output for row in store.alert_deliveries(review.id)] == ["chat"]
    store.write([batch(store, changes(change("completed", "2026-11-20T09:40:00Z")), "itsm")])
    closed_at_once = {**change("cancelled", "2026-11-19T08:00:00Z"), "id": "CHG0031002"}
    store.write([batch(store, changes(closed_at_once), "itsm")])
    second = stage(engine, place, raised)
    assert await second.drain()
    await second.close()
    assert [a.id for a in store.alerts() if a.rule_id == REVIEW_RULE] == [review.id]
    assert [a.id for a in raised if a.rule_id == REVIEW_RULE] == [review.id]


def accepted(user: str, at: datetime) -> str:
    return (
        f"<38>{at:%b %d %H:%M:%S} bastion sshd[7]: Accepted password for {user}"
        f" from 10.0.0.5 port 4100 ssh2"
    )


async def test_what_new_terms_rules_learned_survives_a_restart(
    store: Store, engine: Engine, place: str
) -> None:
    """Learning since carol's login 15 days back and alice's three days back are committed;
    after a restart alice's login is known and only bob's, new on the host, raises
    first_login_on_host."""
    raised: list[Any] = []
    history = [
        accepted("carol", T0 - timedelta(days=15)),
        accepted("alice", T0 - timedelta(days=3)),
    ]
    store.write([batch(store, syslog(*history))])
    first = stage(engine, place, raised)
    assert await first.drain()
    await first.close()
    store.write([batch(store, syslog(accepted("alice", T0), accepted("bob", T0)))])
    second = stage(engine, place, raised)
    assert await second.drain()
    await second.close()
    found = [a for a in store.alerts() if a.rule_id == "first_login_on_host"]
    assert [(a.group, a.count) for a in found] == [
        ({"user.name": "bob", "host.name": "bastion"}, 1)
    ]
