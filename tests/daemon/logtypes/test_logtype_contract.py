"""Every registered log type keeps its declaration: one contract over the registry.

Each log type has ``tests/fixtures/<log type>/``: a sample input as a source
delivers it and ``expected.json``, the ECS fields each event must carry, whether
it is a change and its scope action, the person behind it (``people.json``),
and whether ``rules test`` reads the file as this log type.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from daemon import logtypes
from daemon.api.lanes import LANES
from daemon.changes.coverage import facts_of
from daemon.identity import build
from daemon.normalize import Limits
from daemon.rules.logsource import source_for
from tests.daemon.normalize.normsupport import flat

FIXTURES = Path(__file__).parents[2] / "fixtures"
MTIME_NS = 1795305600 * 10**9
"""2026-11-21: the year of syslog stamps that have none."""
PEOPLE = build(json.loads((FIXTURES / "people.json").read_text()))


def events(name: str) -> tuple[list[tuple[Any, dict[str, Any]]], dict[str, Any]]:
    """The fixture's events (with their documents) and its expectations."""
    log_type = logtypes.get(name)
    folder = FIXTURES / name
    expected = json.loads((folder / "expected.json").read_text())
    path = folder / expected["input"]
    payload = log_type.file_payload(path.name, MTIME_NS, path.read_bytes())
    found = []
    for record in log_type.decode(payload, Limits()):
        event = log_type.normalize(record)
        found.append((event, event.to_document()))
    return found, expected


@pytest.fixture(params=sorted(logtypes.REGISTRY))
def name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_the_sample_normalizes_to_the_declared_ecs_fields(name: str) -> None:
    """Decode and normalize turn the sample into the ECS fields the fixture expects."""
    found, expected = events(name)
    assert len(found) == len(expected["events"])
    for (_, doc), wanted in zip(found, expected["events"], strict=True):
        fields = flat(doc)
        assert {key: fields.get(key) for key in wanted["ecs"]} == wanted["ecs"]


def test_its_events_carry_its_datasets(name: str) -> None:
    """Document questions find a log type by dataset: its events carry one it declares."""
    log_type = logtypes.get(name)
    found, _ = events(name)
    if log_type.datasets:
        assert {event.dataset for event, _ in found} <= set(log_type.datasets)


def test_changes_and_their_scope_actions_are_as_declared(name: str) -> None:
    """Change classification and the scope action of each event match the fixture."""
    found, expected = events(name)
    for (_, doc), wanted in zip(found, expected["events"], strict=True):
        assert logtypes.is_change(doc) is wanted["change"], doc["event"]
        assert facts_of(doc).action == wanted["action"]


def test_principals_meet_the_identity_map(name: str) -> None:
    """The person behind each event, from the event and from its stored document alike."""
    found, expected = events(name)
    for (event, doc), wanted in zip(found, expected["events"], strict=True):
        assert PEOPLE.actor_of(event) == wanted["actor"]
        assert PEOPLE.actor_of_document(doc) == wanted["actor"]


def test_its_logsources_resolve_in_the_sigma_pipeline(name: str) -> None:
    """Every logsource it declares is what a rule naming it gets, over its own datasets."""
    log_type = logtypes.get(name)
    for (product, service, category), declared in log_type.logsources.items():
        assert source_for(product, service, category) is declared
        assert set(declared.datasets) <= set(log_type.datasets)


def test_rules_test_reads_the_sample_as_declared(name: str) -> None:
    """``rules test`` recognizes the sample file as this log type, where it claims files."""
    _, expected = events(name)
    path = FIXTURES / name / expected["input"]
    try:
        claimed = logtypes.of_file(path.name, path.read_bytes()[:65536]).name == name
    except ValueError:
        claimed = False  # a JSON file no log type reads
    assert claimed is expected["claims_file"]


def test_its_lane_is_one_the_page_draws(name: str) -> None:
    """The timeline page has a lane for it."""
    assert logtypes.get(name).lane in LANES


def test_the_change_category_covers_every_change_dataset() -> None:
    """``{product: auditcorr, category: change}`` selects the datasets of every log type
    that has change events."""
    change = source_for("auditcorr", None, "change")
    assert set(change.datasets) == set(logtypes.change_datasets())
    assert "aws.cloudtrail" in change.datasets
