"""What route handlers reach through the application: typed keys."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from zoneinfo import ZoneInfo

from aiohttp import web

from daemon.api.metrics import Metrics
from daemon.api.readers import Readers
from daemon.audit_entry import Emitter
from daemon.config import ApiSection
from daemon.status import DaemonStatus

SETTINGS = web.AppKey("settings", ApiSection)
READERS = web.AppKey("readers", Readers)
STATUS: web.AppKey[DaemonStatus] = web.AppKey("status")
"""The running daemon, read-only: state, counters, identities."""
METRICS = web.AppKey("metrics", Metrics)
TRAIL: web.AppKey[Emitter] = web.AppKey("trail")
"""Where admins' reads go on the timeline (``trail.py``)."""
OUTPUTS: web.AppKey[Callable[[], Iterable[str]]] = web.AppKey("outputs")
"""The ids of the configured outputs (they change on reload)."""
ZONE = web.AppKey("zone", ZoneInfo)
