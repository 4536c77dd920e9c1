"""Secrets that connector docs examples name as ``env:`` references, and an
HTTP endpoint with nothing to read for the examples' ``endpoint`` settings."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web


@pytest.fixture(autouse=True)
def example_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDITCORR_CHANGES_TOKEN", "example-token")
    monkeypatch.setenv("SERVICENOW_PASSWORD", "example-password")


@pytest.fixture
async def empty_endpoint() -> AsyncIterator[str]:
    """A local HTTP server answering every GET with an empty result list."""

    async def empty(request: web.Request) -> web.Response:
        return web.json_response({"result": []})

    app = web.Application()
    app.router.add_get("/{tail:.*}", empty)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()
