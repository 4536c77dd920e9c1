"""Query-string parameters: parsed once, each failure a 400 naming the parameter."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar
from zoneinfo import ZoneInfo

from aiohttp import web

from daemon.api.replies import problem
from daemon.timeparse import parse_moment

T = TypeVar("T")


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


def moment(request: web.Request, name: str, zone: ZoneInfo) -> datetime | None:
    return param(request, name, lambda text: bounded_moment(text, zone))


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
