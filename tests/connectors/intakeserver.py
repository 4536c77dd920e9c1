"""A real aiohttp server implementing the ``Intake`` contract, for push-source tests.

It stands in for the daemon's API server: routes are added and removed while
it runs, the body size limit is its own, and handlers see ``IntakeRequest``s.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from aiohttp import web

from connectors.base import Intake, IntakeHandler, IntakeRequest


class AiohttpIntake(Intake):
    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], IntakeHandler] = {}

    def route(
        self, method: str, path: str, handler: IntakeHandler, *, max_body_bytes: int
    ) -> Callable[[], None]:
        key = (method.upper(), path)
        self.routes[key] = handler

        def remove() -> None:
            self.routes.pop(key, None)

        return remove

    async def dispatch(self, request: web.Request) -> web.Response:
        handler = self.routes.get((request.method, request.path))
        if handler is None:
            return web.json_response({"error": "no such route"}, status=404)
        body = await request.read()
        peer = request.remote or "unknown"
        answer = await handler(
            IntakeRequest(request.method, request.path, dict(request.headers), body, peer)
        )
        return web.json_response(answer.body, status=answer.status)


@asynccontextmanager
async def serve_intake(
    max_body_bytes: int = 8 * 1024 * 1024,
) -> AsyncIterator[tuple[AiohttpIntake, str]]:
    """An intake listening on an ephemeral port; yields it and its base URL."""
    intake = AiohttpIntake()
    app = web.Application(client_max_size=max_body_bytes)
    app.router.add_route("*", "/{tail:.*}", intake.dispatch)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield intake, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
