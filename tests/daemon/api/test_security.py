"""The API server as an attacker meets it: Host and Origin checks, headers, bounded intake."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import orjson
import pytest
from structlog.testing import capture_logs

from connectors.config import Secret
from connectors.sources.changes_http import ChangesHttpConfig
from daemon.api.auth import hash_token
from daemon.api.intake import IntakeRouter
from daemon.api.server import ApiServer
from daemon.config import ApiSection, ApiToken
from daemon.logtypes import normalize_record
from daemon.pipeline import Pipeline
from daemon.store.base import EventQuery
from daemon.store.sqlite import SqliteStore

CHANGES_TOKEN = "changes-token-1234567890"
ADMIN_TOKEN = "admin-token-1234567890"
RECORD = {
    "id": "CHG0040001",
    "state": "approved",
    "implementers": ["alice"],
    "window": {"start": "2026-11-20T09:00:00Z", "end": "2026-11-20T09:30:00Z"},
}


@dataclass
class Served:
    url: str
    port: int
    store: SqliteStore
    session: aiohttp.ClientSession

    async def call(
        self, method: str, path: str, *, headers: dict[str, str] | None = None, body: Any = None
    ) -> tuple[int, aiohttp.typedefs.LooseHeaders, bytes]:
        async with self.session.request(
            method, f"{self.url}{path.lstrip('/')}", headers=headers, data=body
        ) as answer:
            return answer.status, answer.headers, await answer.read()

    async def post_changes(self, body: bytes) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {CHANGES_TOKEN}"}
        status, _, data = await self.call("POST", "/api/v1/changes", headers=headers, body=body)
        return status, orjson.loads(data)


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    """A following pipeline with a changes_http source (4 MiB bodies) behind the real API
    server (``[api] max_body_bytes`` 1 MiB, an admin token, ``api.example.com`` allowed)."""
    path = tmp_path / "timeline.db"
    store = SqliteStore(path, retention_days=0, normalize=normalize_record)
    intake = IntakeRouter()
    source = ChangesHttpConfig(
        type="changes_http", token=Secret(CHANGES_TOKEN, "inline"), max_body_bytes=4 << 20
    )
    pipeline = Pipeline(store, {"itsm": source}, workers=1, intake=intake)
    settings = ApiSection(
        listen="127.0.0.1:0",
        allowed_hosts=["api.example.com"],
        tokens=[ApiToken(name="ops-admin", role="admin", hash=hash_token(ADMIN_TOKEN))],
    )
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
        async with server, aiohttp.ClientSession() as session:
            await asyncio.wait_for(pipeline.started.wait(), 10)
            for _ in range(100):  # the source registers its route once it runs
                if intake.find("POST", "/api/v1/changes"):
                    break
                await asyncio.sleep(0.05)
            port = int(server.url.rstrip("/").rpartition(":")[2])
            yield Served(server.url, port, store, session)
    finally:
        pipeline.stop()
        await asyncio.wait_for(running, 30)
        store.close()


async def test_a_request_for_another_host_name_is_refused(served: Served) -> None:
    """DNS rebinding: a loopback request naming an unknown host gets 421 and no events;
    the listen address, localhost and allowed_hosts are served."""
    status, _, body = await served.call(
        "GET", "/api/v1/events", headers={"Host": f"evil.example:{served.port}"}
    )
    assert status == 421
    assert "allowed_hosts" in orjson.loads(body)["error"]
    for host in ("127.0.0.1", "localhost", "api.example.com", "API.Example.com."):
        status, _, _ = await served.call(
            "GET", "/api/v1/events", headers={"Host": f"{host}:{served.port}"}
        )
        assert status == 200, host
    missing, _, _ = await served.call("GET", "/healthz", headers={"Host": ""})
    assert missing == 421


async def test_a_cross_site_post_is_refused(served: Served) -> None:
    """A state-changing request whose Origin is another site is 403 before the handler;
    the server's own origin passes."""
    record = orjson.dumps(RECORD)
    headers = {"Authorization": f"Bearer {CHANGES_TOKEN}", "Origin": "https://evil.example"}
    status, _, _ = await served.call("POST", "/api/v1/changes", headers=headers, body=record)
    assert status == 403
    assert served.store.search(EventQuery()) == []
    headers["Origin"] = served.url.rstrip("/")
    status, _, _ = await served.call("POST", "/api/v1/changes", headers=headers, body=record)
    assert status == 200


async def test_every_reply_carries_the_security_headers(served: Served) -> None:
    """JSON, the page, its static files, a 404 and a 401 all carry CSP, nosniff, no-referrer
    and frame denial, and no version banner."""
    for path, expected in (
        ("/api/v1/events", 200),
        ("/", 200),
        ("/static/app.js", 200),
        ("/nowhere", 404),
        ("/api/v1/quarantine", 403),
    ):
        status, headers, _ = await served.call("GET", path)
        assert status == expected, path
        policy = headers["Content-Security-Policy"]
        assert "default-src 'self'" in policy
        assert "frame-ancestors 'none'" in policy
        assert "unsafe-inline" not in policy
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Server"] == "auditcorr"


async def test_every_request_is_logged_with_the_callers_token_name_and_role(
    served: Served,
) -> None:
    """The access log names the token holder and role, or loopback, for each request."""
    with capture_logs() as logs:
        await served.call("GET", "/api/v1/quarantine")
        await served.call(
            "GET", "/api/v1/quarantine", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )
    lines = [e for e in logs if e["event"] == "api_request"]
    assert [(e["caller"], e["role"], e["status"]) for e in lines] == [
        ("loopback", "reader", 403),
        ("ops-admin", "admin", 200),
    ]
    assert all(e["path"] == "/api/v1/quarantine" and e["method"] == "GET" for e in lines)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"id": ' + b"7" * 5000 + b"}", "more than 64 digits"),
        (b"[" * 100_000 + b"]" * 100_000, "nested 100000 levels deep"),
    ],
    ids=["5000-digit integer", "100000-deep nesting"],
)
async def test_hostile_json_is_400_and_quarantined(
    served: Served, body: bytes, reason: str
) -> None:
    """A huge integer or a deep nesting is refused before parsing with 400 naming the limit,
    and the body is kept in quarantine with that reason (no 500, no traceback)."""
    status, answer = await served.post_changes(body)
    assert status == 400
    assert reason in answer["error"]
    (kept,) = served.store.quarantine()
    assert reason in kept.reason
    assert kept.raw_size == len(body)
    assert body.startswith(kept.raw)


async def test_the_sources_body_limit_is_honoured_not_the_apis(served: Served) -> None:
    """A valid 2.1 MB body is accepted with the source at 4 MiB though [api] says 1 MiB;
    a body over 4 MiB is the documented JSON 413."""
    records = [RECORD | {"id": f"CHG{n:07d}", "title": "t" * 2100} for n in range(1000)]
    body = orjson.dumps(records)
    assert len(body) > 2_100_000
    status, answer = await served.post_changes(body)
    assert status == 200, answer
    assert answer["accepted"] == 1000
    over = b" " * (4 << 20) + orjson.dumps(RECORD)
    status, answer = await served.post_changes(over)
    assert status == 413
    assert answer == {"error": f"body of {len(over)} bytes exceeds {4 << 20}"}


@pytest.mark.parametrize(
    "query",
    [
        "since=100000w",
        "since=0001-01-01",
        "until=9999-12-31",
        "since=99999999999999999999d",
    ],
)
async def test_times_out_of_range_are_400(served: Served, query: str) -> None:
    """Times before 1970 or after 2200, absolute or as a duration ago, are refused naming
    the parameter, on the events and the histogram alike."""
    for path in ("/api/v1/events", "/api/v1/histogram"):
        status, _, body = await served.call("GET", f"{path}?{query}")
        assert status == 400, path
        assert orjson.loads(body)["error"].startswith(query.partition("=")[0] + ":")


async def test_a_histogram_interval_longer_than_its_span_is_400(served: Served) -> None:
    """interval=1000000d over a day is refused instead of answering a bucket at 1970;
    an interval as long as the span is one bucket near it."""
    span = "since=2026-11-20T00:00:00Z&until=2026-11-21T00:00:00Z"
    status, _, body = await served.call("GET", f"/api/v1/histogram?{span}&interval=1000000d")
    assert status == 400
    assert orjson.loads(body)["error"].startswith("interval: at most the span")
    status, _, body = await served.call("GET", f"/api/v1/histogram?{span}&interval=1d")
    assert status == 200
    starts = [bucket["start"] for bucket in orjson.loads(body)["buckets"]]
    assert starts[0].startswith("2026-11-20")


async def test_reading_the_quarantine_is_an_event_on_the_timeline(served: Served) -> None:
    """An admin's quarantine read through the API becomes an auditcorr.audit event naming
    the token, its role and the peer; a refused read leaves none."""
    await served.call("GET", "/api/v1/quarantine")  # loopback reader: 403
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    status, _, _ = await served.call("GET", "/api/v1/quarantine?source=itsm", headers=admin)
    assert status == 200
    found: list[Any] = []
    for _ in range(100):  # stored with the pipeline's next write
        found = served.store.page(EventQuery(dataset="auditcorr.audit"))
        if found:
            break
        await asyncio.sleep(0.05)
    (entry,) = found
    document = entry.document
    assert entry.source == "auditcorr"
    assert document["event"]["action"] == "quarantine_read"
    assert document["user"]["name"] == "ops-admin"
    assert document["labels"] == {"via": "api", "role": "admin"}
    assert document["source"]["ip"] == "127.0.0.1"
    assert document["original"]["target"] == "/api/v1/quarantine?source=itsm"
    assert document["original"]["detail"] == {"source": "itsm", "entries": 0}
