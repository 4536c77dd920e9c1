"""The API's query parameters and replies as pydantic models.

``openapi.py`` generates the OpenAPI document from them.  The handlers read
their query string through the query models (``params.query``), and those whose
reply has a fixed shape (sources, quarantine, info, health, deliveries) build
it through its model, so the document cannot drift from the code; the timeline's
pages stay plain dicts (orjson encodes them several times faster).  Replies
whose form another module owns (alerts: ``daemon/alert.py``; change records,
coverage and reviews: ``daemon/changes/``) are described as that form stands.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, WithJsonSchema

from connectors.contracts.change_record import STATES
from daemon.alert import SEVERITIES, Environment, Severity
from daemon.api import params
from daemon.api.lanes import LANES
from daemon.changes.review import Verdict
from daemon.status import SourceState
from daemon.store.base import DeliveryState

TIME = (
    "ISO 8601 time (zone-less times are in [daemon] timezone) or an age like 2h, 7d;"
    " between 1970 and 2200"
)
Digits = Annotated[str, Field(pattern="^[0-9]{1,19}$")]
Count = Annotated[int, Field(ge=0)]
Names = list[str]
Lane = Annotated[str, WithJsonSchema({"type": "string", "enum": list(LANES)})]
Outcome = Literal["success", "failure", "unknown"]
Order = Literal["newest", "oldest"]


class Model(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)


# -- query parameters ----------------------------------------------------------------------
#
# Each value is parsed by the functions of ``params.py`` (a failure is a 400 naming the
# parameter, ``params.query``); the JSON Schema says what they accept.  A page-sized
# ``limit`` is bounded by ``[api] max_page_size``, from the validation context.


def _moment(text: str, info: ValidationInfo) -> datetime:
    return params.bounded_moment(text, _context(info).zone)


def _page_limit(text: str, info: ValidationInfo) -> int:
    return params.bounded_int(1, _context(info).max_page_size)(text)


def _context(info: ValidationInfo) -> params.Context:
    if not isinstance(info.context, params.Context):
        raise TypeError("query models are validated by params.query, which passes the context")
    return info.context


def _text(text: str) -> str | None:
    """An empty value is the same as none."""
    return text or None


MAX_LISTED = 1000
"""Most alerts, change records and quarantine entries one request lists."""

Moment = Annotated[
    datetime | None,
    BeforeValidator(_moment),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^([0-9]+(\.[0-9]+)?(ms|s|m|h|d|w)|[0-9]{4}-[0-9]{2}-[0-9]{2}([T ].+)?)$",
        }
    ),
]
Text = Annotated[str | None, BeforeValidator(_text)]
PageLimit = Annotated[Annotated[int, Field(ge=1)] | None, BeforeValidator(_page_limit)]
ListLimit = Annotated[
    Annotated[int, Field(ge=1, le=MAX_LISTED)] | None,
    BeforeValidator(params.bounded_int(1, MAX_LISTED)),
]


class Query(Model):
    """The query-string parameters of one route: all optional, unknown ones ignored."""


class EventFilters(Query):
    """Exact-match filters of the timeline: parameter -> what it matches."""

    actor: Text = Field(None, description="exact the person (identity map)")
    user: Text = Field(None, description="exact user.name")
    ip: Text = Field(None, description="exact source.ip")
    host: Text = Field(None, description="exact host.name")
    account: Text = Field(None, description="exact cloud.account.id")
    region: Text = Field(None, description="exact cloud.region")
    dataset: Text = Field(None, description="exact event.dataset, e.g. aws.cloudtrail")
    action: Text = Field(None, description="exact event.action, e.g. ConsoleLogin")
    source: Text = Field(None, description="exact id of the source that read the event")


class EventsQuery(EventFilters):
    since: Moment = Field(None, description=f"events at or after this time: {TIME}")
    until: Moment = Field(None, description=f"events at or before this time: {TIME}")
    q: Text = Field(
        None, description="full text: every word must occur; a trailing * matches a prefix"
    )
    outcome: Annotated[Outcome | None, BeforeValidator(params.choice(*get_args(Outcome)))] = Field(
        None, description="event.outcome"
    )
    order: Annotated[Order | None, BeforeValidator(params.choice(*get_args(Order)))] = Field(
        None, description="newest (default) or oldest first"
    )
    limit: PageLimit = Field(None, description="events per page (default 100)")
    cursor: Annotated[
        int | None,
        BeforeValidator(params.bounded_int(0, (1 << 63) - 1)),
        WithJsonSchema({"type": "string", "pattern": "^[0-9]{1,19}$"}),
    ] = Field(None, description="next_cursor of the previous page")
    alert: Text = Field(
        None,
        description="only the evidence events of this alert id, as one page; takes only order"
        " and limit beside it (404 for an unknown alert)",
    )


class HistogramQuery(Query):
    since: Moment = Field(None, description=f"{TIME}; default: 24 hours before until")
    until: Moment = Field(None, description=f"{TIME}; default: now")
    interval: Annotated[
        str | None, WithJsonSchema({"type": "string", "pattern": "^[1-9][0-9]{0,4}(m|h|d)$"})
    ] = Field(
        None,
        description="bucket width like 5m, 1h, 1d, at most the span (checked against it by"
        " the handler); default: about 100 buckets",
    )


class QuarantineQuery(Query):
    source: Text = Field(None, description="only this source id")
    limit: ListLimit = Field(None, description="at most this many (default 100)")


class AlertsQuery(Query):
    since: Moment = Field(None, description=f"alerts whose last event is at or after: {TIME}")
    rule: Text = Field(None, description="only this rule id")
    severity: Annotated[Severity | None, BeforeValidator(params.choice(*SEVERITIES))] = Field(
        None, description="this severity or higher"
    )
    limit: ListLimit = Field(None, description="at most this many (default 100)")


class ChangesQuery(Query):
    since: Moment = Field(None, description=f"records whose window ends at or after: {TIME}")
    until: Moment = Field(None, description=f"records whose window starts at or before: {TIME}")
    state: Annotated[
        str | None,
        BeforeValidator(params.choice(*STATES)),
        WithJsonSchema({"type": "string", "enum": list(STATES)}),
    ] = Field(None, description="only this state")
    limit: ListLimit = Field(None, description="at most this many (default 100)")


class PersonQuery(Query):
    limit: PageLimit = Field(None, description="at most this many (default 100)")


# -- replies -------------------------------------------------------------------------------


class Reply(Model):
    def body(self) -> dict[str, Any]:
        """The JSON the handler sends."""
        return self.model_dump(mode="json", by_alias=True)


class Error(Reply):
    error: str


class Status(Reply):
    status: str


class Info(Reply):
    version: str
    timezone: str


class Event(Reply):
    id: str = Field(description="address of the event in this store")
    source: str
    log_type: str
    lane: Lane
    label: str | None = Field(
        description="the badge the page shows for the event's log type (AWS, GCP), if any"
    )
    document: dict[str, Any] = Field(description="ECS document")


class Page(Reply):
    events: list[Event]
    next_cursor: str | None


MAX_BUCKETS = 2000
"""Most histogram buckets one request asks for."""


def _lane_counts(schema: dict[str, Any]) -> None:
    """One count per lane of the timeline, besides ``start``."""
    schema["properties"].update({lane: {"type": "integer", "minimum": 0} for lane in LANES})
    schema["required"] = [*schema["required"], *LANES]


class Bucket(Model):
    model_config = ConfigDict(json_schema_extra=_lane_counts)

    start: str


class Histogram(Reply):
    since: str
    until: str
    interval_secs: int
    buckets: list[Bucket] = Field(max_length=MAX_BUCKETS)


class Source(Reply):
    id: str
    type: str
    state: SourceState
    newest: str | None
    lag_secs: float | None
    payloads: Count
    records: Count
    stored: Count
    duplicates: Count
    dropped: Count
    dropped_by: dict[str, Count] = Field(
        description="records dropped by each filter: keep, drop[i], event_categories,"
        " read_only (docs/filters.md)"
    )
    quarantined: Count
    failed_payloads: Count
    errors: Count
    last_error: str | None


class Sources(Reply):
    sources: list[Source]


class QuarantineEntry(Reply):
    id: int
    at: str
    source: str
    origin: str
    position: int | None
    reason: str
    raw_base64: str
    raw_size: int


class Quarantine(Reply):
    entries: list[QuarantineEntry] = Field(description="newest first")


class Rule(Model):
    id: str
    title: str
    description: str


class Evidence(Model):
    id: str = Field(description="event.id of the evidence event")
    timestamp: str = Field(alias="@timestamp")
    dataset: str = Field(alias="event.dataset")
    action: str | None = Field(alias="event.action")
    message: str | None


class Alert(Model):
    """The alert's documented JSON form (docs/outputs.md, the alert document)."""

    schema_: int = Field(alias="schema")
    id: str
    rule: Rule
    severity: Severity
    environment: Environment
    first_seen: str
    last_seen: str
    count: int
    tags: Names
    actors: Names
    evidence: list[Evidence]


class Alerts(Reply):
    alerts: list[Alert]


class ResolvedEvidence(Evidence):
    event: Event | None = Field(description="the stored event; null when retention dropped it")


class Delivery(Reply):
    output: str
    state: DeliveryState
    attempts: Count
    last_error: str | None
    enqueued_at: str


class AlertDetail(Alert):
    evidence: list[ResolvedEvidence]  # type: ignore[assignment] # each resolved to its event
    deliveries: list[Delivery]


class ChangeRecord(Model):
    """A change record (connectors/contracts/change-record.schema.json)."""

    model_config = ConfigDict(extra="allow")

    id: str
    state: Annotated[str, WithJsonSchema({"type": "string", "enum": list(STATES)})]
    window: dict[str, Any]


class Changes(Reply):
    changes: list[ChangeRecord]


class ChangeHistory(Reply):
    record: ChangeRecord
    history: list[ChangeRecord]


class Nearest(Model):
    id: str
    reasons: Names


class Coverage(Model):
    event: str
    covered: bool
    covered_by: Names
    nearest: list[Nearest]


class Seen(Model):
    """A change-class event of a review (key: its id under /api/v1/events)."""

    key: Digits
    id: str | None
    timestamp: str = Field(alias="@timestamp")
    dataset: str | None
    person: str | None
    action: str | None
    host: str | None = None
    account: str | None = None
    region: str | None = None
    message: str | None = None
    in_scope: bool | None = Field(None, description="inside the window only")
    reasons: Names | None = Field(None, description="inside the window: why out of scope")
    when: Literal["before", "after"] | None = None
    covered_by: Names | None = Field(None, description="outside the window: covering records")


class Implementer(Model):
    name: str
    people: list[dict[str, Any]]


class ReviewCounts(Model):
    in_scope: Count
    out_of_scope: Count
    outside_window: Count
    outside_covered: Count


class Review(Model):
    change: ChangeRecord
    verdict: Verdict
    as_of: str
    implementers: list[Implementer]
    counts: ReviewCounts
    inside: list[Seen] = Field(description="the implementers' change-class events in the window")
    outside: list[Seen] = Field(
        description="anyone's change-class events on the scope within 4 h of it"
    )
    truncated: bool | None = None


class UnixAccount(Model):
    name: str
    hosts: Names


class Identity(Model):
    id: str
    name: str | None
    emails: Names
    unix: list[UnixAccount]
    aws: Names
    groups: Names


class Person(Reply):
    id: str
    identity: Identity | None = Field(
        description="the identity map's entry; null when it does not name the id"
    )
    events: list[Event]
