"""``auditcorr export``: the timeline as NDJSON, CSV and Elasticsearch bulk bodies."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import orjson
import pytest
from apisupport import DEMO
from itsupport import Workspace, alerts_as_they_stand, is_alert_entry

from daemon import export
from daemon.cli.main import main

pytestmark = pytest.mark.integration

DEMO_EVENTS = 377


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    workspace = Workspace(tmp_path_factory.mktemp("export"))
    workspace.write_config({"demo": {"path": DEMO}})
    result = workspace.backfill()
    assert result.returncode == 0, str(result)
    return workspace


@pytest.fixture(autouse=True)
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages of 50, so an export of the demo takes several pages."""
    monkeypatch.setattr(export, "PAGE", 50)


def run_export(demo: Workspace, *args: str) -> Path:
    out = demo.root / "out"
    assert main(["export", "--config", str(demo.config), *args, "-o", str(out)]) == 0
    return out


def test_ndjson_holds_every_event_once_oldest_first(demo: Workspace) -> None:
    """Across several pages every event is written exactly once, in time order: the demo's
    events and, as a backfill leaves them, one entry per alert."""
    docs = [
        orjson.loads(line)
        for line in run_export(demo, "--format", "ndjson").read_bytes().splitlines()
    ]
    ids = [doc["event"]["id"] for doc in docs]
    assert len(ids) == len(set(ids))
    assert sum(not is_alert_entry(doc) for doc in docs) == DEMO_EVENTS
    entries = Counter(doc["event"]["id"] for doc in docs if is_alert_entry(doc))
    assert entries == alerts_as_they_stand(demo.db)
    times = [doc["@timestamp"] for doc in docs]
    assert times == sorted(times)
    assert sorted(ids) == sorted(demo.timeline_ids())


def test_an_alert_exports_as_an_ecs_alert_event(demo: Workspace) -> None:
    """An alert's entry is an ECS document of kind alert, naming its rule and its alert."""
    lines = run_export(demo, "--format", "ecs-bulk", "--dataset", "auditcorr.alert")
    pairs = lines.read_bytes().splitlines()
    docs = [orjson.loads(line) for line in pairs[1::2]]
    (tampering,) = [doc for doc in docs if doc["rule"]["id"] == "cloudtrail_tampering"]
    assert tampering["event"]["kind"] == "alert"
    assert tampering["event"]["action"] == "alert_raised"
    assert tampering["event"]["severity"] >= 3
    assert tampering["labels"]["severity"] in {"high", "critical"}
    assert tampering["message"] == tampering["rule"]["name"]
    assert tampering["actor"] == "mallory" or tampering["related"]["user"] == ["mallory"]
    alert_id = tampering["labels"]["alert_id"]
    assert tampering["event"]["reference"] == f"/api/v1/alerts/{alert_id}"
    assert tampering["original"]["evidence"][0]["event.action"] == "StopLogging"


def test_csv_has_a_header_and_a_row_per_filtered_event(demo: Workspace) -> None:
    """Filters apply: mallory's events, one CSV row each under the header."""
    with run_export(demo, "--format", "csv", "--user", "mallory").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(demo.timeline_ids("--user", "mallory"))
    assert {row["user.name"] for row in rows} == {"mallory"}
    assert rows[0]["event.action"] == "ConsoleLogin"
    assert rows[0]["cloud.account.id"] == "111111111111"


def test_ecs_bulk_is_create_actions_keyed_by_event_id(demo: Workspace) -> None:
    """Each event is a create action with _id = event.id into the named index, then the doc."""
    lines = run_export(demo, "--format", "ecs-bulk", "--index", "audit-demo", "-q", "StopLogging")
    action, doc = (orjson.loads(line) for line in lines.read_bytes().splitlines())
    assert action == {"create": {"_index": "audit-demo", "_id": doc["event"]["id"]}}
    assert doc["event"]["action"] == "StopLogging"
