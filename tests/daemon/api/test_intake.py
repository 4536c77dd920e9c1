"""Push sources receive HTTP through the API server's intake routes, within its limits."""

from __future__ import annotations

import asyncio
import sys
import types
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import aiohttp
import orjson
import pytest
from structlog.testing import capture_logs

from connectors import registry
from connectors.base import Emit, IntakeRequest, IntakeResponse, RawBatch, Source
from connectors.config import ConnectorConfig
from daemon.api.intake import IntakeRouter
from daemon.api.server import ApiServer
from daemon.config import ApiSection
from daemon.logtypes import normalize_record
from daemon.pipeline import Pipeline
from daemon.store.base import EventQuery
from daemon.store.sqlite import SqliteStore

MODULE = "auditcorr_test_push_source"
SAMPLES = Path(__file__).parents[1] / "store" / "samples" / "cloudtrail_timeline.json"
RECORD = next(
    record
    for record in orjson.loads(SAMPLES.read_bytes())["Records"]
    if record["eventName"] == "ConsoleLogin"
)
"""mallory's console login, from the store tests' sample file."""


class PushConfig(ConnectorConfig):
    type: Literal["push"] = "push"
    path: str
    max_body_bytes: int = 8192


@pytest.fixture
def push_source(monkeypatch: pytest.MonkeyPatch) -> None:
    """A source that serves POST ``path``: the body is a CloudTrail file, stored before 202."""

    class PushSource(Source):
        config_model = PushConfig
        config: PushConfig

        async def run(self, emit: Emit) -> None:
            intake = self.context.intake
            assert intake is not None

            async def receive(request: IntakeRequest) -> IntakeResponse:
                if request.headers.get("X-Push-Token") != "s3cret":
                    return IntakeResponse(401, {"error": "bad token"})
                committed = await emit(RawBatch("cloudtrail", f"push:{request.peer}", request.body))
                await committed
                return IntakeResponse(202, {"stored": True})

            remove = intake.route(
                "POST", self.config.path, receive, max_body_bytes=self.config.max_body_bytes
            )
            try:
                await asyncio.Event().wait()
            finally:
                remove()

    module = types.ModuleType(MODULE)
    module.PushSource = PushSource  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, MODULE, module)
    monkeypatch.setitem(registry.SOURCES, "push", f"{MODULE}:PushSource")


@pytest.fixture
async def served(
    push_source: None, tmp_path: Path
) -> AsyncIterator[tuple[str, SqliteStore, IntakeRouter]]:
    """A pipeline following the push source, and the API server it is reachable through."""
    path = tmp_path / "timeline.db"
    store = SqliteStore(path, retention_days=0, normalize=normalize_record)
    intake = IntakeRouter()
    pipeline = Pipeline(
        store, {"pushed": PushConfig(path="/push/records")}, workers=1, intake=intake
    )
    settings = ApiSection(listen="127.0.0.1:0", max_body_bytes=1024, query_timeout_secs=20)
    server = ApiServer(
        settings,
        pipeline,
        intake,
        lambda: SqliteStore(path, retention_days=0, readonly=True, normalize=normalize_record),
        ZoneInfo("UTC"),
        trail=pipeline,
    )
    running = asyncio.create_task(pipeline.run())
    try:
        async with server:
            await asyncio.wait_for(pipeline.started.wait(), 10)
            for _ in range(100):  # the source registers its route once it runs
                if intake.find("POST", "/push/records"):
                    break
                await asyncio.sleep(0.05)
            yield server.url, store, intake
    finally:
        pipeline.stop()
        await asyncio.wait_for(running, 30)
        store.close()


async def test_a_pushed_body_is_stored_and_listed(
    served: tuple[str, SqliteStore, IntakeRouter],
) -> None:
    """POST to the source's route reaches its handler, whose events the API then lists."""
    url, store, _ = served
    body = orjson.dumps({"Records": [RECORD]})
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{url}push/records", data=body) as denied:
            assert denied.status == 401
        async with session.post(
            f"{url}push/records", data=body, headers={"X-Push-Token": "s3cret"}
        ) as answer:
            assert answer.status == 202
            assert await answer.json() == {"stored": True}
        async with session.get(f"{url}api/v1/events?user=mallory") as listed:
            (event,) = (await listed.json())["events"]
    assert event["document"]["event"]["id"] == RECORD["eventID"]
    assert event["source"] == "pushed"
    assert len(store.search(EventQuery())) == 1


async def test_the_route_body_limit_applies_before_the_handler(
    served: tuple[str, SqliteStore, IntakeRouter],
) -> None:
    """The source's own limit applies, not [api] max_body_bytes: a body within it is stored,
    one over it is refused with the documented JSON 413, logged, and stores nothing."""
    url, store, _ = served
    fits = orjson.dumps({"Records": [RECORD | {"padding": "x" * 3000}]})
    big = orjson.dumps({"Records": [RECORD | {"padding": "x" * 9000}]})
    headers = {"X-Push-Token": "s3cret"}
    with capture_logs() as logs:
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{url}push/records", data=big, headers=headers) as answer:
                assert answer.status == 413
                assert answer.content_type == "application/json"
                assert await answer.json() == {"error": f"body of {len(big)} bytes exceeds 8192"}
            assert store.search(EventQuery()) == []

            async def chunked() -> AsyncIterator[bytes]:
                yield big  # no Content-Length: the limit applies while reading

            async with session.post(
                f"{url}push/records", data=chunked(), headers=headers
            ) as answer:
                assert answer.status == 413
                assert await answer.json() == {"error": "body exceeds 8192 bytes"}
            async with session.post(f"{url}push/records", data=fits, headers=headers) as answer:
                assert answer.status == 202
    assert len(store.search(EventQuery())) == 1
    refused = [e for e in logs if e["event"] == "request_refused"]
    assert [e["status"] for e in refused] == [413, 413]


async def test_a_slow_handler_is_cut_off_at_the_time_limit(
    served: tuple[str, SqliteStore, IntakeRouter],
) -> None:
    """A handler running past the time limit answers 503; a route is served once."""
    url, _, intake = served
    intake.timeout_secs = 0.3  # the server sets it from [api] query_timeout_secs

    async def stuck(request: IntakeRequest) -> IntakeResponse:
        await asyncio.sleep(30)
        return IntakeResponse(200, {})

    remove = intake.route("POST", "/slow", stuck, max_body_bytes=100)
    with pytest.raises(ValueError, match="already served"):
        intake.route("post", "/slow", stuck, max_body_bytes=100)
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{url}slow", data=b"{}") as answer:
            assert answer.status == 503
        remove()
        async with session.post(f"{url}slow", data=b"{}") as gone:
            assert gone.status == 404
