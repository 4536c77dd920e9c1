"""``auditcorr backfill`` and ``timeline`` on a PostgreSQL store, as an operator runs them."""

from __future__ import annotations

import gzip
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from itsupport import EXAMPLES, Workspace, copy_demo_trail, is_alert_entry, toml_value

sys.path.insert(0, str(Path(__file__).parents[1] / "daemon" / "store"))

from storesupport import SERVER, module_database, server_reachable

pytestmark = pytest.mark.integration


@pytest.fixture
def dsn(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh database, its DSN in ``AUDITCORR_TEST_DSN`` as a deployment would pass it."""
    if not server_reachable():
        pytest.skip("PostgreSQL is not running on 127.0.0.1:5432")
    with module_database() as database:
        found = f"{SERVER} dbname={database}"
        monkeypatch.setenv("AUDITCORR_TEST_DSN", found)
        yield found


def demo_event_ids() -> set[str]:
    """Every eventID of the demo trail, read straight from its files."""
    return {
        record["eventID"]
        for path in (EXAMPLES / "demo" / "AWSLogs").rglob("*.json.gz")
        for record in orjson.loads(gzip.decompress(path.read_bytes()))["Records"]
    }


def test_backfill_twice_into_postgresql_lists_every_event_once(
    workspace: Workspace, dsn: str
) -> None:
    """Two backfills of the demo trail into PostgreSQL: the timeline holds each event once,
    the second run stores nothing new, and no SQLite file is made."""
    copy_demo_trail(workspace)
    workspace.config.write_text(
        f"""
[daemon]
state_dir = {toml_value(workspace.state)}
workers = 1

[store]
type = "postgresql"
dsn = "env:AUDITCORR_TEST_DSN"
retention_days = 0

[sources.trail]
type = "cloudtrail_files"
path = {toml_value(workspace.data / "trail")}
"""
    )
    expected = demo_event_ids()
    first = workspace.backfill()
    assert first.returncode == 0, str(first)
    second = workspace.backfill()
    assert second.returncode == 0, str(second)
    assert "stored=0" in second.stdout, str(second)

    timeline = workspace.timeline()
    ids = Counter(doc["event"]["id"] for doc in timeline if not is_alert_entry(doc))
    assert set(ids) == expected
    assert set(ids.values()) == {1}
    assert not workspace.db.exists()

    alerts = workspace.cli("alerts", "--json")
    assert alerts.returncode == 0, str(alerts)
    raised = [orjson.loads(line)["id"] for line in alerts.stdout.splitlines()]
    assert raised, "the demo trail raises alerts with the built-in rules"
    assert len(raised) == len(set(raised))
    # Each alert is on the timeline once, as it stands after the first backfill.
    entries = Counter(doc["labels"]["alert_id"] for doc in timeline if is_alert_entry(doc))
    assert set(entries) == set(raised)
    assert set(entries.values()) == {1}
