"""The web timeline at ``/``: static HTML, CSS and JavaScript, no build step."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from daemon import __version__
from daemon.api.auth import needs
from daemon.api.replies import reply
from daemon.api.schemas import Info
from daemon.api.state import ZONE

STATIC = Path(__file__).with_name("static")

routes = web.RouteTableDef()


@routes.get("/")
async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


routes.static("/static", STATIC, append_version=False)


@routes.get("/api/v1/info")
@needs("reader")
async def info(request: web.Request) -> web.Response:
    """What the page needs to know: the zone to show times in."""
    return reply(Info(version=__version__, timezone=request.app[ZONE].key).body())
