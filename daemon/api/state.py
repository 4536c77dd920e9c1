"""What route handlers reach through the application: typed keys."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from aiohttp import web

from daemon.api.readers import Readers
from daemon.config import ApiSection
from daemon.pipeline import Pipeline

SETTINGS = web.AppKey("settings", ApiSection)
READERS = web.AppKey("readers", Readers)
PIPELINE = web.AppKey("pipeline", Pipeline)
ZONE = web.AppKey("zone", ZoneInfo)
