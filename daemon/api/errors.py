"""Errors as JSON bodies: ``{"error": "..."}`` with the HTTP status."""

from __future__ import annotations

from collections.abc import Mapping

import orjson
from aiohttp import web


def problem(
    kind: type[web.HTTPError], message: str, *, headers: Mapping[str, str] | None = None
) -> web.HTTPError:
    return kind(
        text=orjson.dumps({"error": message}).decode(),
        content_type="application/json",
        headers=headers,
    )
