"""``/api/v1/alerts`` and ``/api/v1/alerts/{id}``: what the rules raised, and its story."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from daemon.alert import SEVERITIES, Alert, Severity
from daemon.api import params, schemas
from daemon.api.auth import needs
from daemon.api.events import evidence_events, item
from daemon.api.replies import problem, reply
from daemon.api.state import READERS
from daemon.model import format_timestamp
from daemon.store.base import Delivery, Found, Store

routes = web.RouteTableDef()

DEFAULT_ALERTS = 100


def at_least(severity: Severity) -> list[Severity]:
    """The severities at or above ``severity``."""
    return list(SEVERITIES[SEVERITIES.index(severity) :])


@routes.get("/api/v1/alerts")
@needs("reader")
async def list_alerts(request: web.Request) -> web.Response:
    """Alerts, newest first: each one in its documented JSON form (``daemon/alert.py``)."""
    given = params.query(request, schemas.AlertsQuery)
    since, rule = given.since, given.rule
    severities = at_least(given.severity) if given.severity else None
    limit = given.limit or DEFAULT_ALERTS
    found = await request.app[READERS].call(
        lambda store: store.alerts(
            since=since, rule=rule, severities=severities, limit=limit, newest_first=True
        )
    )
    return reply({"alerts": [alert.to_json() for alert in found]})


def delivery(row: Delivery) -> dict[str, Any]:
    return schemas.Delivery(
        output=row.output,
        state=row.state,
        attempts=row.attempts,
        last_error=row.last_error,
        enqueued_at=format_timestamp(row.enqueued_at),
    ).body()


@routes.get("/api/v1/alerts/{id}")
@needs("reader")
async def get_alert(request: web.Request) -> web.Response:
    """One alert with its evidence resolved to timeline events and its deliveries per output."""
    alert_id = request.match_info["id"]

    def load(store: Store) -> tuple[Alert, list[Found | None], list[Delivery]] | None:
        alert = store.alert(alert_id)
        if alert is None:
            return None
        return alert, evidence_events(store, alert), store.alert_deliveries(alert_id)

    loaded = await request.app[READERS].call(load)
    if loaded is None:
        raise problem(web.HTTPNotFound, f"no alert {alert_id}")
    alert, events, deliveries = loaded
    document = alert.to_json()
    for evidence, found in zip(document["evidence"], events, strict=True):
        evidence["event"] = None if found is None else item(found)
    document["deliveries"] = [delivery(row) for row in deliveries]
    return reply(document)
