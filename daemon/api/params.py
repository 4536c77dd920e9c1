"""Query-string parameters: parsed once, each failure a 400 naming the parameter.

A route's parameters are a model of ``schemas.py`` whose fields parse with the
functions below; ``query`` validates a request against it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import BaseModel, ValidationError

from daemon.api.replies import problem
from daemon.api.state import SETTINGS, ZONE
from daemon.timeparse import parse_moment

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Context:
    """What parsing a parameter may depend on: the display zone, the page size limit."""

    zone: ZoneInfo
    max_page_size: int


def query(request: web.Request, model: type[M]) -> M:
    """The request's query string as ``model`` (first value of a repeated parameter)."""
    given = {name: request.query[name] for name in request.query}
    context = Context(request.app[ZONE], request.app[SETTINGS].max_page_size)
    try:
        return model.model_validate(given, context=context)
    except ValidationError as err:
        first = err.errors()[0]
        cause = first.get("ctx", {}).get("error", first["msg"])
        raise problem(web.HTTPBadRequest, f"{first['loc'][0]}: {cause}") from None


def param(request: web.Request, name: str, parse: Callable[[str], T]) -> T | None:
    text = request.query.get(name)
    if text is None:
        return None
    try:
        return parse(text)
    except ValueError as err:
        raise problem(web.HTTPBadRequest, f"{name}: {err}") from None


EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
"""Times outside these are typing mistakes: the timeline holds nothing there."""


def bounded_moment(text: str, zone: ZoneInfo) -> datetime:
    """A time as ``parse_moment`` reads it, between ``EARLIEST`` and ``LATEST``."""
    found = parse_moment(text, zone=zone)
    if not EARLIEST <= found < LATEST:
        raise ValueError(
            f"{text!r} is {found.isoformat()}; times between {EARLIEST.year} and {LATEST.year} only"
        )
    return found


_DIGITS = re.compile(r"[0-9]{1,19}")


def bounded_int(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if not _DIGITS.fullmatch(text):
            raise ValueError(f"expected digits (got {text!r})")
        value = int(text)
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high} (got {value})")
        return value

    return parse


def choice(*allowed: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in allowed:
            raise ValueError(f"one of {', '.join(allowed)} (got {text!r})")
        return text

    return parse
