"""The OpenAPI 3 document of ``/api/v1``, built from the same tables the handlers use."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from connectors.contracts.change_record import STATES
from daemon import __version__
from daemon.alert import SEVERITIES
from daemon.api.alerts import MAX_ALERTS
from daemon.api.changes import MAX_CHANGES
from daemon.api.events import FILTERS, MAX_BUCKETS, ORDERS, OUTCOMES
from daemon.api.lanes import LANES
from daemon.api.replies import reply
from daemon.api.state import SETTINGS
from daemon.changes.review import VERDICTS
from daemon.config import ApiSection

JSON = dict[str, Any]

routes = web.RouteTableDef()


@routes.get("/api/v1/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return reply(document(request.app[SETTINGS]))


def _query(name: str, description: str, schema: JSON | None = None) -> JSON:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
    }


def _ref(name: str) -> JSON:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: JSON, description: str) -> JSON:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERROR = _json(_ref("Error"), "see error")
_AUTH_ERRORS = {
    "401": _json(_ref("Error"), "no token from a non-loopback address, or an unknown token"),
    "403": _json(_ref("Error"), "the token's role does not allow this"),
}
_TIME = (
    "ISO 8601 time (zone-less times are in [daemon] timezone) or an age like 2h, 7d;"
    " between 1970 and 2200"
)
_DIGITS = {"type": "string", "pattern": "^[0-9]{1,19}$"}
_MOMENT = {
    "type": "string",
    "pattern": r"^([0-9]+(\.[0-9]+)?(ms|s|m|h|d|w)|[0-9]{4}-[0-9]{2}-[0-9]{2}([T ].+)?)$",
}
_INTERVAL = {"type": "string", "pattern": "^[1-9][0-9]{0,4}(m|h|d)$"}


def _get(summary: str, ok: JSON, parameters: list[JSON], *, auth: bool = True) -> JSON:
    responses: JSON = {"200": ok, "400": _ERROR} if parameters else {"200": ok}
    operation: JSON = {"summary": summary, "parameters": parameters, "responses": responses}
    if auth:
        responses.update(_AUTH_ERRORS)
        responses["503"] = _json(_ref("Error"), "the query ran past [api] query_timeout_secs")
        operation["security"] = [{}, {"bearer": []}]
    return {"get": operation}


def document(settings: ApiSection) -> JSON:
    """The document for a server with ``settings`` (page size limits show in it)."""
    event_params = [
        _query("since", f"events at or after this time: {_TIME}", _MOMENT),
        _query("until", f"events at or before this time: {_TIME}", _MOMENT),
        _query("q", "full text: every word must occur; a trailing * matches a prefix"),
        *(_query(name, f"exact {what}") for name, what in FILTERS.items()),
        _query("outcome", "event.outcome", {"type": "string", "enum": list(OUTCOMES)}),
        _query(
            "order", "newest (default) or oldest first", {"type": "string", "enum": list(ORDERS)}
        ),
        _query(
            "limit",
            "events per page (default 100)",
            {"type": "integer", "minimum": 1, "maximum": settings.max_page_size},
        ),
        _query("cursor", "next_cursor of the previous page", _DIGITS),
        _query(
            "alert",
            "only the evidence events of this alert id, as one page; takes only order and"
            " limit beside it (404 for an unknown alert)",
        ),
    ]
    counts = {lane: {"type": "integer", "minimum": 0} for lane in LANES}
    schemas: JSON = {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {"type": "string"}},
        },
        "Event": {
            "type": "object",
            "required": ["id", "source", "log_type", "lane", "document"],
            "properties": {
                "id": {"type": "string", "description": "address of the event in this store"},
                "source": {"type": "string"},
                "log_type": {"type": "string"},
                "lane": {"type": "string", "enum": list(LANES)},
                "document": {"type": "object", "description": "ECS document"},
            },
        },
        "Page": {
            "type": "object",
            "required": ["events", "next_cursor"],
            "properties": {
                "events": {"type": "array", "items": _ref("Event")},
                "next_cursor": {"type": ["string", "null"]},
            },
        },
        "Histogram": {
            "type": "object",
            "required": ["since", "until", "interval_secs", "buckets"],
            "properties": {
                "since": {"type": "string"},
                "until": {"type": "string"},
                "interval_secs": {"type": "integer"},
                "buckets": {
                    "type": "array",
                    "maxItems": MAX_BUCKETS,
                    "items": {
                        "type": "object",
                        "required": ["start", *LANES],
                        "properties": {"start": {"type": "string"}, **counts},
                    },
                },
            },
        },
        "Source": {
            "type": "object",
            "required": ["id", "type", "state", "newest", "lag_secs", "errors", "last_error"],
            "properties": {
                "id": {"type": "string"},
                "type": {"type": "string"},
                "state": {
                    "type": "string",
                    "enum": ["starting", "running", "retrying", "stopped", "failed"],
                },
                "newest": {"type": ["string", "null"]},
                "lag_secs": {"type": ["number", "null"]},
                **{
                    name: {"type": "integer", "minimum": 0}
                    for name in (
                        "payloads",
                        "records",
                        "stored",
                        "duplicates",
                        "dropped",
                        "quarantined",
                        "failed_payloads",
                        "errors",
                    )
                },
                "dropped_by": {
                    "type": "object",
                    "description": "records dropped by each filter: keep, drop[i],"
                    " event_categories, read_only (docs/filters.md)",
                    "additionalProperties": {"type": "integer", "minimum": 0},
                },
                "last_error": {"type": ["string", "null"]},
            },
        },
        "QuarantineEntry": {
            "type": "object",
            "required": ["id", "at", "source", "origin", "reason", "raw_base64", "raw_size"],
            "properties": {
                "id": {"type": "integer"},
                "at": {"type": "string"},
                "source": {"type": "string"},
                "origin": {"type": "string"},
                "position": {"type": ["integer", "null"]},
                "reason": {"type": "string"},
                "raw_base64": {"type": "string"},
                "raw_size": {"type": "integer"},
            },
        },
    }
    schemas.update(_alert_schemas())
    status = {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"type": "string"}},
    }
    paths: JSON = {
        "/api/v1/events": _get(
            "A page of the timeline", _json(_ref("Page"), "events"), event_params
        ),
        "/api/v1/events/{id}": _get(
            "One event with its original record",
            _json(_ref("Event"), "the event"),
            [{"name": "id", "in": "path", "required": True, "schema": _DIGITS}],
        ),
        "/api/v1/histogram": _get(
            "Events per interval by lane",
            _json(_ref("Histogram"), "counts"),
            [
                _query("since", f"{_TIME}; default: 24 hours before until", _MOMENT),
                _query("until", f"{_TIME}; default: now", _MOMENT),
                _query(
                    "interval",
                    "bucket width like 5m, 1h, 1d, at most the span; default: about 100 buckets",
                    _INTERVAL,
                ),
            ],
        ),
        "/api/v1/sources": _get(
            "Sources with state, lag and counts",
            _json(
                {
                    "type": "object",
                    "required": ["sources"],
                    "properties": {"sources": {"type": "array", "items": _ref("Source")}},
                },
                "sources",
            ),
            [],
        ),
        "/api/v1/quarantine": _get(
            "Quarantined input (admin role)",
            _json(
                {
                    "type": "object",
                    "required": ["entries"],
                    "properties": {"entries": {"type": "array", "items": _ref("QuarantineEntry")}},
                },
                "entries, newest first",
            ),
            [
                _query("source", "only this source id"),
                _query(
                    "limit",
                    "at most this many (default 100)",
                    {"type": "integer", "minimum": 1, "maximum": 1000},
                ),
            ],
        ),
        **_alert_paths(settings),
        "/api/v1/info": _get(
            "Version and display time zone",
            _json(
                {
                    "type": "object",
                    "required": ["version", "timezone"],
                    "properties": {"version": {"type": "string"}, "timezone": {"type": "string"}},
                },
                "info",
            ),
            [],
        ),
        "/metrics": _get(
            "Prometheus metrics",
            {
                "description": "text format 0.0.4",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            },
            [],
        ),
        "/healthz": _get("Liveness", _json(status, "the daemon answers"), [], auth=False),
        "/readyz": _get(
            "Readiness: sources started, correlation state loaded",
            _json(status, "ready"),
            [],
            auth=False,
        ),
    }
    paths["/readyz"]["get"]["responses"]["503"] = _json(status, "still starting")
    paths["/api/v1/events/{id}"]["get"]["responses"]["404"] = _json(_ref("Error"), "no such event")
    paths["/api/v1/events"]["get"]["responses"]["404"] = _json(_ref("Error"), "no such alert")
    return {
        "openapi": "3.1.0",
        "info": {"title": "auditcorr", "version": __version__},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "x-limits": {
            "max_page_size": settings.max_page_size,
            "max_body_bytes": settings.max_body_bytes,
            "query_timeout_secs": settings.query_timeout_secs,
        },
    }


def _limit(default: int, most: int) -> JSON:
    return _query(
        "limit",
        f"at most this many (default {default})",
        {"type": "integer", "minimum": 1, "maximum": most},
    )


def _path_id(schema: JSON | None = None) -> JSON:
    return {"name": "id", "in": "path", "required": True, "schema": schema or {"type": "string"}}


def _alert_schemas() -> JSON:
    """Alerts, change records, coverage verdicts and people."""
    text_or_null = {"type": ["string", "null"]}
    evidence = {
        "type": "object",
        "required": ["id", "@timestamp", "event.dataset"],
        "properties": {
            "id": {"type": "string", "description": "event.id of the evidence event"},
            "@timestamp": {"type": "string"},
            "event.dataset": {"type": "string"},
            "event.action": text_or_null,
            "message": text_or_null,
        },
    }
    alert = {
        "type": "object",
        "description": "The alert's documented JSON form (docs/outputs.md, the alert document)",
        "required": ["schema", "id", "rule", "severity", "first_seen", "last_seen", "evidence"],
        "properties": {
            "schema": {"type": "integer"},
            "id": {"type": "string"},
            "rule": {
                "type": "object",
                "required": ["id", "title"],
                "properties": {"id": {"type": "string"}, "title": {"type": "string"}},
            },
            "severity": {"type": "string", "enum": list(SEVERITIES)},
            "environment": {"type": "string"},
            "first_seen": {"type": "string"},
            "last_seen": {"type": "string"},
            "count": {"type": "integer"},
            "actors": {"type": "array", "items": {"type": "string"}},
            "evidence": {"type": "array", "items": evidence},
        },
    }
    resolved = {
        "allOf": [
            evidence,
            {
                "type": "object",
                "required": ["event"],
                "properties": {
                    "event": {
                        "anyOf": [_ref("Event"), {"type": "null"}],
                        "description": "the stored event; null when retention dropped it",
                    }
                },
            },
        ]
    }
    detail = {
        "allOf": [
            _ref("Alert"),
            {
                "type": "object",
                "required": ["deliveries", "evidence"],
                "properties": {
                    "evidence": {"type": "array", "items": resolved},
                    "deliveries": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["output", "state", "attempts", "last_error"],
                            "properties": {
                                "output": {"type": "string"},
                                "state": {"type": "string", "enum": ["pending", "sent", "failed"]},
                                "attempts": {"type": "integer", "minimum": 0},
                                "last_error": text_or_null,
                                "enqueued_at": {"type": "string"},
                            },
                        },
                    },
                },
            },
        ]
    }
    record = {
        "type": "object",
        "description": "A change record (connectors/contracts/change-record.schema.json)",
        "required": ["id", "state", "window"],
        "properties": {
            "id": {"type": "string"},
            "state": {"type": "string", "enum": list(STATES)},
            "window": {"type": "object"},
        },
    }
    coverage = {
        "type": "object",
        "required": ["event", "covered", "covered_by", "nearest"],
        "properties": {
            "event": {"type": "string"},
            "covered": {"type": "boolean"},
            "covered_by": {"type": "array", "items": {"type": "string"}},
            "nearest": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id", "reasons"],
                    "properties": {
                        "id": {"type": "string"},
                        "reasons": {"type": "array", "items": {"type": "string"}},
                    },
                },
            },
        },
    }
    names = {"type": "array", "items": {"type": "string"}}
    seen = {
        "type": "object",
        "description": "A change-class event of a review (key: its id under /api/v1/events)",
        "required": ["key", "id", "@timestamp", "dataset", "person", "action"],
        "properties": {
            "key": _DIGITS,
            "id": text_or_null,
            "@timestamp": {"type": "string"},
            "dataset": text_or_null,
            "person": text_or_null,
            "action": text_or_null,
            "host": text_or_null,
            "account": text_or_null,
            "region": text_or_null,
            "message": text_or_null,
            "in_scope": {"type": "boolean", "description": "inside the window only"},
            "reasons": {**names, "description": "inside the window: why out of scope"},
            "when": {"type": "string", "enum": ["before", "after"]},
            "covered_by": {**names, "description": "outside the window: covering records"},
        },
    }
    counts = ("in_scope", "out_of_scope", "outside_window", "outside_covered")
    review = {
        "type": "object",
        "required": ["change", "verdict", "as_of", "implementers", "counts", "inside", "outside"],
        "properties": {
            "change": _ref("ChangeRecord"),
            "verdict": {"type": "string", "enum": list(VERDICTS)},
            "as_of": {"type": "string"},
            "implementers": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "people"],
                    "properties": {
                        "name": {"type": "string"},
                        "people": {"type": "array", "items": {"type": "object"}},
                    },
                },
            },
            "counts": {
                "type": "object",
                "required": list(counts),
                "properties": {name: {"type": "integer", "minimum": 0} for name in counts},
            },
            "inside": {
                "type": "array",
                "items": seen,
                "description": "the implementers' change-class events in the window",
            },
            "outside": {
                "type": "array",
                "items": seen,
                "description": "anyone's change-class events on the scope within 4 h of it",
            },
            "truncated": {"type": "boolean"},
        },
    }
    person = {
        "type": "object",
        "required": ["id", "identity", "events"],
        "properties": {
            "id": {"type": "string"},
            "identity": {
                "anyOf": [
                    {
                        "type": "object",
                        "required": ["id", "name", "emails", "unix", "aws", "groups"],
                        "properties": {
                            "id": {"type": "string"},
                            "name": text_or_null,
                            "emails": names,
                            "unix": {"type": "array", "items": {"type": "object"}},
                            "aws": names,
                            "groups": names,
                        },
                    },
                    {"type": "null"},
                ],
                "description": "the identity map's entry; null when it does not name the id",
            },
            "events": {"type": "array", "items": _ref("Event")},
        },
    }
    return {
        "Alert": alert,
        "AlertDetail": detail,
        "ChangeRecord": record,
        "Coverage": coverage,
        "Person": person,
        "Review": review,
    }


def _alert_paths(settings: ApiSection) -> JSON:
    """Paths of the resources built on rules, the outbox, change records and identities."""
    records = {"type": "array", "items": _ref("ChangeRecord")}
    paths: JSON = {
        "/api/v1/alerts": _get(
            "Alerts, newest first",
            _json(
                {
                    "type": "object",
                    "required": ["alerts"],
                    "properties": {"alerts": {"type": "array", "items": _ref("Alert")}},
                },
                "alerts",
            ),
            [
                _query("since", f"alerts whose last event is at or after: {_TIME}", _MOMENT),
                _query("rule", "only this rule id"),
                _query(
                    "severity",
                    "this severity or higher",
                    {"type": "string", "enum": list(SEVERITIES)},
                ),
                _limit(100, MAX_ALERTS),
            ],
        ),
        "/api/v1/alerts/{id}": _get(
            "One alert with its evidence events and deliveries",
            _json(_ref("AlertDetail"), "the alert"),
            [_path_id()],
        ),
        "/api/v1/changes": _get(
            "Change records (current versions) by window start",
            _json(
                {"type": "object", "required": ["changes"], "properties": {"changes": records}},
                "records",
            ),
            [
                _query("since", f"records whose window ends at or after: {_TIME}", _MOMENT),
                _query("until", f"records whose window starts at or before: {_TIME}", _MOMENT),
                _query("state", "only this state", {"type": "string", "enum": list(STATES)}),
                _limit(100, MAX_CHANGES),
            ],
        ),
        "/api/v1/changes/{id}": _get(
            "One change record with every version received",
            _json(
                {
                    "type": "object",
                    "required": ["record", "history"],
                    "properties": {"record": _ref("ChangeRecord"), "history": records},
                },
                "the record",
            ),
            [_path_id()],
        ),
        "/api/v1/changes/{id}/review": _get(
            "The post-implementation review of one change record, as of now",
            _json(_ref("Review"), "the review"),
            [_path_id()],
        ),
        "/api/v1/events/{id}/coverage": _get(
            "The change records covering an event, or the nearest and why not",
            _json(_ref("Coverage"), "the verdict"),
            [_path_id(_DIGITS)],
        ),
        "/api/v1/people/{id}": _get(
            "A person: identity map entry and newest events",
            _json(_ref("Person"), "the person"),
            [_path_id(), _limit(100, settings.max_page_size)],
        ),
    }
    for path, what in (
        ("/api/v1/alerts/{id}", "no such alert"),
        ("/api/v1/changes/{id}", "no such change record"),
        ("/api/v1/changes/{id}/review", "no such change record"),
        ("/api/v1/events/{id}/coverage", "no such event"),
        ("/api/v1/people/{id}", "neither in the identity map nor in any event's actor"),
    ):
        paths[path]["get"]["responses"]["404"] = _json(_ref("Error"), what)
    return paths
