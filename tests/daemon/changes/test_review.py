"""The post-implementation review: each verdict, from events in a real store (both engines)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from connectors.base import RawBatch
from connectors.contracts.change_record import parse_record
from daemon.changes.review import MARGIN, Review, book_for, review, scope_probes
from daemon.identity import build
from daemon.normalize import Limits
from daemon.process import Job, init_worker, process
from daemon.store.base import EventQuery, Store

SAMPLES = Path(__file__).parent / "samples"
IDENTITIES = build(
    [
        {
            "id": "alice",
            "name": "Alice Example",
            "email": ["alice@example.com"],
            "unix": ["asmith"],
        },
        {"id": "carol", "unix": ["carol"], "groups": ["dba"]},
    ]
)
AFTER = datetime(2026, 11, 22, tzinfo=UTC)
"""A moment when every window of these tests is over."""

MAINTENANCE: dict[str, Any] = {
    "id": "CHG0041207",
    "title": "Stop and start i-0abc1234def567890",
    "state": "approved",
    "implementers": ["alice"],
    "window": {"start": "2026-11-20T09:00:00Z", "end": "2026-11-20T09:30:00Z"},
    "scope": {
        "aws_accounts": ["111111111111"],
        "resources": ["arn:aws:ec2:ap-northeast-1:111111111111:instance/i-0abc1234def567890"],
        "actions": ["ec2:StopInstances", "ec2:StartInstances"],
    },
}
NGINX: dict[str, Any] = {
    "id": "CHG0041211",
    "state": "approved",
    "implementers": ["dba"],
    "window": {"start": "2026-11-20T12:00:00Z", "end": "2026-11-20T13:00:00Z"},
    "scope": {"hosts": ["web0*"], "actions": ["sudo:/usr/bin/systemctl restart nginx"]},
}


def alice_calls(*names: str, at: dict[str, str] | None = None) -> bytes:
    """alice's demo calls ``names`` (all three when none), moved to the times in ``at``."""
    records = orjson.loads((SAMPLES / "alice_maintenance.json").read_bytes())["Records"]
    chosen = [r for r in records if not names or r["eventName"] in names]
    for record in chosen:
        if at and record["eventName"] in at:
            record["eventTime"] = at[record["eventName"]]
            record["eventID"] = record["eventID"][:-4] + "beef"
    return orjson.dumps({"Records": chosen})


def sudo(user: str, host: str, command: str, at: str, outcome: str = "success") -> bytes:
    """A sudo event in the on-prem ECS shape."""
    doc = {
        "@timestamp": at,
        "event": {
            "id": f"sudo-{user}-{at}",
            "dataset": "system.auth",
            "action": "sudo",
            "kind": "event",
            "outcome": outcome,
        },
        "host": {"name": host},
        "user": {"name": user},
        "process": {"name": "sudo", "command_line": command},
        "system": {"auth": {"sudo": {"command": command}}},
    }
    return orjson.dumps(doc)


@pytest.fixture
def put(store: Store) -> Iterator[Any]:
    """Write payloads of a log type, actors resolved through the test's identity map."""
    init_worker(store.dictionaries(), None, IDENTITIES)

    def write(log_type: str, payload: bytes) -> None:
        store.write(
            [process(Job("test", RawBatch(log_type, "test", payload), store.codec, Limits()))]
        )

    yield write
    init_worker(store.dictionaries())


def review_of(store: Store, record: dict[str, Any], now: datetime = AFTER) -> Review:
    parsed = parse_record(record)
    book = book_for(store, parsed.start, parsed.end, IDENTITIES)
    return review(store, parsed, book, now=now)


def test_work_outside_the_scope_is_scope_creep(store: Store, put: Any) -> None:
    """alice's PutBucketPolicy in her window is out of scope, with the coverage reasons."""
    put("change", orjson.dumps(MAINTENANCE))
    put("cloudtrail", alice_calls())
    found = review_of(store, MAINTENANCE)
    assert found.verdict == "scope_creep"
    assert [(s.facts.action, s.in_scope) for s in found.inside] == [
        ("ec2:StopInstances", True),
        ("s3:PutBucketPolicy", False),
        ("ec2:StartInstances", True),
    ]
    assert found.inside[1].reasons == (
        "resource arn:aws:s3:::prod-assets-apn1 not in scope",
        "action s3:PutBucketPolicy not in scope",
    )
    assert found.counts() == {
        "in_scope": 2,
        "out_of_scope": 1,
        "outside_window": 0,
        "outside_covered": 0,
    }
    (implementer,) = found.implementers
    assert [p.id for p in implementer.people] == ["alice"]


def test_only_work_in_scope_is_clean(store: Store, put: Any) -> None:
    """Stopping and starting the named instance in the window, and nothing else, is clean."""
    put("change", orjson.dumps(MAINTENANCE))
    put("cloudtrail", alice_calls("StopInstances", "StartInstances"))
    found = review_of(store, MAINTENANCE)
    assert found.verdict == "clean"
    assert found.to_json()["counts"]["in_scope"] == 2


def test_nothing_done_in_an_approved_window_is_not_executed(store: Store, put: Any) -> None:
    """An approved record whose window passed without any of its implementers' changes."""
    put("change", orjson.dumps(MAINTENANCE))
    found = review_of(store, MAINTENANCE)
    assert (found.verdict, found.inside, found.outside) == ("not_executed", (), ())


def test_a_window_not_yet_over_is_in_progress(store: Store, put: Any) -> None:
    """Until the window closed and late CloudTrail had time to arrive, nothing is judged."""
    put("change", orjson.dumps(MAINTENANCE))
    put("cloudtrail", alice_calls())
    during = datetime(2026, 11, 20, 9, 40, tzinfo=UTC)  # 10 min after the end
    assert review_of(store, MAINTENANCE, now=during).verdict == "in_progress"
    assert review_of(store, MAINTENANCE, now=during + timedelta(minutes=15)).verdict != (
        "in_progress"
    )


def test_work_on_the_scope_after_the_window_is_outside_window(store: Store, put: Any) -> None:
    """StartInstances an hour after the window closed touched its scope, uncovered."""
    put("change", orjson.dumps(MAINTENANCE))
    put(
        "cloudtrail",
        alice_calls(
            "StopInstances", "StartInstances", at={"StartInstances": "2026-11-20T10:31:00Z"}
        ),
    )
    found = review_of(store, MAINTENANCE)
    assert found.verdict == "outside_window"
    (late,) = found.outside
    assert (late.facts.action, late.covered_by) == ("ec2:StartInstances", ())
    assert found.to_json()["outside"][0]["when"] == "after"


def test_work_outside_the_window_covered_by_another_record_is_named(store: Store, put: Any) -> None:
    """A later record covering the late StartInstances is named, and the review stays clean."""
    later = {
        **MAINTENANCE,
        "id": "CHG0041300",
        "window": {"start": "2026-11-20T10:00:00Z", "end": "2026-11-20T11:00:00Z"},
    }
    put("change", orjson.dumps([MAINTENANCE, later]))
    put(
        "cloudtrail",
        alice_calls(
            "StopInstances", "StartInstances", at={"StartInstances": "2026-11-20T10:31:00Z"}
        ),
    )
    found = review_of(store, MAINTENANCE)
    assert found.verdict == "clean"
    assert [s.covered_by for s in found.outside] == [("CHG0041300",)]


def test_work_beyond_the_margin_is_not_looked_at(store: Store, put: Any) -> None:
    """A StartInstances two days later is another day's business."""
    put("change", orjson.dumps(MAINTENANCE))
    late = (datetime(2026, 11, 20, 9, 30, tzinfo=UTC) + MARGIN + timedelta(hours=1)).isoformat()
    put(
        "cloudtrail",
        alice_calls(
            "StopInstances", "StartInstances", at={"StartInstances": late.replace("+00:00", "Z")}
        ),
    )
    assert review_of(store, MAINTENANCE).verdict == "clean"


def test_implementers_are_groups_and_accounts_of_people(store: Store, put: Any) -> None:
    """The group ``dba`` is carol, whose Unix account did the restart; anyone else's
    restart before the window, on the scope, is outside it; a refused sudo changed nothing."""
    put("change", orjson.dumps(NGINX))
    put("ecs", sudo("carol", "web01", "/usr/bin/systemctl restart nginx", "2026-11-20T12:10:00Z"))
    put("ecs", sudo("asmith", "web02", "/usr/bin/systemctl restart nginx", "2026-11-20T11:00:00Z"))
    put(
        "ecs",
        sudo("bob", "web01", "/usr/bin/systemctl restart nginx", "2026-11-20T14:00:00Z", "failure"),
    )
    put("ecs", sudo("asmith", "db01", "/usr/bin/systemctl restart nginx", "2026-11-20T14:00:00Z"))
    found = review_of(store, NGINX)
    assert [p.id for p in found.implementers[0].people] == ["carol"]
    assert [(s.facts.people[0], s.in_scope) for s in found.inside] == [("carol", True)]
    assert [(s.facts.people[0], s.facts.host) for s in found.outside] == [("alice", "web02")]
    assert found.verdict == "outside_window"


def test_work_in_a_cancelled_records_window_is_scope_creep(store: Store, put: Any) -> None:
    """A cancelled record authorizes nothing: what its implementer did anyway is out of scope."""
    cancelled = {**MAINTENANCE, "state": "cancelled"}
    put("change", orjson.dumps(cancelled))
    put("cloudtrail", alice_calls("StopInstances"))
    found = review_of(store, cancelled)
    assert found.verdict == "scope_creep"
    assert found.inside[0].reasons == ("state is cancelled",)
    untouched = review_of(store, {**cancelled, "id": "CHG1", "implementers": ["carol"]})
    assert untouched.verdict == "clean"


def test_a_record_without_implementers_reviews_anyones_work_on_its_scope(
    store: Store, put: Any
) -> None:
    """Anyone may carry out a record naming nobody: their changes on its scope in the
    window count as its work, other changes of theirs are not its business."""
    anyone = {**MAINTENANCE, "implementers": []}
    put("change", orjson.dumps(anyone))
    put("cloudtrail", alice_calls())
    found = review_of(store, anyone)
    assert [s.facts.action for s in found.inside] == ["ec2:StopInstances", "ec2:StartInstances"]
    assert found.verdict == "clean"
    assert review_of(store, {**anyone, "id": "CHG2", "scope": {"hosts": ["db01"]}}).verdict == (
        "not_executed"
    )


def test_scope_probes_combine_the_exact_axes() -> None:
    """Actions become event actions, combined with exact hosts, accounts and regions;
    globs leave an axis out, and too many combinations drop regions first."""
    assert scope_probes(parse_record(MAINTENANCE)) == [
        EventQuery(action="StopInstances", account="111111111111"),
        EventQuery(action="StartInstances", account="111111111111"),
    ]
    assert scope_probes(parse_record(NGINX)) == [EventQuery(action="sudo")]
    hosts = {**NGINX, "scope": {"hosts": ["web01"], "actions": ["ec2:*"]}}
    assert scope_probes(parse_record(hosts)) == [EventQuery(host="web01")]
    globs = {**NGINX, "scope": {"hosts": ["web0*"]}}
    assert scope_probes(parse_record(globs)) is None
    assert scope_probes(parse_record({**NGINX, "scope": {}})) == []
    wide = {
        **NGINX,
        "scope": {
            "actions": ["ec2:StopInstances", "ec2:StartInstances"],
            "aws_accounts": ["111111111111", "222222222222"],
            "aws_regions": [
                "us-east-1",
                "us-west-2",
                "eu-west-1",
                "eu-central-1",
                "ap-northeast-1",
            ],
        },
    }
    probes = scope_probes(parse_record(wide))
    assert probes is not None
    assert len(probes) == 4
    assert {p.region for p in probes} == {None}
