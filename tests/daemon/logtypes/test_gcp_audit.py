"""Google Cloud Audit Logs: decoding a sink's files, the ECS mapping, and what the daemon
does with GCP events (changes and their coverage, the identity map, Sigma, rules test)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest

from connectors.base import NormalizationError
from connectors.contracts.change_record import parse_record
from daemon.changes.book import ChangeBook
from daemon.changes.coverage import coverage
from daemon.identity import build
from daemon.logtypes import get
from daemon.normalize import Limits
from daemon.rules.loader import load_rules
from daemon.rules.offline import run_files

REPO = Path(__file__).parents[3]
SAMPLE = REPO / "tests" / "fixtures" / "gcp_audit" / "input.json"
GCP = get("gcp_audit")
PEOPLE = build([{"id": "alice", "email": ["alice@example.com"]}])


def entries() -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in SAMPLE.read_bytes().splitlines()]


def documents(payload: bytes) -> list[dict[str, Any]]:
    return [GCP.normalize(record).to_document() for record in GCP.decode(payload, Limits())]


def test_an_array_and_gzip_read_as_lines_do() -> None:
    """A sink's file may be one entry per line or a JSON array, plain or gzip: same events."""
    lines = documents(SAMPLE.read_bytes())
    assert documents(orjson.dumps(entries())) == lines
    assert documents(gzip.compress(SAMPLE.read_bytes())) == lines
    assert documents(orjson.dumps(entries()[0], option=orjson.OPT_INDENT_2)) == lines[:1]


def test_a_line_that_is_not_json_is_one_bad_record() -> None:
    """The broken line is quarantined at its position, the others are read."""
    first, *rest = SAMPLE.read_bytes().splitlines()
    records = GCP.decode(b"\n".join([first, b'{"insertId": "x", "protoPay', *rest]), Limits())
    assert len(records) == 4
    with pytest.raises(NormalizationError, match="not JSON"):
        GCP.normalize(records[1])
    kept = [GCP.normalize(r).id for r in records[:1] + records[2:]]
    assert kept == ["-8f3k2le1a9bc", "1x9c2qle2b7f", "qkz7w3e4c2d1"]


def test_a_truncated_gzip_file_is_a_bad_payload() -> None:
    """A file cut short while it was copied is quarantined whole, with its position."""
    packed = gzip.compress(SAMPLE.read_bytes())
    with pytest.raises(NormalizationError, match="truncated gzip"):
        GCP.decode(packed[: len(packed) // 2], Limits())


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"protoPayload": None}, "not an audit log entry"),
        ({"protoPayload": {"@type": "type.googleapis.com/google.cloud.audit.Other"}}, "not an"),
        ({"insertId": ""}, "insertId"),
        ({"timestamp": "yesterday"}, "RFC 3339"),
    ],
)
def test_an_entry_without_id_time_or_audit_payload_is_rejected(
    change: dict[str, Any], reason: str
) -> None:
    """Only an audit LogEntry with an id and a time reaches the timeline."""
    with pytest.raises(NormalizationError, match=reason):
        GCP.normalize({**entries()[0], **change})


def test_the_status_code_decides_the_outcome() -> None:
    """No status or code 0 is success; any other code is failure (Elastic's gcp.audit)."""
    entry = entries()[0]
    for status, outcome in (({}, "success"), ({"code": 0}, "success"), ({"code": 7}, "failure")):
        entry["protoPayload"]["status"] = status
        assert GCP.normalize(entry).outcome == outcome


def test_hidden_callers_have_no_source_address() -> None:
    """``gce-internal-ip`` and ``private`` are no addresses; the Elastic fields are kept."""
    doc = documents(SAMPLE.read_bytes())[1]
    assert "source" not in doc
    assert doc["gcp"]["audit"]["request_metadata"]["caller_ip"] == "gce-internal-ip"
    assert doc["gcp"]["audit"]["method_name"] == "storage.objects.get"
    assert doc["gcp"]["audit"]["log"] == "data_access"


def record(**scope: list[str]) -> dict[str, Any]:
    return {
        "id": "CHG0052001",
        "title": "Stop the ETL worker for a disk resize",
        "state": "approved",
        "implementers": ["alice"],
        "window": {"start": "2026-11-20T14:00:00Z", "end": "2026-11-20T14:30:00Z"},
        "scope": scope,
    }


def test_the_record_schema_and_parser_know_gcp_projects() -> None:
    """``scope.gcp_projects`` is valid for the JSON Schema integrators use and the parser."""
    schema = json.loads(
        (REPO / "connectors" / "contracts" / "change-record.schema.json").read_text()
    )
    data = record(gcp_projects=["prod-*"])
    jsonschema.validators.validator_for(schema)(schema).validate(data)
    assert parse_record(data).to_json()["scope"] == {"gcp_projects": ["prod-*"]}


def test_a_gcp_project_scope_covers_the_change_and_an_aws_one_does_not() -> None:
    """``scope.gcp_projects`` restricts GCP events; AWS accounts cover no GCP project."""
    doc = documents(SAMPLE.read_bytes())[0]
    doc["actor"] = PEOPLE.actor_of_document(doc)
    covering = record(
        gcp_projects=["prod-analytics-*"],
        resources=["projects/prod-analytics-4821/zones/*/instances/etl-worker-*"],
        actions=["compute:v1.compute.instances.*"],
    )
    elsewhere = {**record(gcp_projects=["staging-*"]), "id": "CHG0052002"}
    aws = {**record(aws_accounts=["111122223333"]), "id": "CHG0052003"}
    book = ChangeBook((parse_record(r) for r in (covering, elsewhere, aws)), PEOPLE)
    verdict = coverage(doc, book)
    assert [r.id for r in verdict.covered_by] == ["CHG0052001"]
    book = ChangeBook((parse_record(r) for r in (elsewhere, aws)), PEOPLE)
    reasons = {miss.record.id: miss.reasons for miss in coverage(doc, book).nearest}
    assert reasons == {
        "CHG0052002": ("project prod-analytics-4821 not in scope",),
        "CHG0052003": ("accounts of another cloud",),
    }


def test_a_service_account_is_a_person_by_its_email() -> None:
    """A principal e-mail, a Google account's or a service account's, maps to its person."""
    people = build(
        [{"id": "etl", "email": ["etl-runner@prod-analytics-4821.iam.gserviceaccount.com"]}]
    )
    event = GCP.normalize(entries()[1])
    assert people.actor_of(event) == "etl"


RULE = """
title: Project IAM policy changed
id: 5b0f8d4e-2a61-4c0b-9e47-1d2c3b4a5f60
status: test
description: An IAM policy of a project was set, whether granted or not.
logsource:
  product: gcp
  service: gcp.audit
detection:
  selection:
    gcp.audit.method_name: SetIamPolicy
    gcp.audit.service_name: cloudresourcemanager.googleapis.com
  condition: selection
level: high
"""


def test_sigma_rules_for_gcp_audit_load_and_match(tmp_path: Path) -> None:
    """A rule for ``product: gcp, service: gcp.audit`` names Elastic's fields and matches."""
    (tmp_path / "iam.yml").write_text(RULE)
    loaded = load_rules([tmp_path])
    (rule,) = loaded.detections
    assert not loaded.skipped
    matched = [doc["event"]["id"] for doc in documents(SAMPLE.read_bytes()) if rule.match(doc)]
    assert matched == ["qkz7w3e4c2d1"]
    sink = tmp_path / "events" / "14:00:00_14:59:59_S0.json"
    sink.parent.mkdir()
    sink.write_bytes(SAMPLE.read_bytes())
    run = run_files(loaded, [sink.parent])
    assert (run.events, run.rejected) == (3, [])
    assert [alert.rule_id for alert in run.alerts] == [rule.info.id]
