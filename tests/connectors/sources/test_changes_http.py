"""The changes_http source through a real HTTP server and the real pipeline and store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from intakeserver import AiohttpIntake, serve_intake

from connectors.base import RawBatch, SourceContext
from connectors.config import Secret
from connectors.sources.changes_http import ChangesHttpConfig, ChangesHttpSource
from daemon.logtypes import normalize_record
from daemon.pipeline import Pipeline
from daemon.store.base import EventQuery
from daemon.store.sqlite import SqliteStore

TOKEN = "s3cret-token"
RECORD = {
    "id": "CHG0031001",
    "state": "approved",
    "implementers": ["alice"],
    "window": {"start": "2026-11-20T09:00:00Z", "end": "2026-11-20T09:30:00Z"},
}


@dataclass
class Daemon:
    url: str
    store: SqliteStore
    session: aiohttp.ClientSession

    async def post(
        self, body: Any, *, token: str = TOKEN, raw: bytes | None = None
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        async with self.session.post(
            f"{self.url}/api/v1/changes", json=None if raw else body, data=raw, headers=headers
        ) as response:
            return response.status, await response.json()


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Daemon]:
    """The pipeline with one changes_http source, served by a real aiohttp intake."""
    store = SqliteStore(tmp_path / "timeline.db", retention_days=0, normalize=normalize_record)
    config = ChangesHttpConfig(
        type="changes_http", token=Secret(TOKEN, "inline"), max_body_bytes=4096
    )
    async with serve_intake() as (intake, url):
        pipeline = Pipeline(store, {"itsm": config}, workers=1, intake=intake)
        task = asyncio.create_task(pipeline.run())
        await _routed(intake)
        try:
            async with aiohttp.ClientSession() as session:
                yield Daemon(url, store, session)
        finally:
            pipeline.stop()
            await task
            store.close()


async def _routed(intake: AiohttpIntake) -> None:
    for _ in range(200):
        if intake.routes:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the source never registered its route")


async def test_accepted_records_are_on_the_timeline_when_answered(daemon: Daemon) -> None:
    """200 comes after the commit: the record and its window are in the store."""
    status, body = await daemon.post(RECORD)
    assert (status, body) == (200, {"accepted": 1, "ids": ["CHG0031001"]})
    assert [r["id"] for r in daemon.store.change_records()] == ["CHG0031001"]
    actions = [d["event"]["action"] for d in daemon.store.search(EventQuery(dataset="change"))]
    assert sorted(actions) == ["change_recorded", "change_window_closed", "change_window_opened"]


async def test_posting_again_is_idempotent_and_a_new_version_keeps_history(daemon: Daemon) -> None:
    """The same record twice stores it once; changed content is a new version."""
    await daemon.post(RECORD)
    await daemon.post([RECORD])
    assert len(daemon.store.change_history("CHG0031001")) == 1
    assert daemon.store.count() == 3
    status, _ = await daemon.post({**RECORD, "state": "completed"})
    assert status == 200
    assert [h["state"] for h in daemon.store.change_history("CHG0031001")] == [
        "approved",
        "completed",
    ]
    assert daemon.store.change_records()[0]["state"] == "completed"


async def test_a_wrong_or_missing_token_is_401(daemon: Daemon) -> None:
    status, body = await daemon.post(RECORD, token="guess")
    assert status == 401
    assert body == {"error": "missing or wrong bearer token"}
    async with daemon.session.post(f"{daemon.url}/api/v1/changes", json=RECORD) as response:
        assert response.status == 401
    assert daemon.store.change_records() == []


async def test_an_oversized_body_is_413(daemon: Daemon) -> None:
    status, body = await daemon.post([RECORD] * 50)
    assert status == 413
    assert "exceeds 4096" in body["error"]


async def test_invalid_records_are_400_naming_every_problem(daemon: Daemon) -> None:
    """No id, no window, end before start, unknown state: nothing of the request is kept
    but the quarantine entry."""
    bad = [
        {k: v for k, v in RECORD.items() if k != "id"},
        {
            **RECORD,
            "id": "CHG2",
            "window": {"start": "2026-11-20T10:00Z", "end": "2026-11-20T09:00Z"},
        },
        {**RECORD, "id": "CHG3", "state": "done"},
        {k: v for k, v in RECORD.items() if k != "window"} | {"id": "CHG4"},
        RECORD,
    ]
    status, body = await daemon.post(bad)
    assert status == 400
    assert body["error"] == "invalid change record(s); none were accepted"
    assert [(p["index"], p["id"]) for p in body["problems"]] == [
        (0, None),
        (1, "CHG2"),
        (2, "CHG3"),
        (3, "CHG4"),
    ]
    assert body["problems"][0]["problems"] == ["missing id"]
    assert "before it starts" in body["problems"][1]["problems"][0]
    assert daemon.store.change_records() == []
    (kept,) = daemon.store.quarantine()
    assert kept.reason.startswith("refused: invalid change record(s)")


async def test_a_body_that_is_not_json_is_400(daemon: Daemon) -> None:
    status, body = await daemon.post(None, raw=b"{oops")
    assert status == 400
    assert body["error"].startswith("body is not JSON")


async def test_without_an_http_server_the_source_fails_with_a_config_error() -> None:
    """changes_http in a daemon without [api] says what is missing."""
    config = ChangesHttpConfig(type="changes_http", token=Secret(TOKEN, "inline"))

    async def emit(batch: RawBatch) -> Any:
        raise AssertionError("nothing to emit")

    source = ChangesHttpSource(config, SourceContext("itsm", {}))
    with pytest.raises(Exception, match=r"needs the daemon's HTTP server"):
        await source.run(emit)
