"""What a user sees of the bundled demo while ``auditcorr run --config config.toml`` runs:
each source's counts on the API and ``/metrics``, ``doctor`` on the store the daemon holds
open, the order of ``alerts`` and the ``timeline`` table."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from apisupport import ApiDaemon, served
from itsupport import ALERT_SOURCE, bundled_demo, wait_for
from metricsupport import samples

from daemon.normalize.audit import SOURCE as AUDIT_SOURCE
from daemon.store import schema

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiDaemon]:
    workspace = bundled_demo(tmp_path_factory.mktemp("demo-run"))
    with served(workspace, "demo") as api:
        yield api


def counts_in_store(db: Path) -> dict[str, int]:
    """Events per source as the store holds them (the alerts' own entries and the daemon's
    audit entries, such as the identity map it started with, left out)."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)) as c:
        rows = c.execute(
            "SELECT source, count(*) FROM events WHERE source NOT IN (?, ?) GROUP BY source",
            (ALERT_SOURCE, AUDIT_SOURCE),
        ).fetchall()
    return {str(source): int(count) for source, count in rows}


def test_each_source_is_credited_with_the_events_it_stored(demo: ApiDaemon) -> None:
    """/api/v1/sources and /metrics give each source exactly the events the store holds
    from it, though the writer commits batches of several sources together."""

    def matching() -> dict[str, int] | None:
        in_store = counts_in_store(demo.workspace.db)
        listed = demo.get("/api/v1/sources").json()["sources"]
        api = {row["id"]: row["stored"] for row in listed if row["stored"]}
        return in_store if len(in_store) == len(listed) and api == in_store else None

    expected = wait_for(
        "each source's stored count to match the store",
        matching,
        timeout=60,
        interval=0.5,
        context=lambda: (
            f"store: {counts_in_store(demo.workspace.db)}\n"
            f"api: {demo.get('/api/v1/sources').json()}"
        ),
    )
    exported = {
        dict(labels)["source"]: int(count)
        for (name, labels), count in samples(demo.get("/metrics").body.decode()).items()
        if name == "auditcorr_events_stored_total"
    }
    assert exported == expected


def test_doctor_reads_the_store_the_daemon_holds_open(demo: ApiDaemon) -> None:
    """``doctor`` on a running daemon's store sees its schema through the WAL: no upgrade
    promised for a store that is current."""
    result = demo.workspace.cli("doctor")
    line = next(x for x in result.stdout.splitlines() if "store writable" in x)
    assert f"(schema {len(schema.MIGRATIONS)})" in line, result.stdout
    assert "upgraded" not in line


def test_alerts_are_listed_in_the_order_they_began(demo: ApiDaemon) -> None:
    """``auditcorr alerts`` lists oldest first by each alert's first event, the time it prints."""
    result = demo.workspace.cli("alerts")
    assert result.returncode == 0, str(result)
    times = [line[:19] for line in result.stdout.splitlines()[:-1]]
    assert len(times) > 1, result.stdout
    assert times == sorted(times)


def test_the_timeline_table_shows_what_changes_covering_takes(demo: ApiDaemon) -> None:
    """``auditcorr timeline`` shows each event's whole dataset and its id, and that id is
    one ``changes --covering`` finds."""
    result = demo.workspace.cli("timeline", "--dataset", "system.auth", "--limit", "3")
    assert result.returncode == 0, str(result)
    header, first, *_ = result.stdout.splitlines()
    assert header.split()[:4] == ["time", "dataset", "event", "id"]
    _, _, dataset, event_id, *_ = first.split()
    assert dataset == "system.auth"
    covering = demo.workspace.cli("changes", "--covering", event_id)
    assert covering.returncode == 0, str(covering)
