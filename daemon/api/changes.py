"""``/api/v1/changes``, ``/api/v1/changes/{id}``, ``/api/v1/changes/{id}/review`` and
``/api/v1/events/{id}/coverage``: the change records, what was done under one, and
whether one of them covers an event."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from connectors.contracts.change_record import parse_record
from daemon.api import params
from daemon.api.auth import needs
from daemon.api.events import event_key
from daemon.api.replies import problem, reply
from daemon.api.schemas import ChangesQuery
from daemon.api.state import READERS, STATUS
from daemon.changes.book import ChangeBook
from daemon.changes.coverage import NEAREST_HORIZON, coverage
from daemon.changes.review import book_for, review
from daemon.store.base import JSON, Store

routes = web.RouteTableDef()

DEFAULT_CHANGES = 100


@routes.get("/api/v1/changes")
@needs("reader")
async def list_changes(request: web.Request) -> web.Response:
    """Current change records whose window overlaps since..until, by window start."""
    given = params.query(request, ChangesQuery)
    records = await request.app[READERS].call(
        lambda store: store.change_records(since=given.since, until=given.until)
    )
    chosen = [r for r in records if given.state is None or r.get("state") == given.state]
    return reply({"changes": chosen[: given.limit or DEFAULT_CHANGES]})


@routes.get("/api/v1/changes/{id}")
@needs("reader")
async def get_change(request: web.Request) -> web.Response:
    """One change record's current version, with every version received, oldest first."""
    change_id = request.match_info["id"]

    def load(store: Store) -> tuple[JSON | None, list[JSON]]:
        return store.change_record(change_id), store.change_history(change_id)

    current, history = await request.app[READERS].call(load)
    if current is None:
        raise problem(web.HTTPNotFound, f"no change record {change_id}")
    return reply({"record": current, "history": history})


@routes.get("/api/v1/changes/{id}/review")
@needs("reader")
async def change_review(request: web.Request) -> web.Response:
    """The post-implementation review of one change record, as of now."""
    change_id = request.match_info["id"]
    identities = request.app[STATUS].identities
    now = datetime.now(UTC)

    def load(store: Store) -> JSON | None:
        current = store.change_record(change_id)
        if current is None:
            return None
        record = parse_record(current)
        book = book_for(store, record.start, record.end, identities)
        return review(store, record, book, now=now).to_json()

    found = await request.app[READERS].call(load)
    if found is None:
        raise problem(web.HTTPNotFound, f"no change record {change_id}")
    return reply(found)


@routes.get("/api/v1/events/{id}/coverage")
@needs("reader")
async def event_coverage(request: web.Request) -> web.Response:
    """Which change records cover the event; when none does, the nearest and why not."""
    key = event_key(request)
    identities = request.app[STATUS].identities

    def judge(store: Store) -> JSON | None:
        found = store.event(key)
        if found is None:
            return None
        moment = datetime.fromisoformat(found.document["@timestamp"])
        records = store.change_records(
            since=moment - NEAREST_HORIZON, until=moment + NEAREST_HORIZON
        )
        verdict = coverage(found.document, ChangeBook.from_json(records, identities))
        return {"event": str(key), **verdict.to_json()}

    verdict = await request.app[READERS].call(judge)
    if verdict is None:
        raise problem(web.HTTPNotFound, f"no event {key}")
    return reply(verdict)
