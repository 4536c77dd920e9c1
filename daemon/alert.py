"""The alert shape shared by the correlator, the store, the outbox and the channels.

One documented JSON form (``to_json``/``from_json``, with a ``schema`` version
field) is what webhooks receive, what ``auditcorr alerts --json`` prints and
what the store keeps, so every consumer reads the same thing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import orjson

from daemon.model import format_timestamp, parse_timestamp

SCHEMA_VERSION = 1

Severity = Literal["informational", "low", "medium", "high", "critical"]
SEVERITIES: tuple[Severity, ...] = ("informational", "low", "medium", "high", "critical")
"""In rising order: ``SEVERITIES.index`` compares them."""

Environment = Literal["cloud", "on-prem", "hybrid"]


def alert_id(rule_id: str, group: Mapping[str, str], first_at: datetime, first_id: str) -> str:
    """A pure function of the rule, the group-by values (sorted by name) and the first
    evidence (event time and id), so a replay, a second daemon, a cluster's new leader
    or another order of the same hits makes the same id: the idempotency key of delivery.
    """
    values = "\x1e".join(f"{name}={group[name]}" for name in sorted(group))
    seed = f"{rule_id}\x1f{values}\x1f{format_timestamp(first_at)}\x1f{first_id}"
    return hashlib.blake2b(seed.encode(), digest_size=16).hexdigest()


@dataclass(frozen=True, slots=True)
class Evidence:
    """One event that made the alert, as much of it as a reader needs."""

    id: str
    timestamp: datetime
    dataset: str
    action: str | None = None
    message: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "@timestamp": format_timestamp(self.timestamp),
            "event.dataset": self.dataset,
            "event.action": self.action,
            "message": self.message,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Evidence:
        return cls(
            id=data["id"],
            timestamp=parse_timestamp(data["@timestamp"]),
            dataset=data["event.dataset"],
            action=data.get("event.action"),
            message=data.get("message"),
        )


@dataclass(slots=True)
class Alert:
    id: str
    rule_id: str
    title: str
    severity: Severity
    environment: Environment
    first_seen: datetime
    last_seen: datetime
    count: int = 1
    tags: list[str] = field(default_factory=list)
    """ATT&CK tags as Sigma writes them: ``attack.t1562.008``."""
    actors: list[str] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    description: str = ""
    group: dict[str, str] = field(default_factory=dict)
    """The group-by values that keyed the alert (``source.ip``, ``actor``, …)."""
    context: dict[str, Any] = field(default_factory=dict)
    """Rule-specific detail, e.g. the nearest change records of an unapproved change."""
    _encoded: tuple[list[Evidence], list[dict[str, Any]]] | None = field(
        default=None, init=False, repr=False, compare=False
    )
    """``evidence`` (the list object) and its JSON: an alert a flood keeps updating is
    encoded several times a round, its evidence long since full.  Made again when the
    list is replaced or grows (the correlator only ever inserts into it)."""

    _document: tuple[tuple[Any, ...], bytes] | None = field(
        default=None, init=False, repr=False, compare=False
    )
    """``to_json`` encoded, and what it was made of: see ``document``."""

    def document(self) -> bytes:
        """The JSON form encoded, as the state, the alerts table and the outbox store it.

        Made once for the several places a round writes it, and again when a repeat
        has changed the alert (each repeat counts: the count is part of the mark)."""
        mark = (
            self.count,
            self.first_seen,
            self.last_seen,
            self.environment,
            len(self.actors),
            len(self.evidence),
        )
        cached = self._document
        if cached is None or cached[0] != mark:
            cached = self._document = (mark, orjson.dumps(self.to_json()))
        return cached[1]

    def to_json(self) -> dict[str, Any]:
        encoded = self._encoded
        if (
            encoded is None
            or encoded[0] is not self.evidence
            or len(encoded[1]) != len(self.evidence)
        ):
            encoded = self._encoded = (self.evidence, [item.to_json() for item in self.evidence])
        return {
            "schema": SCHEMA_VERSION,
            "id": self.id,
            "rule": {"id": self.rule_id, "title": self.title, "description": self.description},
            "severity": self.severity,
            "environment": self.environment,
            "first_seen": format_timestamp(self.first_seen),
            "last_seen": format_timestamp(self.last_seen),
            "count": self.count,
            "tags": list(self.tags),
            "actors": list(self.actors),
            "group": dict(self.group),
            "evidence": list(encoded[1]),
            "context": self.context,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Alert:
        rule = data["rule"]
        return cls(
            id=data["id"],
            rule_id=rule["id"],
            title=rule["title"],
            description=rule.get("description", ""),
            severity=data["severity"],
            environment=data["environment"],
            first_seen=parse_timestamp(data["first_seen"]),
            last_seen=parse_timestamp(data["last_seen"]),
            count=int(data["count"]),
            tags=list(data.get("tags", [])),
            actors=list(data.get("actors", [])),
            group=dict(data.get("group", {})),
            evidence=[Evidence.from_json(item) for item in data.get("evidence", [])],
            context=dict(data.get("context", {})),
        )
