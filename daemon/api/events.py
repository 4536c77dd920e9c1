"""``/api/v1/events``, ``/api/v1/events/{id}`` and ``/api/v1/histogram``: the timeline."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from daemon.alert import Alert
from daemon.api import params
from daemon.api.auth import needs
from daemon.api.lanes import LANES, label_of, lane_of
from daemon.api.replies import problem, reply
from daemon.api.schemas import MAX_BUCKETS, EventFilters, EventsQuery, HistogramQuery
from daemon.api.state import READERS
from daemon.model import format_timestamp
from daemon.store.base import EventQuery, Found, Store
from daemon.timeparse import parse_duration

routes = web.RouteTableDef()

FILTERS = tuple(EventFilters.model_fields)
"""Exact-match filters: the query parameters of the same names."""
DEFAULT_PAGE = 100
EVIDENCE_SLACK = timedelta(seconds=1)
"""Evidence keeps event times to the millisecond; a little slack finds the stored event."""
DEFAULT_SPAN = timedelta(hours=24)
_NICE_INTERVALS = (1, 5, 10, 15, 30, 60, 180, 360, 720, 1440)
"""Automatic histogram intervals, in minutes."""


def item(found: Found, *, full: bool = False) -> dict[str, Any]:
    """One event as the API lists it; pages leave out the original record."""
    document = (
        found.document if full else {k: v for k, v in found.document.items() if k != "original"}
    )
    return {
        "id": str(found.key),
        "source": found.source,
        "log_type": found.log_type,
        "lane": lane_of(found.log_type),
        "label": label_of(found.log_type),
        "document": document,
    }


def event_query(request: web.Request) -> EventQuery:
    """The filters of a request, as the store takes them."""
    given = params.query(request, EventsQuery)
    return EventQuery(
        since=given.since,
        until=given.until,
        text=given.q,
        outcome=given.outcome,
        limit=given.limit or DEFAULT_PAGE,
        order=given.order or "newest",
        after=given.cursor,
        **{name: getattr(given, name) for name in FILTERS},
    )


def evidence_events(store: Store, alert: Alert) -> list[Found | None]:
    """Each evidence item's stored event (None where retention dropped it)."""
    return [
        store.find_event(
            evidence.id,
            since=evidence.timestamp - EVIDENCE_SLACK,
            until=evidence.timestamp + EVIDENCE_SLACK,
        )
        for evidence in alert.evidence
    ]


async def alert_evidence(request: web.Request, alert_id: str) -> web.Response:
    """The events that are evidence of an alert, in the asked order, as one page."""
    if set(request.query) - {"alert", "order", "limit"}:
        raise problem(web.HTTPBadRequest, "alert: takes only order and limit beside it")
    query = event_query(request)

    def load(store: Store) -> list[Found | None] | None:
        alert = store.alert(alert_id)
        return None if alert is None else evidence_events(store, alert)

    loaded = await request.app[READERS].call(load)
    if loaded is None:
        raise problem(web.HTTPNotFound, f"alert: no alert {alert_id}")
    found = sorted(
        (f for f in loaded if f is not None),
        key=lambda f: f.key,
        reverse=query.order == "newest",
    )
    return reply({"events": [item(f) for f in found[: query.limit]], "next_cursor": None})


@routes.get("/api/v1/events")
@needs("reader")
async def list_events(request: web.Request) -> web.Response:
    """A page of the timeline; ``next_cursor`` fetches the one after it."""
    alert_id = request.query.get("alert")
    if alert_id:
        return await alert_evidence(request, alert_id)
    query = event_query(request)
    # One more than asked tells whether another page follows.
    found = await request.app[READERS].call(
        lambda store: store.page(replace(query, limit=query.limit + 1))
    )
    page = found[: query.limit]
    more = len(found) > query.limit
    return reply(
        {
            "events": [item(f) for f in page],
            "next_cursor": str(page[-1].key) if more else None,
        }
    )


def event_key(request: web.Request) -> int:
    """The row key in the path's ``{id}``; 400 unless it is one."""
    text = request.match_info["id"]
    if not text.isdigit() or int(text) >= 1 << 63:
        raise problem(web.HTTPBadRequest, "id: an event id as the events list gives it (digits)")
    return int(text)


@routes.get("/api/v1/events/{id}")
@needs("reader")
async def get_event(request: web.Request) -> web.Response:
    """One event: its full ECS document with the original record."""
    key = event_key(request)
    found = await request.app[READERS].call(lambda store: store.event(key))
    if found is None:
        raise problem(web.HTTPNotFound, f"no event {key}")
    return reply(item(found, full=True))


def _interval(text: str) -> int:
    minutes = parse_duration(text).total_seconds() / 60
    if minutes < 1 or minutes != int(minutes):
        raise ValueError("a whole number of minutes, e.g. 1m, 15m, 1h, 1d")
    return int(minutes)


def _interval_within(span_minutes: float) -> Callable[[str], int]:
    """``interval`` no longer than the asked span: buckets start on multiples of the
    interval since 1970, so a longer one would answer a bucket decades before ``since``."""
    most = max(1, math.ceil(span_minutes))

    def parse(text: str) -> int:
        minutes = _interval(text)
        if minutes > most:
            raise ValueError(f"at most the span from since to until ({most} minutes)")
        return minutes

    return parse


@routes.get("/api/v1/histogram")
@needs("reader")
async def histogram(request: web.Request) -> web.Response:
    """Events per interval, split into cloud, on-prem, change and alert lanes."""
    given = params.query(request, HistogramQuery)
    until = given.until or datetime.now(UTC)
    since = given.since or until - DEFAULT_SPAN
    if since >= until:
        raise problem(web.HTTPBadRequest, "since: must be before until")
    span_minutes = (until - since).total_seconds() / 60
    minutes = params.param(request, "interval", _interval_within(span_minutes)) or next(
        (m for m in _NICE_INTERVALS if span_minutes / m <= 120), _NICE_INTERVALS[-1]
    )
    start = int(since.timestamp()) // 60 // minutes * minutes
    count = int((until.timestamp() // 60 - start) // minutes) + 1
    if count > MAX_BUCKETS:
        raise problem(
            web.HTTPBadRequest, f"interval: {count} buckets; at most {MAX_BUCKETS}, widen it"
        )
    rows = await request.app[READERS].call(lambda store: store.histogram(since, until, minutes))
    counts = [dict.fromkeys(LANES, 0) for _ in range(count)]
    for moment, log_type, n in rows:
        index = (int(moment.timestamp()) // 60 - start) // minutes
        if 0 <= index < count:
            counts[index][lane_of(log_type)] += n
    buckets = [
        {"start": format_timestamp(datetime.fromtimestamp((start + i * minutes) * 60, UTC))} | lanes
        for i, lanes in enumerate(counts)
    ]
    return reply(
        {
            "since": format_timestamp(since),
            "until": format_timestamp(until),
            "interval_secs": minutes * 60,
            "buckets": buckets,
        }
    )
