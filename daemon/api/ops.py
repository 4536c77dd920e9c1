"""``/healthz``, ``/readyz`` and ``/metrics`` (Prometheus exposition, ``metrics.py``)."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from daemon.api.auth import needs
from daemon.api.metrics import outbox
from daemon.api.replies import reply
from daemon.api.schemas import Status
from daemon.api.state import METRICS, OUTPUTS, READERS, STATUS

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """The daemon's event loop answers."""
    return reply(Status(status="ok").body())


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """Ready once every configured source has been started and the correlator has loaded
    its state (sources listen while it loads)."""
    ready = request.app[STATUS].ready
    answer = Status(status="ready" if ready else "starting")
    return reply(answer.body(), status=200 if ready else 503)


@routes.get("/metrics")
@needs("reader")
async def metrics(request: web.Request) -> web.Response:
    deliveries = await request.app[READERS].call(lambda store: store.delivery_counts())
    body = request.app[METRICS].exposition(outbox(deliveries, request.app[OUTPUTS]()))
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
