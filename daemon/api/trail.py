"""Admins' API actions on the timeline (``daemon/audit.py``): who read what, from where."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from daemon import audit
from daemon.api.auth import CALLER
from daemon.api.state import PIPELINE


async def note(request: web.Request, action: str, **detail: Any) -> None:
    """Put ``action`` by the request's caller on the timeline (stored with the next write)."""
    caller = request[CALLER]
    entry = audit.Action(
        action=action,
        via="api",
        user=caller.name,
        role=caller.role,
        peer=request.remote,
        target=request.path_qs,
        detail=detail,
    )
    await audit.record(request.app[PIPELINE], entry)
