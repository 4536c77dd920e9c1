"""AuditEvent <-> ECS document: nesting, empty values, dotted fields, round trips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest

from daemon.model import AuditEvent, format_timestamp, parse_timestamp

TOKYO = timezone(timedelta(hours=9))


def full_event() -> AuditEvent:
    """An event with every typed field set, as a CloudTrail IAM change would give."""
    return AuditEvent(
        timestamp=datetime(2026, 11, 20, 10, 0, 0, 123456, tzinfo=UTC),
        id="8c1f2a3b-4d5e-4f60-8a7b-9c0d1e2f3a43",
        dataset="aws.cloudtrail",
        kind="event",
        category=["iam"],
        type=["user", "change", "creation"],
        action="CreateUser",
        outcome="success",
        provider="iam.amazonaws.com",
        ingested=datetime(2026, 11, 20, 10, 7, tzinfo=UTC),
        user_name="alice.smith",
        user_id="AIDACKCEVSQ6C2EXAMPLE",
        user_target_name="bob",
        source_ip="203.0.113.5",
        source_address="203.0.113.5",
        host_name="bastion-1",
        host_ip=["10.0.0.5"],
        cloud_provider="aws",
        cloud_account_id="111111111111",
        cloud_region="us-east-1",
        cloud_service_name="iam",
        related_user=["alice.smith", "bob"],
        related_ip=["203.0.113.5"],
        related_hosts=["bastion-1"],
        message="alice.smith called iam:CreateUser in 111111111111/us-east-1 from 203.0.113.5",
        actor="alice",
        labels={"env": "prod"},
        fields={
            "user_agent.original": "aws-cli/2.15.0",
            "aws.cloudtrail.read_only": False,
            "aws.cloudtrail.user_identity.type": "IAMUser",
            "user.email": "alice@example.com",
            "event.module": "aws",
            "tls.version": "1.3",
        },
        original={"eventID": "8c1f2a3b-4d5e-4f60-8a7b-9c0d1e2f3a43", "eventName": "CreateUser"},
    )


def minimal_event(**overrides: Any) -> AuditEvent:
    values: dict[str, Any] = {
        "timestamp": datetime(2026, 11, 20, 1, 0, tzinfo=UTC),
        "id": "ev-1",
        "dataset": "system.auth",
    }
    values.update(overrides)
    return AuditEvent(**values)


def test_round_trip_keeps_every_field() -> None:
    """from_document(to_document(event)) gives back an equal event."""
    event = full_event()
    assert AuditEvent.from_document(event.to_document()) == event


def test_round_trip_through_json() -> None:
    """The JSON bytes decode to the same document and rebuild the same event."""
    event = full_event()
    doc = orjson.loads(event.to_json())
    assert doc == event.to_document()
    assert AuditEvent.from_document(doc) == event


def test_ecs_nesting() -> None:
    """Typed fields land under their ECS objects, with ECS names."""
    doc = full_event().to_document()
    assert doc["@timestamp"] == "2026-11-20T10:00:00.123456Z"
    assert doc["event"] == {
        "id": "8c1f2a3b-4d5e-4f60-8a7b-9c0d1e2f3a43",
        "kind": "event",
        "dataset": "aws.cloudtrail",
        "category": ["iam"],
        "type": ["user", "change", "creation"],
        "action": "CreateUser",
        "outcome": "success",
        "provider": "iam.amazonaws.com",
        "ingested": "2026-11-20T10:07:00Z",
        "module": "aws",
    }
    assert doc["user"] == {
        "name": "alice.smith",
        "id": "AIDACKCEVSQ6C2EXAMPLE",
        "target": {"name": "bob"},
        "email": "alice@example.com",
    }
    assert doc["source"] == {"ip": "203.0.113.5", "address": "203.0.113.5"}
    assert doc["host"] == {"name": "bastion-1", "ip": ["10.0.0.5"]}
    assert doc["cloud"] == {
        "provider": "aws",
        "account": {"id": "111111111111"},
        "region": "us-east-1",
        "service": {"name": "iam"},
    }
    assert doc["related"] == {
        "user": ["alice.smith", "bob"],
        "ip": ["203.0.113.5"],
        "hosts": ["bastion-1"],
    }
    assert doc["actor"] == "alice"
    assert doc["labels"] == {"env": "prod"}
    assert doc["original"]["eventName"] == "CreateUser"


def test_timestamp_is_utc_with_z() -> None:
    """@timestamp is converted to UTC and ends in Z; microseconds only when there are some."""
    doc = minimal_event(timestamp=datetime(2026, 11, 20, 9, 30, tzinfo=TOKYO)).to_document()
    assert doc["@timestamp"] == "2026-11-20T00:30:00Z"
    assert format_timestamp(datetime(2026, 11, 20, 0, 30, 0, 5, tzinfo=UTC)) == (
        "2026-11-20T00:30:00.000005Z"
    )


def test_parse_timestamp_reads_any_zone_and_rejects_none() -> None:
    """parse_timestamp inverts format_timestamp, converts offsets and refuses naive times."""
    moment = datetime(2026, 11, 20, 0, 30, 0, 250000, tzinfo=UTC)
    assert parse_timestamp(format_timestamp(moment)) == moment
    assert parse_timestamp("2026-11-20T09:30:00+09:00") == datetime(2026, 11, 20, 0, 30, tzinfo=UTC)
    with pytest.raises(ValueError, match="without a time zone"):
        parse_timestamp("2026-11-20T00:30:00")


def test_empty_values_are_left_out() -> None:
    """Unset, empty-string, empty-list and empty-dict values produce no keys or objects."""
    doc = minimal_event(
        action="",
        message="",
        host_ip=[],
        related_user=[],
        labels={},
        user_target_name="",
        cloud_account_id="",
        fields={},
    ).to_document()
    assert doc == {
        "@timestamp": "2026-11-20T01:00:00Z",
        "event": {"id": "ev-1", "kind": "event", "dataset": "system.auth"},
    }


TYPED_FIELDS: list[tuple[str, Any, tuple[str, ...]]] = [
    ("user_name", "alice", ("user", "name")),
    ("user_id", "AIDAEXAMPLE", ("user", "id")),
    ("user_target_name", "bob", ("user", "target", "name")),
    ("source_ip", "203.0.113.5", ("source", "ip")),
    ("source_address", "ec2.amazonaws.com", ("source", "address")),
    ("host_name", "bastion-1", ("host", "name")),
    ("host_ip", ["10.0.0.5"], ("host", "ip")),
    ("cloud_provider", "aws", ("cloud", "provider")),
    ("cloud_account_id", "111111111111", ("cloud", "account", "id")),
    ("cloud_region", "us-east-1", ("cloud", "region")),
    ("cloud_service_name", "iam", ("cloud", "service", "name")),
    ("related_user", ["alice"], ("related", "user")),
    ("related_ip", ["203.0.113.5"], ("related", "ip")),
    ("related_hosts", ["bastion-1"], ("related", "hosts")),
]


@pytest.mark.parametrize(
    ("attribute", "value", "path"), TYPED_FIELDS, ids=[t[0] for t in TYPED_FIELDS]
)
def test_each_typed_field_is_written_on_its_own(
    attribute: str, value: Any, path: tuple[str, ...]
) -> None:
    """A typed field shows in the document even when it is the only one set in its object."""
    doc: Any = minimal_event(**{attribute: value}).to_document()
    for name in path:
        doc = doc[name]
    assert doc == value
    assert (
        getattr(
            AuditEvent.from_document(minimal_event(**{attribute: value}).to_document()), attribute
        )
        == value
    )


def test_empty_dotted_fields_leave_no_empty_objects() -> None:
    """A dotted field with an empty value adds neither the key nor its parent objects."""
    doc = minimal_event(
        fields={"process.name": None, "process.pid": "", "file.path": [], "a.b.c": {}}
    ).to_document()
    assert set(doc) == {"@timestamp", "event"}


def test_false_and_zero_are_not_empty() -> None:
    """False and 0 are values, kept like any other."""
    doc = minimal_event(fields={"aws.cloudtrail.read_only": False, "process.pid": 0}).to_document()
    assert doc["aws"] == {"cloudtrail": {"read_only": False}}
    assert doc["process"] == {"pid": 0}


def test_dotted_fields_merge_into_typed_objects() -> None:
    """``fields`` by dotted name merge with the typed fields' objects instead of replacing them."""
    doc = minimal_event(
        user_name="alice",
        cloud_account_id="111111111111",
        fields={
            "user.email": "alice@example.com",
            "cloud.account.name": "prod",
            "event.module": "system",
            "aws.cloudtrail.user_identity.type": "IAMUser",
            "aws.cloudtrail.user_identity.arn": "arn:aws:iam::111111111111:user/alice",
        },
    ).to_document()
    assert doc["user"] == {"name": "alice", "email": "alice@example.com"}
    assert doc["cloud"] == {"account": {"id": "111111111111", "name": "prod"}}
    assert doc["event"]["module"] == "system"
    assert doc["event"]["id"] == "ev-1"
    assert doc["aws"] == {
        "cloudtrail": {
            "user_identity": {
                "type": "IAMUser",
                "arn": "arn:aws:iam::111111111111:user/alice",
            }
        }
    }


def test_dotted_fields_come_back_by_dotted_name() -> None:
    """from_document returns ECS fields the event has no attribute for under their dotted names."""
    event = AuditEvent.from_document(full_event().to_document())
    assert event.fields["user.email"] == "alice@example.com"
    assert event.fields["event.module"] == "aws"
    assert event.fields["aws.cloudtrail.read_only"] is False


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param({"cloud.account.name": "prod"}, id="cloud.account.name"),
        pytest.param({"cloud.service.type": "iam"}, id="cloud.service.type"),
        pytest.param({"user.target.id": "AIDAEXAMPLEBOB000001"}, id="user.target.id"),
        pytest.param({"related.hash": ["5d41402abc4b2a76"]}, id="related.hash"),
    ],
)
def test_round_trip_keeps_ecs_fields_beside_typed_ones(extra: dict[str, Any]) -> None:
    """ECS fields that share an object with a typed field survive from_document."""
    event = full_event()
    event.fields.update(extra)
    doc = event.to_document()
    rebuilt = AuditEvent.from_document(doc)
    assert rebuilt.to_document() == doc
    assert rebuilt == event


def test_from_document_defaults() -> None:
    """A minimal ECS document gives an event with empty defaults."""
    event = AuditEvent.from_document(
        {
            "@timestamp": "2026-11-20T01:00:00Z",
            "event": {"id": "ev-1", "dataset": "system.auth"},
        }
    )
    assert event == minimal_event()
    assert event.kind == "event"
    assert event.fields == {}
    assert event.original is None
