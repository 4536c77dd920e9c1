"""``/metrics`` of a running API server, read with the Prometheus client's parser."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import orjson
import pytest
from metricsupport import Samples, samples, value
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from connectors.config import Secret
from connectors.sources.changes_http import ChangesHttpConfig
from daemon.api.intake import IntakeRouter
from daemon.api.server import ApiServer
from daemon.config import ApiSection
from daemon.logtypes import normalize_record
from daemon.pipeline import Pipeline
from daemon.store.sqlite import SqliteStore

TOKEN = "changes-token-1234567890"
ROUTE = "/api/v1/changes"


@dataclass
class Served:
    url: str
    session: aiohttp.ClientSession

    async def scrape(self) -> str:
        async with self.session.get(f"{self.url}metrics") as answer:
            assert answer.status == 200
            assert answer.headers["Content-Type"] == CONTENT_TYPE_LATEST
            return await answer.text()

    async def found(self) -> Samples:
        return samples(await self.scrape())

    async def push(self, change_id: str) -> None:
        record = {
            "id": change_id,
            "state": "approved",
            "implementers": ["alice"],
            "window": {"start": "2026-11-20T09:00:00Z", "end": "2026-11-20T09:30:00Z"},
        }
        async with self.session.post(
            f"{self.url}{ROUTE.lstrip('/')}",
            data=orjson.dumps(record),
            headers={"Authorization": f"Bearer {TOKEN}"},
        ) as answer:
            assert answer.status < 300, await answer.text()


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    """A following pipeline with a changes_http source behind the real API server."""
    path = tmp_path / "timeline.db"
    store = SqliteStore(path, retention_days=0, normalize=normalize_record)
    intake = IntakeRouter()
    source = ChangesHttpConfig(type="changes_http", token=Secret(TOKEN, "inline"))
    pipeline = Pipeline(store, {"itsm": source}, workers=1, intake=intake)
    server = ApiServer(
        ApiSection(listen="127.0.0.1:0"),
        pipeline,
        intake,
        lambda: SqliteStore(path, retention_days=0, readonly=True, normalize=normalize_record),
        ZoneInfo("UTC"),
        trail=pipeline,
    )
    running = asyncio.create_task(pipeline.run())
    try:
        async with server, aiohttp.ClientSession() as session:
            await asyncio.wait_for(pipeline.started.wait(), 10)
            for _ in range(100):  # the source registers its route once it runs
                if intake.find("POST", ROUTE):
                    break
                await asyncio.sleep(0.05)
            yield Served(server.url, session)
    finally:
        pipeline.stop()
        await asyncio.wait_for(running, 30)
        store.close()


async def _stored_past(served: Served, count: float) -> Samples:
    """The scrape once the source has stored more than ``count`` events."""
    for _ in range(200):
        found = await served.found()
        if (value(found, "auditcorr_events_stored_total", source="itsm") or 0) > count:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"no more than {count} events stored")


def _count(found: Samples, name: str, **labels: str) -> float:
    seen = value(found, name, **labels)
    assert seen is not None, name
    return seen


async def test_counters_and_store_latency_move_as_events_flow(served: Served) -> None:
    """Each pushed record raises the source's stored and read counters and the store
    write histogram's count; the source is up and its lag is exposed."""
    before = await served.found()
    assert _count(before, "auditcorr_events_stored_total", source="itsm") == 0
    assert _count(before, "auditcorr_source_up", source="itsm") == 1
    await served.push("CHG0000001")
    once = await _stored_past(served, 0)
    await served.push("CHG0000002")
    twice = await _stored_past(served, _count(once, "auditcorr_events_stored_total", source="itsm"))
    for found in (once, twice):
        stored = _count(found, "auditcorr_events_stored_total", source="itsm")
        assert _count(found, "auditcorr_records_read_total", source="itsm") == stored
    writes = "auditcorr_store_write_seconds_count"
    assert _count(before, writes) < _count(once, writes) < _count(twice, writes)
    top = _count(twice, "auditcorr_store_write_seconds_bucket", le="+Inf")
    assert top == _count(twice, writes)
    assert _count(twice, "auditcorr_source_lag_seconds", source="itsm") >= 0


async def test_requests_are_timed_by_route_pattern(served: Served) -> None:
    """Requests count under their route's pattern (not the path asked), push-source
    requests under their path, and requests no route serves under ``unmatched``."""
    await served.push("CHG0000003")
    for path in ("api/v1/events/1", "api/v1/events/2", "nowhere"):
        async with served.session.get(f"{served.url}{path}") as answer:
            await answer.read()
    found = await served.found()
    name = "auditcorr_http_request_duration_seconds_count"
    assert value(found, name, route="/api/v1/events/{id}", method="GET") == 2
    assert value(found, name, route=ROUTE, method="POST") == 1
    assert value(found, name, route="unmatched", method="GET") == 1
    assert not any("/api/v1/events/1" in dict(labels).values() for _, labels in found)


async def test_families_have_the_documented_types(served: Served) -> None:
    """Counters, gauges and histograms are typed as such, with the names dashboards use;
    the process and platform collectors are there."""
    types = {f.name: f.type for f in text_string_to_metric_families(await served.scrape())}
    for counter in ("events_stored", "records_read", "events_dropped", "alerts_raised"):
        assert types[f"auditcorr_{counter}"] == "counter"
    for gauge in ("source_lag_seconds", "source_up", "queue_depth", "outbox_deliveries"):
        assert types[f"auditcorr_{gauge}"] == "gauge"
    assert types["auditcorr_store_write_seconds"] == "histogram"
    assert types["auditcorr_http_request_duration_seconds"] == "histogram"
    assert types["process_resident_memory_bytes"] == "gauge"
    assert types["python_info"] == "gauge"
