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


def format_timestamp(moment: datetime) -> str:
    """ECS timestamps: UTC, microseconds only when present, ``Z`` suffix."""
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}"
    return text + "Z"


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
        """The ECS document: nested objects, empty values left out."""
        doc: JSON = {"@timestamp": format_timestamp(self.timestamp)}
        event: JSON = {"id": self.id, "kind": self.kind, "dataset": self.dataset}
        _put(event, "category", self.category)
        _put(event, "type", self.type)
        _put(event, "action", self.action)
        _put(event, "outcome", self.outcome)
        _put(event, "provider", self.provider)
        if self.ingested is not None:
            event["ingested"] = format_timestamp(self.ingested)
        doc["event"] = event
        user: JSON = {}
        _put(user, "name", self.user_name)
        _put(user, "id", self.user_id)
        if self.user_target_name:
            user["target"] = {"name": self.user_target_name}
        _put(doc, "user", user)
        source: JSON = {}
        _put(source, "ip", self.source_ip)
        _put(source, "address", self.source_address)
        _put(doc, "source", source)
        host: JSON = {}
        _put(host, "name", self.host_name)
        _put(host, "ip", self.host_ip)
        _put(doc, "host", host)
        cloud: JSON = {}
        _put(cloud, "provider", self.cloud_provider)
        if self.cloud_account_id:
            cloud["account"] = {"id": self.cloud_account_id}
        _put(cloud, "region", self.cloud_region)
        if self.cloud_service_name:
            cloud["service"] = {"name": self.cloud_service_name}
        _put(doc, "cloud", cloud)
        related: JSON = {}
        _put(related, "user", self.related_user)
        _put(related, "ip", self.related_ip)
        _put(related, "hosts", self.related_hosts)
        _put(doc, "related", related)
        _put(doc, "message", self.message)
        _put(doc, "actor", self.actor)
        _put(doc, "labels", self.labels)
        for dotted, value in self.fields.items():
            _put_dotted(doc, dotted, value)
        if self.original is not None:
            doc["original"] = self.original
        return doc

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_document())

    @classmethod
    def from_document(cls, doc: JSON) -> AuditEvent:
        """Rebuild an event from :meth:`to_document` output."""
        doc = dict(doc)
        event = dict(doc.pop("event"))
        user = dict(doc.pop("user", {}))
        source = dict(doc.pop("source", {}))
        host = dict(doc.pop("host", {}))
        cloud = dict(doc.pop("cloud", {}))
        related = doc.pop("related", {})
        ingested = event.pop("ingested", None)
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
            user_target_name=(user.pop("target", None) or {}).get("name"),
            source_ip=source.pop("ip", None),
            source_address=source.pop("address", None),
            host_name=host.pop("name", None),
            host_ip=host.pop("ip", []),
            cloud_provider=cloud.pop("provider", None),
            cloud_account_id=(cloud.pop("account", None) or {}).get("id"),
            cloud_region=cloud.pop("region", None),
            cloud_service_name=(cloud.pop("service", None) or {}).get("name"),
            related_user=related.get("user", []),
            related_ip=related.get("ip", []),
            related_hosts=related.get("hosts", []),
            message=doc.pop("message", None),
            actor=doc.pop("actor", None),
            labels=doc.pop("labels", {}),
            original=doc.pop("original", None),
        )
        leftovers = {"event": event, "user": user, "source": source, "host": host, "cloud": cloud}
        for name, rest in leftovers.items():
            if rest:
                _flatten(rest, name, result.fields)
        _flatten(doc, "", result.fields)
        return result


def _put(target: JSON, key: str, value: Any) -> None:
    if value or value is False or value == 0:
        target[key] = value


_PATHS: dict[str, tuple[tuple[str, ...], str]] = {}


def _put_dotted(doc: JSON, dotted: str, value: Any) -> None:
    path = _PATHS.get(dotted)
    if path is None:
        *parents, leaf = dotted.split(".")
        path = (tuple(parents), leaf)
        if len(_PATHS) < 4096:  # field names come from normalizer code: a small set
            _PATHS[dotted] = path
    node = doc
    for name in path[0]:
        node = node.setdefault(name, {})
    _put(node, path[1], value)


def _flatten(node: JSON, prefix: str, out: JSON) -> None:
    for key, value in node.items():
        dotted = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict) and value:
            _flatten(value, dotted, out)
        else:
            out[dotted] = value
