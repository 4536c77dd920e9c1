"""The coverage query: which change records cover an event, and why others do not."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from connectors.contracts.change_record import parse_record
from daemon.changes.book import ChangeBook
from daemon.changes.coverage import coverage, facts_of
from daemon.identity import build
from daemon.normalize import cloudtrail

SAMPLES = Path(__file__).parent / "samples"
IDENTITIES = build(
    [
        {"id": "alice", "email": ["alice@example.com"], "unix": ["asmith"], "groups": ["ops"]},
        {"id": "bob", "unix": ["bob"], "aws": ["arn:aws:iam::111111111111:user/bob"]},
    ]
)


def cloudtrail_doc(name: str) -> dict[str, Any]:
    """alice's demo maintenance call ``name``, normalized as the daemon stores it."""
    records = orjson.loads((SAMPLES / "alice_maintenance.json").read_bytes())["Records"]
    (record,) = [r for r in records if r["eventName"] == name]
    event = cloudtrail.normalize(record)
    event.actor = IDENTITIES.actor_of(event)
    return event.to_document()


def sudo_doc(user: str, host: str, command: str, at: str) -> dict[str, Any]:
    """A sudo event in the on-prem ECS shape (docs/ecs-onprem contract)."""
    return {
        "@timestamp": at,
        "event": {"id": "s1", "dataset": "system.auth", "action": "sudo", "kind": "event"},
        "host": {"name": host},
        "user": {"name": user, "effective": {"name": "root"}},
        "process": {"name": "sudo", "command_line": command},
        "system": {"auth": {"sudo": {"command": command}}},
    }


MAINTENANCE = {
    "id": "CHG0031001",
    "title": "Stop/start batch host for a kernel update",
    "state": "approved",
    "implementers": ["alice"],
    "window": {"start": "2026-11-20T09:00:00Z", "end": "2026-11-20T09:30:00Z"},
    "scope": {
        "aws_accounts": ["111111111111"],
        "aws_regions": ["ap-northeast-1"],
        "resources": ["arn:aws:ec2:ap-northeast-1:111111111111:instance/i-0abc1234def567890"],
        "actions": ["ec2:StopInstances", "ec2:StartInstances"],
    },
}
NGINX = {
    "id": "CHG0031002",
    "state": "approved",
    "implementers": ["ops"],
    "window": {"start": "2026-11-20T01:00:00+09:00", "end": "2026-11-20T03:00:00+09:00"},
    "scope": {"hosts": ["web0*"], "actions": ["sudo:/usr/bin/systemctl restart nginx"]},
}


def book(*records: dict[str, Any]) -> ChangeBook:
    return ChangeBook((parse_record(r) for r in records), IDENTITIES)


def with_(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**base, **changes}


def test_in_window_in_scope_is_covered() -> None:
    """alice's StopInstances at 09:05 on the named instance is covered by her change."""
    verdict = coverage(cloudtrail_doc("StopInstances"), book(MAINTENANCE))
    assert verdict.covered
    assert [r.id for r in verdict.covered_by] == ["CHG0031001"]


def test_resources_come_from_request_parameters() -> None:
    """StopInstances has no resources list: the instance id of the request counts."""
    facts = facts_of(cloudtrail_doc("StopInstances"))
    assert [r.arn for r in facts.resources] == [
        "arn:aws:ec2:ap-northeast-1:111111111111:instance/i-0abc1234def567890"
    ]
    assert facts.action == "ec2:StopInstances"
    assert facts.people[0] == "alice"


def test_out_of_window_names_the_gap() -> None:
    """StartInstances at 09:24 falls 40 minutes after a window that closed at 08:44."""
    early = with_(MAINTENANCE, window={"start": "2026-11-20T08:00Z", "end": "2026-11-20T08:44:50Z"})
    verdict = coverage(cloudtrail_doc("StartInstances"), book(early))
    assert not verdict.covered
    (miss,) = verdict.nearest
    assert miss.reasons == ("window ended 40 min before",)


def test_a_window_not_yet_open() -> None:
    """An event before the window says how long before it opens."""
    later = with_(MAINTENANCE, window={"start": "2026-11-20T11:05:30Z", "end": "2026-11-20T12:00Z"})
    (miss,) = coverage(cloudtrail_doc("StopInstances"), book(later)).nearest
    assert miss.reasons == ("window opens 2 h after",)


def test_out_of_scope_action_and_resource() -> None:
    """The bucket policy change in the same window is not part of the change."""
    verdict = coverage(cloudtrail_doc("PutBucketPolicy"), book(MAINTENANCE))
    assert not verdict.covered
    (miss,) = verdict.nearest
    assert miss.reasons == (
        "resource arn:aws:s3:::prod-assets-apn1 not in scope",
        "action s3:PutBucketPolicy not in scope",
    )


def test_wrong_person() -> None:
    """A change implemented by bob does not cover alice."""
    verdict = coverage(
        cloudtrail_doc("StopInstances"), book(with_(MAINTENANCE, implementers=["bob"]))
    )
    assert not verdict.covered
    assert verdict.nearest[0].reasons == ("alice is not an implementer (bob)",)


@pytest.mark.parametrize("state", ["cancelled", "rejected", "draft", "requested"])
def test_records_that_do_not_authorize(state: str) -> None:
    """A cancelled (or not yet approved) record covers nothing, and says so."""
    verdict = coverage(cloudtrail_doc("StopInstances"), book(with_(MAINTENANCE, state=state)))
    assert not verdict.covered
    assert verdict.nearest[0].reasons == (f"state is {state}",)


@pytest.mark.parametrize("state", ["implementing", "completed"])
def test_implementing_and_completed_records_authorize(state: str) -> None:
    verdict = coverage(cloudtrail_doc("StopInstances"), book(with_(MAINTENANCE, state=state)))
    assert verdict.covered


def test_nearest_records_come_fewest_reasons_first() -> None:
    """Among several misses, the closest explanation leads."""
    wrong_person = with_(MAINTENANCE, id="CHG2", implementers=["bob"])
    cancelled_far = with_(
        MAINTENANCE,
        id="CHG3",
        state="cancelled",
        window={"start": "2026-11-21T09:00Z", "end": "2026-11-21T10:00Z"},
    )
    verdict = coverage(cloudtrail_doc("PutBucketPolicy"), book(cancelled_far, wrong_person))
    assert [m.record.id for m in verdict.nearest] == ["CHG2", "CHG3"]
    assert verdict.to_json()["covered"] is False


def test_records_far_away_are_not_near() -> None:
    """A window weeks away is no explanation."""
    far = with_(MAINTENANCE, window={"start": "2026-10-01T00:00Z", "end": "2026-10-01T01:00Z"})
    assert coverage(cloudtrail_doc("StopInstances"), book(far)).nearest == ()


def test_on_prem_sudo_in_scope_through_a_group() -> None:
    """asmith is alice, alice is in ops, ops implements the nginx restart on web hosts."""
    doc = sudo_doc("asmith", "web01", "/usr/bin/systemctl restart nginx", "2026-11-19T17:30:00Z")
    assert facts_of(doc).action == "sudo:/usr/bin/systemctl restart nginx"
    assert coverage(doc, book(NGINX)).covered


def test_on_prem_sudo_outside_the_host_scope_and_command() -> None:
    """The same person on a database host running another command is not covered."""
    doc = sudo_doc("asmith", "db01", "/usr/bin/apt-get install tcpdump", "2026-11-19T17:30:00Z")
    (miss,) = coverage(doc, book(NGINX)).nearest
    assert miss.reasons == (
        "host db01 not in scope",
        "action sudo:/usr/bin/apt-get install tcpdump not in scope",
    )


def test_an_axis_the_event_does_not_tell_does_not_count() -> None:
    """A CloudTrail call has no host; a record scoped to hosts still covers it on the
    other axes, and an sshd login has no account for an account-scoped record."""
    hosts_too = with_(MAINTENANCE, scope={**MAINTENANCE["scope"], "hosts": ["web0*"]})
    assert coverage(cloudtrail_doc("StopInstances"), book(hosts_too)).covered
    login = {
        "@timestamp": "2026-11-20T09:10:00Z",
        "event": {"id": "l1", "dataset": "system.auth", "action": "ssh_login"},
        "host": {"name": "bastion"},
        "user": {"name": "asmith"},
    }
    ssh_change = with_(MAINTENANCE, scope={"aws_accounts": ["111111111111"], "actions": ["ssh:*"]})
    assert coverage(login, book(ssh_change)).covered


def test_unresolved_principals_match_implementers_by_account_name() -> None:
    """Without an identity map entry, an implementer may name the account itself."""
    doc = sudo_doc("deploy", "web02", "/usr/bin/systemctl restart nginx", "2026-11-19T17:00:00Z")
    assert coverage(doc, book(with_(NGINX, implementers=["deploy"]))).covered
    assert not coverage(doc, book(NGINX)).covered


def test_near_finds_what_a_full_scan_finds() -> None:
    """The outward walk returns the holding records and the closest others, as a scan would."""
    rng = random.Random(5)
    base = datetime(2026, 11, 20, tzinfo=UTC)
    records = []
    for n in range(300):
        start = base + timedelta(minutes=rng.randrange(0, 20_000))
        end = start + timedelta(minutes=rng.choice([5, 30, 120, 600, 3000]))
        records.append(
            parse_record(
                {
                    "id": f"C{n}",
                    "state": "approved",
                    "window": {"start": start.isoformat(), "end": end.isoformat()},
                }
            )
        )
    changes = ChangeBook(records)
    horizon = timedelta(days=2)
    for _ in range(200):
        moment = base + timedelta(minutes=rng.randrange(-3000, 23_000))
        holding = {r.id for r in records if r.start <= moment <= r.end}

        def distance(r: Any, moment: datetime = moment) -> timedelta:
            return r.start - moment if r.start > moment else moment - r.end

        others = sorted(
            (distance(r), r.id) for r in records if r.id not in holding and distance(r) <= horizon
        )
        found = changes.near(moment, horizon, 5)
        assert {r.id for r in found[: len(holding)]} == holding
        assert [distance(r) for r in found[len(holding) :]] == [d for d, _ in others[:5]]
