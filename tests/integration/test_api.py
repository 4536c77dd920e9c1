"""The HTTP API of a running daemon holding the demo, over real HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from apisupport import TOKENS, ApiDaemon, outward_address, serve_demo
from metricsupport import samples, value
from prometheus_client import CONTENT_TYPE_LATEST
from testdata import unavailable

pytestmark = pytest.mark.integration

DEMO_EVENTS = 377
"""Events in examples/demo (one day, three accounts)."""


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiDaemon]:
    with serve_demo(
        tmp_path_factory.mktemp("api"),
        listen="0.0.0.0:0",
        extra="max_page_size = 500\nallow_plain_http = true",
    ) as served:
        yield served


def all_pages(api: ApiDaemon, query: str) -> list[dict[str, object]]:
    events: list[dict[str, object]] = []
    cursor = ""
    for _ in range(50):
        page = api.get(f"/api/v1/events?{query}{cursor}").json()
        events += page["events"]
        if page["next_cursor"] is None:
            return events
        cursor = f"&cursor={page['next_cursor']}"
    raise AssertionError("pagination did not end")


def alert_entries(api: ApiDaemon, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The alerts' entries among listed events; every alert has one at its count now."""
    entries = [e for e in events if e["lane"] == "alert"]
    assert all(e["source"] == "rules" and e["log_type"] == "alert" for e in entries)
    alerts = api.get("/api/v1/alerts?limit=1000").json()["alerts"]
    assert alerts, "the demo raises alerts"
    listed = {e["document"]["event"]["id"] for e in entries}
    assert {f"{a['id']}-{a['count']}" for a in alerts} <= listed
    return entries


def test_pages_walk_the_whole_timeline_once_in_order(api: ApiDaemon) -> None:
    """Following next_cursor lists every event exactly once, newest first by default:
    the demo's events and the entries of the alerts they raised."""
    events = all_pages(api, "limit=100")
    ids = [e["id"] for e in events]
    assert len(ids) == len(set(ids))
    times = [e["document"]["@timestamp"] for e in events]
    assert times == sorted(times, reverse=True)
    read = [e for e in events if e["lane"] == "cloud"]
    assert len(read) == DEMO_EVENTS
    assert all(e["source"] == "demo" for e in read)
    assert len(read) + len(alert_entries(api, events)) == len(events)
    assert "original" not in events[0]["document"]  # type: ignore[operator]
    oldest = all_pages(api, "limit=150&order=oldest")
    assert [e["id"] for e in oldest] == ids[::-1]


def test_filters_and_full_text_select_the_story(api: ApiDaemon) -> None:
    """user, outcome, q and a time range narrow the timeline to mallory's break-in."""
    page = api.get("/api/v1/events?user=mallory&order=oldest&limit=500").json()
    actions = [e["document"]["event"]["action"] for e in page["events"]]
    assert actions[:6] == ["ConsoleLogin"] * 6
    assert "StopLogging" in actions
    failures = api.get("/api/v1/events?user=mallory&outcome=failure").json()["events"]
    assert len(failures) == 6
    (stop,) = api.get("/api/v1/events?q=StopLogging").json()["events"]
    assert stop["document"]["user"]["name"] == "mallory"
    window = api.get(
        "/api/v1/events?ip=203.0.113.66&since=2026-11-20T02:11:00Z&until=2026-11-20T02:12:30Z"
    ).json()["events"]
    assert window
    for event in window:
        assert "2026-11-20T02:11:00Z" <= event["document"]["@timestamp"] <= "2026-11-20T02:12:30Z"
        assert event["document"]["source"]["ip"] == "203.0.113.66"
    assert {"ConsoleLogin", "success"} <= {
        value
        for e in window
        for value in (e["document"]["event"]["action"], e["document"]["event"]["outcome"])
    }


def test_one_event_has_its_original_record(api: ApiDaemon) -> None:
    """events/{id} returns the full ECS document with the CloudTrail record it came from."""
    (listed,) = api.get("/api/v1/events?q=StopLogging").json()["events"]
    full = api.get(f"/api/v1/events/{listed['id']}").json()
    assert full["document"]["original"]["eventName"] == "StopLogging"
    assert full["document"]["event"]["id"] == listed["document"]["event"]["id"]
    assert api.get("/api/v1/events/12345").status == 404
    assert api.get("/api/v1/events/abc").status == 400


def test_bad_parameters_are_400_naming_the_parameter(api: ApiDaemon) -> None:
    """A malformed or out-of-limit parameter is refused with its name in the message."""
    for query, name in [
        ("limit=501", "limit"),
        ("limit=-1", "limit"),
        ("since=yesterday", "since"),
        ("outcome=maybe", "outcome"),
        ("cursor=x1", "cursor"),
    ]:
        answer = api.get(f"/api/v1/events?{query}")
        assert answer.status == 400, query
        assert answer.json()["error"].startswith(f"{name}:")


def test_histogram_counts_every_event_by_lane(api: ApiDaemon) -> None:
    """Buckets over the demo day add up to every event: the trail in the cloud lane, the
    alerts' entries in the alert lane."""
    data = api.get(
        "/api/v1/histogram?since=2026-11-20T00:00:00Z&until=2026-11-20T23:59:59Z&interval=1h"
    ).json()
    assert data["interval_secs"] == 3600
    assert len(data["buckets"]) == 24
    assert sum(b["cloud"] for b in data["buckets"]) == DEMO_EVENTS
    assert sum(b["onprem"] + b["change"] for b in data["buckets"]) == 0
    entries = alert_entries(api, all_pages(api, "limit=500"))
    assert sum(b["alert"] for b in data["buckets"]) == len(entries)
    two = data["buckets"][2]
    assert two["start"] == "2026-11-20T02:00:00Z"
    in_hour = all_pages(api, "limit=500&since=2026-11-20T02:00:00Z&until=2026-11-20T02:59:59.999Z")
    assert two["cloud"] == sum(e["lane"] == "cloud" for e in in_hour)
    assert two["alert"] == sum(e["lane"] == "alert" for e in in_hour) > 0
    assert api.get("/api/v1/histogram?since=2026-11-21&until=2026-11-20").status == 400
    assert api.get("/api/v1/histogram?since=2020-01-01&until=2026-01-01&interval=1m").status == 400


def test_sources_and_metrics_report_the_pipeline(api: ApiDaemon) -> None:
    """/sources and /metrics show the source running with its counts and lag."""
    (source,) = api.get("/api/v1/sources").json()["sources"]
    assert source["id"] == "demo"
    assert source["type"] == "cloudtrail_files"
    assert source["state"] == "running"
    assert source["stored"] == DEMO_EVENTS
    assert source["newest"] == "2026-11-20T23:03:29Z"
    assert source["lag_secs"] > 0
    answer = api.get("/metrics")
    assert answer.headers["Content-Type"] == CONTENT_TYPE_LATEST
    found = samples(answer.body.decode())
    assert value(found, "auditcorr_events_stored_total", source="demo") == DEMO_EVENTS
    assert (value(found, "auditcorr_source_lag_seconds", source="demo") or 0) > 0
    assert value(found, "auditcorr_queue_depth", queue="raw") == 0
    assert (value(found, "auditcorr_store_write_seconds_count") or 0) > 0
    assert (value(found, "process_resident_memory_bytes") or 0) > 0
    assert api.get("/healthz").json() == {"status": "ok"}
    assert api.get("/readyz").json() == {"status": "ready"}


def test_the_page_and_its_files_are_served(api: ApiDaemon) -> None:
    """/ is the web timeline; its script and style come from /static."""
    page = api.get("/")
    assert page.status == 200
    assert b'<ol id="timeline"' in page.body
    for name in ("app.js", "app.css"):
        assert api.get(f"/static/{name}").status == 200


def test_tokens_and_roles(api: ApiDaemon) -> None:
    """Loopback reads without a token; a wrong token is 401; a reader may not read quarantine."""
    assert api.get("/api/v1/events?limit=1").status == 200
    assert api.get("/api/v1/events?limit=1", token="not-a-token").status == 401
    assert api.get("/api/v1/events?limit=1", token=TOKENS["reader"]).status == 200
    forbidden = api.get("/api/v1/quarantine", token=TOKENS["reader"])
    assert forbidden.status == 403
    assert "admin" in forbidden.json()["error"]
    assert api.get("/api/v1/quarantine").status == 403
    assert api.get("/api/v1/quarantine", token=TOKENS["admin"]).json() == {"entries": []}


def test_other_addresses_need_a_token(api: ApiDaemon) -> None:
    """From a non-loopback address, reads need a token; health checks do not."""
    address = outward_address()
    if address is None:
        unavailable("this machine has no non-loopback address to test from")
    base = f"http://{address}:{api.port}"
    refused = api.get("/api/v1/events?limit=1", base=base)
    assert refused.status == 401
    assert refused.headers["WWW-Authenticate"] == "Bearer"
    assert api.get("/metrics", base=base).status == 401
    assert api.get("/healthz", base=base).status == 200
    assert api.get("/api/v1/events?limit=1", base=base, token=TOKENS["reader"]).status == 200


def test_schemathesis_finds_the_api_true_to_its_openapi_document(
    api: ApiDaemon, tmp_path: Path
) -> None:
    """A schemathesis run over /api/v1/openapi.json finds no response outside the document.

    Its ``positive_data_acceptance`` check is left out: a pair of valid
    parameters can still be refused with a documented 400 (``since`` after
    ``until``, an age too long to compute), which OpenAPI cannot express.
    """
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            f"{api.url}api/v1/openapi.json",
            "--max-examples",
            "8",
            "--phases",
            "coverage,fuzzing",
            "--seed",
            "20261127",
            "--exclude-checks",
            "positive_data_acceptance",
            "--header",
            f"Authorization: Bearer {TOKENS['admin']}",
            "--report-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        cwd=tmp_path,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
