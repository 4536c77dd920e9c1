"""The OpenAPI 3 document of ``/api/v1``, generated from the models in ``schemas.py``.

Each route names its parameter model and its reply model; pydantic writes the
JSON Schemas.  Written by hand: the ``{id}`` path parameters, the error
replies each route may give, and ``/metrics`` (Prometheus text, not JSON).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from daemon import __version__
from daemon.api import schemas
from daemon.api.replies import reply
from daemon.api.state import SETTINGS
from daemon.config import ApiSection

JSON = dict[str, Any]
REF = "#/components/schemas/{model}"

routes = web.RouteTableDef()


@routes.get("/api/v1/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return reply(document(request.app[SETTINGS]))


@dataclass(frozen=True)
class Operation:
    """One GET route: what it answers, from which parameters, and how it fails."""

    summary: str
    answer: type[BaseModel]
    what: str
    """The 200 reply's description."""
    query: type[schemas.Query] | None = None
    path_id: JSON | None = None
    """The schema of the path's ``{id}``, when it has one."""
    missing: str | None = None
    """What a 404 means, when the route gives one."""
    auth: bool = True


_ANY_ID: JSON = {"type": "string"}
_EVENT_ID: JSON = {"type": "string", "pattern": "^[0-9]{1,19}$"}

OPERATIONS: dict[str, Operation] = {
    "/api/v1/events": Operation(
        "A page of the timeline",
        schemas.Page,
        "events",
        schemas.EventsQuery,
        missing="no such alert",
    ),
    "/api/v1/events/{id}": Operation(
        "One event with its original record",
        schemas.Event,
        "the event",
        path_id=_EVENT_ID,
        missing="no such event",
    ),
    "/api/v1/histogram": Operation(
        "Events per interval by lane", schemas.Histogram, "counts", schemas.HistogramQuery
    ),
    "/api/v1/sources": Operation("Sources with state, lag and counts", schemas.Sources, "sources"),
    "/api/v1/quarantine": Operation(
        "Quarantined input (admin role)",
        schemas.Quarantine,
        "entries, newest first",
        schemas.QuarantineQuery,
    ),
    "/api/v1/alerts": Operation(
        "Alerts, newest first", schemas.Alerts, "alerts", schemas.AlertsQuery
    ),
    "/api/v1/alerts/{id}": Operation(
        "One alert with its evidence events and deliveries",
        schemas.AlertDetail,
        "the alert",
        path_id=_ANY_ID,
        missing="no such alert",
    ),
    "/api/v1/changes": Operation(
        "Change records (current versions) by window start",
        schemas.Changes,
        "records",
        schemas.ChangesQuery,
    ),
    "/api/v1/changes/{id}": Operation(
        "One change record with every version received",
        schemas.ChangeHistory,
        "the record",
        path_id=_ANY_ID,
        missing="no such change record",
    ),
    "/api/v1/changes/{id}/review": Operation(
        "The post-implementation review of one change record, as of now",
        schemas.Review,
        "the review",
        path_id=_ANY_ID,
        missing="no such change record",
    ),
    "/api/v1/events/{id}/coverage": Operation(
        "The change records covering an event, or the nearest and why not",
        schemas.Coverage,
        "the verdict",
        path_id=_EVENT_ID,
        missing="no such event",
    ),
    "/api/v1/people/{id}": Operation(
        "A person: identity map entry and newest events",
        schemas.Person,
        "the person",
        schemas.PersonQuery,
        path_id=_ANY_ID,
        missing="neither in the identity map nor in any event's actor",
    ),
    "/api/v1/info": Operation("Version and display time zone", schemas.Info, "info"),
    "/healthz": Operation("Liveness", schemas.Status, "the daemon answers", auth=False),
    "/readyz": Operation(
        "Readiness: sources started, correlation state loaded",
        schemas.Status,
        "ready",
        auth=False,
    ),
}
"""Every JSON route of the server but this document's own."""


def _ref(model: type[BaseModel]) -> JSON:
    return {"$ref": REF.format(model=model.__name__)}


def _json(model: type[BaseModel], description: str) -> JSON:
    return {"description": description, "content": {"application/json": {"schema": _ref(model)}}}


def _error(description: str) -> JSON:
    return _json(schemas.Error, description)


def _not_null(schema: JSON) -> JSON:
    """A query parameter's schema: absent, not null, is how it is left out."""
    options = [option for option in schema.get("anyOf", ()) if option != {"type": "null"}]
    rest = {k: v for k, v in schema.items() if k not in ("anyOf", "default", "title")}
    return {**options[0], **rest} if len(options) == 1 else rest


def parameters(query: type[schemas.Query], max_page_size: int) -> list[JSON]:
    """The query parameters of ``query``'s fields; a ``limit`` the model leaves unbounded
    is bounded by ``[api] max_page_size``."""
    schema = query.model_json_schema(ref_template=REF)
    found = []
    for name, prop in schema["properties"].items():
        described = _not_null(prop)
        description = described.pop("description", "")
        if name == "limit":
            described.setdefault("maximum", max_page_size)
        found.append(
            {
                "name": name,
                "in": "query",
                "required": name in schema.get("required", ()),
                "description": description,
                "schema": described,
            }
        )
    return found


def _operation(operation: Operation, settings: ApiSection) -> JSON:
    params: list[JSON] = []
    if operation.path_id is not None:
        params.append({"name": "id", "in": "path", "required": True, "schema": operation.path_id})
    if operation.query is not None:
        params += parameters(operation.query, settings.max_page_size)
    responses: JSON = {"200": _json(operation.answer, operation.what)}
    if params:
        responses["400"] = _error("see error")
    if operation.missing is not None:
        responses["404"] = _error(operation.missing)
    built: JSON = {"summary": operation.summary, "parameters": params, "responses": responses}
    if operation.auth:
        responses["401"] = _error("no token from a non-loopback address, or an unknown token")
        responses["403"] = _error("the token's role does not allow this")
        responses["503"] = _error("the query ran past [api] query_timeout_secs")
        built["security"] = [{}, {"bearer": []}]
    return {"get": built}


def _metrics() -> JSON:
    return {
        "get": {
            "summary": "Prometheus metrics (docs/api.md lists them)",
            "parameters": [],
            "responses": {
                "200": {
                    "description": "Prometheus text format",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                },
                "401": _error("no token from a non-loopback address, or an unknown token"),
                "403": _error("the token's role does not allow this"),
                "503": _error("the query ran past [api] query_timeout_secs"),
            },
            "security": [{}, {"bearer": []}],
        }
    }


def components() -> JSON:
    """The JSON Schemas of every reply model and the models they contain."""
    replies = {operation.answer for operation in OPERATIONS.values()} | {schemas.Error}
    _, found = models_json_schema(
        [(model, "serialization") for model in sorted(replies, key=lambda m: m.__name__)],
        ref_template=REF,
    )
    defined: JSON = found["$defs"]
    return defined


def document(settings: ApiSection) -> JSON:
    """The document for a server with ``settings`` (page size limits show in it)."""
    paths = {path: _operation(operation, settings) for path, operation in OPERATIONS.items()}
    paths["/readyz"]["get"]["responses"]["503"] = _json(schemas.Status, "still starting")
    paths["/metrics"] = _metrics()
    return {
        "openapi": "3.1.0",
        "info": {"title": "auditcorr", "version": __version__},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": components(),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "x-limits": {
            "max_page_size": settings.max_page_size,
            "max_body_bytes": settings.max_body_bytes,
            "query_timeout_secs": settings.query_timeout_secs,
        },
    }
