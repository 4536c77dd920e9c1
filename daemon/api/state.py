"""What route handlers reach through the application: typed keys."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from zoneinfo import ZoneInfo

from aiohttp import web

from daemon.api.readers import Readers
from daemon.config import ApiSection
from daemon.pipeline import Pipeline

SETTINGS = web.AppKey("settings", ApiSection)
READERS = web.AppKey("readers", Readers)
PIPELINE = web.AppKey("pipeline", Pipeline)
OUTPUTS: web.AppKey[Callable[[], Iterable[str]]] = web.AppKey("outputs")
"""The ids of the configured outputs (they change on reload)."""
ZONE = web.AppKey("zone", ZoneInfo)
