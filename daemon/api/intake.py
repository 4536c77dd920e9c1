"""Routes that push sources (``changes_http``) serve on the API's server.

The server applies its body-size and time limits before a handler runs;
authentication is the handler's (each source has its own token), so intake
requests bypass the API's token check.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog
from aiohttp import web

from connectors.base import Intake, IntakeHandler, IntakeRequest
from daemon.api.replies import problem, reply

log = structlog.get_logger()


class IntakeRouter(Intake):
    def __init__(self) -> None:
        self._routes: dict[tuple[str, str], IntakeHandler] = {}
        self.timeout_secs = 10.0
        """Set by the server from ``[api] query_timeout_secs``."""

    def route(self, method: str, path: str, handler: IntakeHandler) -> Callable[[], None]:
        key = (method.upper(), path)
        if key in self._routes:
            raise ValueError(f"{method} {path} is already served by another source")
        self._routes[key] = handler

        def remove() -> None:
            if self._routes.get(key) is handler:
                del self._routes[key]

        return remove

    def find(self, method: str, path: str) -> IntakeHandler | None:
        return self._routes.get((method.upper(), path))

    async def serve(self, request: web.Request, handler: IntakeHandler) -> web.Response:
        """Read the body within the size limit, call the handler within the time limit."""
        body = await request.read()  # over client_max_size: 413 from aiohttp
        peer = request.remote or ""
        incoming = IntakeRequest(request.method, request.path, dict(request.headers), body, peer)
        try:
            async with asyncio.timeout(self.timeout_secs):
                answer = await handler(incoming)
        except TimeoutError:
            log.warning("intake_timed_out", path=request.path, peer=peer)
            raise problem(
                web.HTTPServiceUnavailable, f"not handled within {self.timeout_secs:g} s"
            ) from None
        return reply(answer.body, status=answer.status)
