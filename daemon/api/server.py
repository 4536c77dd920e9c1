"""The HTTP server the daemon runs beside its pipeline.

Every request passes the same gate: the Host and Origin checks
(``guard``), push-source intake (its handlers authenticate themselves), then
the caller is identified (token or loopback) for the routes' role checks;
every request is logged with its caller, every reply carries the security
headers.  Limits: ``client_max_size`` for bodies, the
readers' time limit for queries, ``max_page_size`` for pages.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Self
from zoneinfo import ZoneInfo

import structlog
from aiohttp import web

from connectors.base import ConfigError
from daemon.api import alerts, changes, events, guard, openapi, ops, people, quarantine, sources
from daemon.api import web as page
from daemon.api.auth import CALLER, Caller, Handler, authenticator
from daemon.api.intake import IntakeRouter
from daemon.api.metrics import Metrics
from daemon.api.readers import Readers
from daemon.api.state import METRICS, OUTPUTS, READERS, SETTINGS, STATUS, TRAIL, ZONE
from daemon.audit_entry import Emitter
from daemon.config import ApiSection
from daemon.status import DaemonStatus
from daemon.store.base import Store

log = structlog.get_logger()

ROUTES = (
    events.routes,
    sources.routes,
    quarantine.routes,
    ops.routes,
    openapi.routes,
    page.routes,
    alerts.routes,
    changes.routes,
    people.routes,
)
"""One table per resource; a new resource adds its module here."""


def build_app(
    settings: ApiSection,
    status: DaemonStatus,
    intake: IntakeRouter,
    readers: Readers,
    zone: ZoneInfo,
    *,
    trail: Emitter,
    outputs: Callable[[], Iterable[str]] = tuple,
) -> web.Application:
    """``status``: the daemon as the API reads it; ``trail``: takes the timeline entries
    of admins' reads (the running pipeline in both roles)."""
    identify = authenticator(settings.tokens)
    intake.timeout_secs = settings.query_timeout_secs
    names = guard.host_names(settings)
    metrics = Metrics(status)

    @web.middleware
    async def gate(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.monotonic()
        caller: Caller | None = None
        code = 500
        pushed = None
        try:
            guard.check_request(request, names)
            pushed = intake.find(request.method, request.path)
            if pushed is not None:
                response: web.StreamResponse = await intake.serve(request, pushed)
            else:
                caller = request[CALLER] = identify(request)
                response = await handler(request)
            code = response.status
            return response
        except web.HTTPException as err:
            code = err.status
            raise
        finally:
            guard.log_request(request, code, caller, started)
            metrics.observe(request, time.monotonic() - started, pushed=pushed is not None)

    app = web.Application(middlewares=[gate], client_max_size=settings.max_body_bytes)
    app.on_response_prepare.append(guard.add_headers)
    app[SETTINGS] = settings
    app[STATUS] = status
    app[TRAIL] = trail
    app[METRICS] = metrics
    app[READERS] = readers
    app[ZONE] = zone
    app[OUTPUTS] = outputs
    for table in ROUTES:
        app.add_routes(table)
    return app


class ApiServer:
    """``async with``: listening on ``[api] listen`` until the block ends."""

    def __init__(
        self,
        settings: ApiSection,
        status: DaemonStatus,
        intake: IntakeRouter,
        open_reader: Callable[[], Store],
        zone: ZoneInfo,
        *,
        trail: Emitter,
        readers: int = 2,
        outputs: Callable[[], Iterable[str]] = tuple,
    ) -> None:
        """``readers``: query threads, each with a connection of its own (``[store].pool_size``)."""
        self.settings = settings
        self._readers = Readers(open_reader, threads=readers, timeout=settings.query_timeout_secs)
        self._app = build_app(
            settings, status, intake, self._readers, zone, trail=trail, outputs=outputs
        )
        self._runner = web.AppRunner(self._app, access_log=None, handle_signals=False)
        self.url = ""

    def _tls(self) -> ssl.SSLContext | None:
        settings = self.settings
        if settings.cert_file is None or settings.key_file is None:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(settings.cert_file, settings.key_file)
            if settings.client_ca_file is not None:
                context.load_verify_locations(settings.client_ca_file)
                context.verify_mode = ssl.CERT_REQUIRED
        except (ssl.SSLError, OSError) as err:
            raise ConfigError(
                "api.cert_file", f"cannot load the TLS certificate or key: {err}"
            ) from err
        return context

    async def __aenter__(self) -> Self:
        host, port = self.settings.address
        await self._runner.setup()
        try:
            tls = self._tls()
            site = web.TCPSite(self._runner, host, port, ssl_context=tls)
            await site.start()
        except BaseException as err:
            await self._runner.cleanup()
            await asyncio.to_thread(self._readers.close)
            if isinstance(err, OSError):
                raise ConfigError(
                    "api.listen", f"cannot listen on {self.settings.listen}: {err.strerror}"
                ) from err
            raise
        bound = self._runner.addresses[0]
        scheme = "https" if tls else "http"
        shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
        self.url = f"{scheme}://{shown}:{bound[1]}/"
        log.info("api_listening", url=self.url, tokens=len(self.settings.tokens))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._runner.cleanup()
        await asyncio.to_thread(self._readers.close)
        log.info("api_stopped")
