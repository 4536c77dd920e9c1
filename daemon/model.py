"""The one event shape every source is normalized into.

Field names follow the Elastic Common Schema so that exports load into
Elasticsearch/OpenSearch without a mapping step and rules can name ECS fields.
The dataclass keeps the fields the daemon itself reads (indexes, correlation,
the timeline) typed and flat; everything else a normalizer knows goes into
``fields`` under its dotted ECS name and is merged into the document.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

JSON = dict[str, Any]


_FORMATTED: dict[datetime, str] = {}


def format_timestamp(moment: datetime) -> str:
    """ECS timestamps: UTC, microseconds only when present, ``Z`` suffix.

    Remembered, because events of one file share seconds and one ingest time.
    """
    text = _FORMATTED.get(moment)
    if text is None:
        offset = moment.utcoffset()
        # isoformat leaves out zero microseconds, as ECS readers expect; its "+00:00"
        # is cut off rather than made absent by a copy without the zone (a third slower).
        iso = (moment.astimezone(UTC) if offset else moment).isoformat()
        text = (iso if offset is None else iso[:-6]) + "Z"
        if len(_FORMATTED) >= 4096:
            _FORMATTED.clear()
        _FORMATTED[moment] = text
    return text


def parse_timestamp(text: str) -> datetime:
    """Inverse of :func:`format_timestamp`; accepts any ISO 8601 form with a zone."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"timestamp without a time zone: {text!r}")
    return moment.astimezone(UTC)


@dataclass(slots=True)
class AuditEvent:
    """One normalized audit event (ECS)."""

    timestamp: datetime
    """``@timestamp``: when it happened (event time), aware, UTC."""
    id: str
    """``event.id``: stable across re-reads (CloudTrail eventID, hash for syslog)."""
    dataset: str
    """``event.dataset``: ``aws.cloudtrail``, ``system.auth``, ``auditd.log``, ``change``."""
    kind: str = "event"
    category: list[str] = field(default_factory=list)
    type: list[str] = field(default_factory=list)
    action: str | None = None
    outcome: str | None = None
    """``success`` | ``failure`` | ``unknown``."""
    provider: str | None = None
    ingested: datetime | None = None
    user_name: str | None = None
    user_id: str | None = None
    user_target_name: str | None = None
    source_ip: str | None = None
    source_address: str | None = None
    host_name: str | None = None
    host_ip: list[str] = field(default_factory=list)
    cloud_provider: str | None = None
    cloud_account_id: str | None = None
    cloud_region: str | None = None
    cloud_service_name: str | None = None
    related_user: list[str] = field(default_factory=list)
    related_ip: list[str] = field(default_factory=list)
    related_hosts: list[str] = field(default_factory=list)
    message: str | None = None
    actor: str | None = None
    """The person behind the event, resolved through the identity map."""
    labels: dict[str, str] = field(default_factory=dict)
    fields: JSON = field(default_factory=dict)
    """Further ECS fields by dotted name, e.g. ``user_agent.original``."""
    original: Any = None
    """The parsed original record."""

    def to_document(self) -> JSON:
        """The ECS document: nested objects, empty values left out.

        Written out longhand because it runs for every stored event.
        """
        event: JSON = {"id": self.id, "kind": self.kind, "dataset": self.dataset}
        if self.category:
            event["category"] = self.category
        if self.type:
            event["type"] = self.type
        if self.action:
            event["action"] = self.action
        if self.outcome:
            event["outcome"] = self.outcome
        if self.provider:
            event["provider"] = self.provider
        if self.ingested is not None:
            event["ingested"] = format_timestamp(self.ingested)
        doc: JSON = {"@timestamp": format_timestamp(self.timestamp), "event": event}
        if self.user_name or self.user_id or self.user_target_name:
            user: JSON = {}
            if self.user_name:
                user["name"] = self.user_name
            if self.user_id:
                user["id"] = self.user_id
            if self.user_target_name:
                user["target"] = {"name": self.user_target_name}
            doc["user"] = user
        if self.source_ip or self.source_address:
            source: JSON = {}
            if self.source_ip:
                source["ip"] = self.source_ip
            if self.source_address:
                source["address"] = self.source_address
            doc["source"] = source
        if self.host_name or self.host_ip:
            host: JSON = {}
            if self.host_name:
                host["name"] = self.host_name
            if self.host_ip:
                host["ip"] = self.host_ip
            doc["host"] = host
        if (
            self.cloud_provider
            or self.cloud_account_id
            or self.cloud_region
            or self.cloud_service_name
        ):
            cloud: JSON = {}
            if self.cloud_provider:
                cloud["provider"] = self.cloud_provider
            if self.cloud_account_id:
                cloud["account"] = {"id": self.cloud_account_id}
            if self.cloud_region:
                cloud["region"] = self.cloud_region
            if self.cloud_service_name:
                cloud["service"] = {"name": self.cloud_service_name}
            doc["cloud"] = cloud
        if self.related_user or self.related_ip or self.related_hosts:
            related: JSON = {}
            if self.related_user:
                related["user"] = self.related_user
            if self.related_ip:
                related["ip"] = self.related_ip
            if self.related_hosts:
                related["hosts"] = self.related_hosts
            doc["related"] = related
        if self.message:
            doc["message"] = self.message
        if self.actor:
            doc["actor"] = self.actor
        if self.labels:
            doc["labels"] = self.labels
        if self.fields:
            _merge_fields(doc, self.fields)
        if self.original is not None:
            doc["original"] = self.original
        return doc

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_document())

    @classmethod
    def from_document(cls, doc: JSON) -> AuditEvent:
        """Rebuild an event from :meth:`to_document` output."""
        doc = dict(doc)
        groups = {name: _copy(doc.pop(name, None)) for name in _GROUPS}
        event, user, source, host, cloud, related = (groups[name] for name in _GROUPS)
        ingested = event.pop("ingested", None)
        target = user.get("target") or {}
        account = cloud.get("account") or {}
        service = cloud.get("service") or {}
        result = cls(
            timestamp=parse_timestamp(doc.pop("@timestamp")),
            id=event.pop("id"),
            dataset=event.pop("dataset"),
            kind=event.pop("kind", "event"),
            category=event.pop("category", []),
            type=event.pop("type", []),
            action=event.pop("action", None),
            outcome=event.pop("outcome", None),
            provider=event.pop("provider", None),
            ingested=parse_timestamp(ingested) if ingested else None,
            user_name=user.pop("name", None),
            user_id=user.pop("id", None),
            user_target_name=target.pop("name", None),
            source_ip=source.pop("ip", None),
            source_address=source.pop("address", None),
            host_name=host.pop("name", None),
            host_ip=host.pop("ip", []),
            cloud_provider=cloud.pop("provider", None),
            cloud_account_id=account.pop("id", None),
            cloud_region=cloud.pop("region", None),
            cloud_service_name=service.pop("name", None),
            related_user=related.pop("user", []),
            related_ip=related.pop("ip", []),
            related_hosts=related.pop("hosts", []),
            message=doc.pop("message", None),
            actor=doc.pop("actor", None),
            labels=doc.pop("labels", {}),
            original=doc.pop("original", None),
        )
        # Whatever the typed fields did not take goes back under its dotted name.
        for name, rest in groups.items():
            _flatten(rest, name, result.fields)
        _flatten(doc, "", result.fields)
        return result


_GROUPS = ("event", "user", "source", "host", "cloud", "related")


def _copy(node: Any) -> JSON:
    """A copy deep enough that popping typed leaves leaves the input alone."""
    if not isinstance(node, dict):
        return {}
    return {k: dict(v) if isinstance(v, dict) else v for k, v in node.items()}


Plan = tuple[tuple[tuple[int, str], ...], tuple[tuple[int, str], ...]]
"""Objects to find or make (parent index, name), then where each field goes
(object index, leaf name), for one sequence of dotted field names."""
_PLANS: dict[tuple[str, ...], Plan] = {}
_PLANS_MAX = 1024


def _plan(names: tuple[str, ...]) -> Plan:
    objects: dict[tuple[str, ...], int] = {(): 0}
    made: list[tuple[int, str]] = []
    slots: list[tuple[int, str]] = []
    for dotted in names:
        *parents, leaf = dotted.split(".")
        index = 0
        for depth in range(len(parents)):
            path = tuple(parents[: depth + 1])
            found = objects.get(path)
            if found is None:
                made.append((index, parents[depth]))
                found = objects[path] = len(made)
            index = found
        slots.append((index, leaf))
    if len(_PLANS) >= _PLANS_MAX:
        _PLANS.clear()
    plan = _PLANS[names] = (tuple(made), tuple(slots))
    return plan


def _merge_fields(doc: JSON, fields: JSON) -> None:
    """Put dotted fields into the nested document.

    Normalizers emit the same field names in the same order for records of
    one shape, so where each name goes is worked out once per shape.
    """
    names = tuple(fields)
    made, slots = _PLANS.get(names) or _plan(names)
    nodes = [doc]
    for parent, name in made:
        node = nodes[parent]
        child = node.get(name)
        if child is None:
            child = node[name] = {}
        nodes.append(child)
    skipped = False
    for (index, leaf), value in zip(slots, fields.values(), strict=True):
        # None, "", [] and {}; ``value in ("", [], {})`` built a list and a dict per field.
        if not value and (value is None or isinstance(value, str | list | dict)):
            skipped = True
            continue
        nodes[index][leaf] = value
    if skipped:
        for index in range(len(made), 0, -1):  # children were made after their parents
            parent, name = made[index - 1]
            if nodes[index] == {}:
                del nodes[parent][name]


def _flatten(node: JSON, prefix: str, out: JSON) -> None:
    for key, value in node.items():
        dotted = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            _flatten(value, dotted, out)
        else:
            out[dotted] = value
