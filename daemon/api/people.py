"""``/api/v1/people/{id}``: a person of the identity map and what they did lately."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from daemon.api import params
from daemon.api.auth import needs
from daemon.api.events import DEFAULT_PAGE, item
from daemon.api.replies import problem, reply
from daemon.api.schemas import PersonQuery
from daemon.api.state import READERS, STATUS
from daemon.identity import Person
from daemon.store.base import EventQuery

routes = web.RouteTableDef()


def identity(person: Person) -> dict[str, Any]:
    """The identity map's entry, with every account the person goes by."""
    return {
        "id": person.id,
        "name": person.name,
        "emails": list(person.emails),
        "unix": [{"name": u.name, "hosts": list(u.hosts)} for u in person.unix],
        "aws": list(person.aws),
        "groups": list(person.groups),
    }


@routes.get("/api/v1/people/{id}")
@needs("reader")
async def get_person(request: web.Request) -> web.Response:
    """The person's identity (null when the map does not name them) and their newest events."""
    person_id = request.match_info["id"]
    limit = params.query(request, PersonQuery).limit
    identities = request.app[STATUS].identities
    person = identities.person(person_id) if identities else None
    query = EventQuery(actor=person_id, limit=limit or DEFAULT_PAGE)
    found = await request.app[READERS].call(lambda store: store.page(query))
    if person is None and not found:
        raise problem(web.HTTPNotFound, f"nobody called {person_id} in the identity map or events")
    return reply(
        {
            "id": person_id,
            "identity": None if person is None else identity(person),
            "events": [item(f) for f in found],
        }
    )
