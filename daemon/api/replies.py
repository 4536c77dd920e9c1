"""Replies: JSON bodies encoded with orjson, errors as ``{"error": "..."}`` with the status."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web


def reply(data: Any, *, status: int = 200) -> web.Response:
    """A JSON response (orjson: pages of events encode several times faster than json)."""
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def problem(
    kind: type[web.HTTPError], message: str, *, headers: Mapping[str, str] | None = None
) -> web.HTTPError:
    return kind(
        text=orjson.dumps({"error": message}).decode(),
        content_type="application/json",
        headers=headers,
    )
