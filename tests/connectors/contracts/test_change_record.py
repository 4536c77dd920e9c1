"""The change-record contract: validation, its JSON Schema, CSV columns."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jsonschema
import pytest

from connectors.contracts import change_record
from connectors.contracts.change_record import (
    InvalidChangeRecordError,
    from_columns,
    missing_columns,
    parse_record,
)

SCHEMA = json.loads(Path(change_record.__file__).with_name("change-record.schema.json").read_text())

VALIDATOR = jsonschema.validators.validator_for(SCHEMA)(SCHEMA)

GOOD: dict[str, Any] = {
    "id": "CHG0031001",
    "title": "Restart nginx on web hosts",
    "state": "approved",
    "requested_by": "dave",
    "implementers": ["alice"],
    "approved_by": "erin",
    "window": {"start": "2026-11-20T01:00:00+09:00", "end": "2026-11-20T03:00:00+09:00"},
    "scope": {
        "hosts": ["web0*"],
        "aws_accounts": ["111111111111"],
        "aws_regions": ["ap-northeast-1"],
        "resources": ["arn:aws:ec2:ap-northeast-1:111111111111:instance/*"],
        "actions": ["ec2:StopInstances", "sudo:/usr/bin/systemctl restart nginx"],
    },
    "url": "https://itsm.example.com/change/CHG0031001",
}


def variant(**changes: Any) -> dict[str, Any]:
    record = json.loads(json.dumps(GOOD))
    for key, value in changes.items():
        if value is None:
            record.pop(key, None)
        else:
            record[key] = value
    return record


VALID = [
    GOOD,
    variant(title=None, scope=None, implementers=None, url=None, requested_by=None),
    variant(implementers="alice", scope={"hosts": "db01"}),
    variant(window={"start": "2026-11-20T01:00", "end": "2026-11-20 03:00:00"}, version=3),
    variant(state="cancelled", updated="2026-11-19T10:00:00Z"),
]
INVALID = [
    (variant(id=None), "missing id"),
    (variant(window=None), "missing window"),
    (variant(window={"start": "2026-11-20T03:00:00Z"}), "missing window.end"),
    (
        variant(window={"start": "2026-11-20T03:00:00Z", "end": "2026-11-20T01:00:00Z"}),
        "window ends (2026-11-20T01:00:00Z) before it starts (2026-11-20T03:00:00Z)",
    ),
    (variant(state="done"), "unknown state 'done'"),
    (variant(colour="blue"), "unknown field(s) colour"),
    (variant(scope={"host": ["web01"]}), "unknown scope field(s) host"),
    (variant(version="three"), "version must be an integer"),
    (variant(window={"start": "yesterday", "end": "2026-11-20T01:00:00Z"}), "not an ISO 8601"),
    (variant(implementers=[1, 2]), "implementers must be a list of strings"),
]


@pytest.mark.parametrize("record", VALID)
def test_valid_records_pass_the_model_and_the_schema(record: dict[str, Any]) -> None:
    """Every record the model accepts, the published JSON Schema accepts too."""
    assert parse_record(record).id == record["id"]
    assert [error.message for error in VALIDATOR.iter_errors(record)] == []


@pytest.mark.parametrize("record", VALID)
def test_the_json_form_passes_the_schema_and_parses_again(record: dict[str, Any]) -> None:
    """The form the daemon stores and shows is itself a valid record."""
    parsed = parse_record(record)
    jsonschema.validate(parsed.to_json(), SCHEMA)
    assert parse_record(parsed.to_json()) == parsed


@pytest.mark.parametrize(("record", "reason"), INVALID)
def test_invalid_records_are_refused_by_both_with_a_clear_reason(
    record: dict[str, Any], reason: str
) -> None:
    """The model names the problem; the schema refuses the same record (except
    end-before-start, which JSON Schema cannot express)."""
    with pytest.raises(InvalidChangeRecordError) as caught:
        parse_record(record)
    assert reason in str(caught.value)
    if "before it starts" not in reason:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(record, SCHEMA)


def test_every_problem_is_reported_at_once() -> None:
    """One look at the error shows everything wrong with the record."""
    with pytest.raises(InvalidChangeRecordError) as caught:
        parse_record({"title": "x", "state": "nope"})
    assert caught.value.problems == [
        "missing id",
        "unknown state 'nope' (one of draft, requested, approved, implementing, completed,"
        " cancelled, rejected)",
        "missing window (an object with start and end)",
    ]


def test_times_without_a_zone_are_read_in_the_given_zone() -> None:
    """A window written without a zone is in [daemon].timezone."""
    record = parse_record(
        variant(window={"start": "2026-11-20T01:00:00", "end": "2026-11-20T03:00:00"}),
        ZoneInfo("Asia/Tokyo"),
    )
    assert record.start == datetime(2026, 11, 19, 16, 0, tzinfo=UTC)
    assert record.end == datetime(2026, 11, 19, 18, 0, tzinfo=UTC)


def test_revision_names_the_content_not_the_update_time() -> None:
    """Re-reading the same record gives the same revision; any edit a new one."""
    first = parse_record(variant(updated="2026-11-19T10:00:00Z"))
    again = parse_record(variant(updated="2026-11-19T11:00:00Z"))
    edited = parse_record(variant(state="completed"))
    assert first.revision == again.revision
    assert edited.revision != first.revision


def test_a_csv_row_becomes_a_record() -> None:
    """List cells split at ';' or ','; empty cells leave the axis open."""
    row = {
        "id": "CHG1",
        "state": "approved",
        "window_start": "2026-11-20T09:00:00Z",
        "window_end": "2026-11-20T10:00:00Z",
        "implementers": "alice; bob",
        "actions": "ec2:StopInstances,ec2:StartInstances",
        "hosts": "",
        "version": "2",
    }
    record = parse_record(from_columns(row))
    assert record.implementers == ("alice", "bob")
    assert record.scope.actions == ("ec2:StopInstances", "ec2:StartInstances")
    assert record.scope.hosts == ()
    assert record.version == 2


def test_missing_csv_columns_are_named() -> None:
    """A header without the required columns is refused by name."""
    assert missing_columns(["id", "title", "window_start"]) == ["state", "window_end"]
    assert missing_columns(["id", "state", "window_start", "window_end"]) == []
