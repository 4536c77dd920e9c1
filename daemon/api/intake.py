"""Routes that push sources (``changes_http``) serve on the API's server.

The router applies the route's own body-size limit (the source's
``max_body_bytes``, not ``[api]``'s) and the server's time limit before a
handler runs; authentication is the handler's (each source has its own
token), so intake requests bypass the API's token check.
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
        self._routes: dict[tuple[str, str], tuple[IntakeHandler, int]] = {}
        self.timeout_secs = 10.0
        """Set by the server from ``[api] query_timeout_secs``."""

    def route(
        self, method: str, path: str, handler: IntakeHandler, *, max_body_bytes: int
    ) -> Callable[[], None]:
        key = (method.upper(), path)
        if key in self._routes:
            raise ValueError(f"{method} {path} is already served by another source")
        entry = (handler, max_body_bytes)
        self._routes[key] = entry

        def remove() -> None:
            if self._routes.get(key) is entry:
                del self._routes[key]

        return remove

    def find(self, method: str, path: str) -> tuple[IntakeHandler, int] | None:
        """The handler serving ``method path`` and its body limit."""
        return self._routes.get((method.upper(), path))

    async def serve(self, request: web.Request, route: tuple[IntakeHandler, int]) -> web.Response:
        """Read the body within the route's size limit, call the handler within the time limit."""
        handler, limit = route
        peer = request.remote or ""
        body = await read_body(request, limit)
        if body is None:
            size = request.content_length
            reason = (
                f"body of {size} bytes exceeds {limit}" if size else f"body exceeds {limit} bytes"
            )
            log.warning("request_refused", path=request.path, peer=peer, status=413, reason=reason)
            return reply({"error": reason}, status=413)
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


async def read_body(request: web.Request, limit: int) -> bytes | None:
    """The whole body, or None once it is over ``limit`` bytes (the rest is not read).

    ``request.read()`` would apply the application's ``client_max_size``
    instead, and answer an oversized body with aiohttp's plain-text 413.
    """
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(64 * 1024):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
