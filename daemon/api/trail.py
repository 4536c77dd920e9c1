"""Admins' API actions on the timeline (``daemon/audit_entry.py``): who read what, from where."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from daemon import audit_entry
from daemon.api.auth import CALLER
from daemon.api.state import TRAIL


async def note(request: web.Request, action: str, **detail: Any) -> None:
    """Put ``action`` by the request's caller on the timeline (stored with the next write)."""
    caller = request[CALLER]
    entry = audit_entry.Action(
        action=action,
        via="api",
        user=caller.name,
        role=caller.role,
        peer=request.remote,
        target=request.path_qs,
        detail=detail,
    )
    await audit_entry.record(request.app[TRAIL], entry)
