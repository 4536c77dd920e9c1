"""``/api/v1/quarantine``: what was kept as bad input (admin only: it holds raw records).

Each read is an entry on the timeline (``quarantine_read``): the raw records are evidence.
"""

from __future__ import annotations

import base64

from aiohttp import web

from daemon.api import params, trail
from daemon.api.auth import needs
from daemon.api.replies import reply
from daemon.api.schemas import Quarantine, QuarantineEntry, QuarantineQuery
from daemon.api.state import READERS
from daemon.model import format_timestamp

routes = web.RouteTableDef()


@routes.get("/api/v1/quarantine")
@needs("admin")
async def list_quarantine(request: web.Request) -> web.Response:
    given = params.query(request, QuarantineQuery)
    source, limit = given.source, given.limit or 100
    entries = await request.app[READERS].call(
        lambda store: store.quarantine(source=source, limit=limit)
    )
    await trail.note(request, "quarantine_read", source=source, entries=len(entries))
    listed = [
        QuarantineEntry(
            id=entry.id,
            at=format_timestamp(entry.at),
            source=entry.source,
            origin=entry.origin,
            position=entry.position,
            reason=entry.reason,
            raw_base64=base64.b64encode(entry.raw).decode(),
            raw_size=entry.raw_size,
        )
        for entry in entries
    ]
    return reply(Quarantine(entries=listed).body())
