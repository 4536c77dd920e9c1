"""What a matched event hands the correlator: small, enough for an alert.

Detection is stateless and runs where events are decoded (the worker
processes); only these hits travel to the correlator, never whole documents:
as JSON in the store's feed, committed with their events, and in the
correlator's durable window state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

import orjson

from daemon.alert import Evidence
from daemon.changes.coverage import Facts, facts_of
from daemon.logtypes import Resource
from daemon.model import parse_timestamp
from daemon.rules.behaviour import needed
from daemon.rules.change import CHANGE_RULE
from daemon.rules.compile import Doc, as_text, getter
from daemon.rules.detect import Detector
from daemon.rules.loader import DetectionRule, Loaded


@dataclass(frozen=True, slots=True)
class Hit:
    """One event matched by one detection rule."""

    rule: str
    evidence: Evidence
    source: str
    """The configured source it came from: watermarks are kept per source."""
    values: dict[str, str] = field(default_factory=dict)
    """Field name -> value, for every field the rule's alerts group or count by."""
    actors: tuple[str, ...] = ()
    facts: Facts | None = None
    """For ``unapproved_change``: what the change-record coverage query needs
    of the event, judged against the records where the alerts are made."""
    context: dict[str, list[Any]] | None = None
    """Lists the alert's ``context`` gathers, one item per event (the nearest records)."""

    @property
    def timestamp(self) -> datetime:
        return self.evidence.timestamp

    def order(self) -> tuple[datetime, str, str]:
        """Event time, then evidence id and rule: hits sorted by this take one order
        whatever order they arrived in, so the same hits make the same windows and ids."""
        return (self.evidence.timestamp, self.evidence.id, self.rule)

    def to_json(self) -> dict[str, Any]:
        return hit_json(
            self.rule,
            self.evidence.to_json(),
            source=self.source,
            values=self.values,
            actors=self.actors,
            facts=self.facts,
            context=self.context,
        )

    @classmethod
    def from_json(cls, item: dict[str, Any]) -> Hit:
        facts = item["facts"]
        return cls(
            rule=item["rule"],
            evidence=Evidence.from_json(item["evidence"]),
            source=item["source"],
            values=item["values"],
            actors=tuple(item["actors"]),
            context=item["context"],
            facts=None
            if facts is None
            else Facts(
                time=datetime.fromisoformat(facts["time"]),
                people=tuple(facts["people"]),
                host=facts["host"],
                account=facts["account"],
                region=facts["region"],
                resources=tuple(Resource(rid, arn) for rid, arn in facts["resources"]),
                action=facts["action"],
                cloud=_shared(tuple((axis, value) for axis, value in facts.get("cloud", ()))),
            ),
        )


def hit_json(
    rule: str,
    evidence: dict[str, Any],
    *,
    source: str,
    values: dict[str, str],
    actors: tuple[str, ...],
    facts: Facts | None,
    context: dict[str, list[Any]] | None = None,
) -> dict[str, Any]:
    """A hit as JSON, from its parts: the worker encodes its hits without making them."""
    return {
        "rule": rule,
        "evidence": evidence,
        "source": source,
        "values": values,
        "actors": actors,
        "context": context,
        "facts": None
        if facts is None
        else {
            "time": facts.time,
            "people": facts.people,
            "host": facts.host,
            "account": facts.account,
            "region": facts.region,
            "resources": [[item.id, item.arn] for item in facts.resources],
            "action": facts.action,
            "cloud": [list(pair) for pair in facts.cloud],
        },
    }


Cloud = tuple[tuple[str, str | None], ...]


@lru_cache(maxsize=4096)
def _shared(cloud: Cloud) -> Cloud:
    """One tuple for each cloud scope seen: a backfill holds up to 100,000 hits for
    ordering, nearly all of them in one of a few accounts and regions, and a tuple of
    its own per hit took 14 MB there."""
    return cloud


def needed_fields(loaded: Loaded) -> dict[str, tuple[str, ...]]:
    """Detection rule id -> the fields its hits must carry."""
    needs: dict[str, set[str]] = {rule.info.id: set(rule.group_by) for rule in loaded.detections}
    for corr in loaded.correlations:
        for rule_id in corr.rules:
            wanted = needs.setdefault(rule_id, set())
            wanted.update(corr.field_of(name, rule_id) for name in corr.group_by)
            if corr.condition.field:
                wanted.add(corr.field_of(corr.condition.field, rule_id))
    for rule in loaded.behaviours:
        for rule_id in rule.rules:
            needs.setdefault(rule_id, set()).update(needed(rule))
    return {rule_id: tuple(sorted(names)) for rule_id, names in needs.items()}


def _text(value: Any) -> str | None:
    if isinstance(value, list):
        texts = [text for text in (as_text(item) for item in value) if text is not None]
        return ",".join(texts) if texts else None
    return as_text(value)


class HitMaker:
    """Detection plus what to keep of each match; one per worker process."""

    def __init__(self, loaded: Loaded) -> None:
        self.detector = Detector(loaded.detections)
        needs = needed_fields(loaded)
        self._getters = {
            rule.info.id: [
                (name, getter(rule.source.paths(name))) for name in needs.get(rule.info.id, ())
            ]
            for rule in loaded.detections
        }

    def covers(self, dataset: str) -> bool:
        """Whether any rule looks at this dataset: events of others need no document."""
        return self.detector.covers(dataset)

    def encoded(self, doc: Doc, source: str) -> list[bytes]:
        """The hits of one event as the store's feed carries them.

        Made from their parts, without ``Hit`` objects: most events of a listener's
        syslog mix raise one or two hits, and objects made only to be written out
        cost the worker about 1.5 µs of its 44 per event there (bench/worker.py).
        """
        rules = self.detector.match(doc)
        if not rules:
            return []
        evidence = evidence_of(doc).to_json()
        actors = _actors(doc)
        return [
            orjson.dumps(
                hit_json(
                    rule_id, evidence, source=source, values=values, actors=actors, facts=facts
                )
            )
            for rule_id, values, facts in self._parts(rules, doc)
        ]

    def hits(self, doc: Doc, source: str) -> list[Hit]:
        rules = self.detector.match(doc)
        if not rules:
            return []
        evidence = evidence_of(doc)
        actors = _actors(doc)
        return [
            Hit(rule_id, evidence, source, values, actors, facts)
            for rule_id, values, facts in self._parts(rules, doc)
        ]

    def _parts(
        self, rules: list[DetectionRule], doc: Doc
    ) -> list[tuple[str, dict[str, str], Facts | None]]:
        """(rule id, values, facts) of each rule the document matched."""
        parts = []
        for rule in rules:
            rule_id = rule.info.id
            values = {}
            for name, get in self._getters.get(rule_id, ()):
                text = _text(get(doc))
                if text is not None:
                    values[name] = text
            parts.append((rule_id, values, facts_of(doc) if rule_id == CHANGE_RULE else None))
        return parts


def evidence_of(doc: Doc) -> Evidence:
    event = doc["event"]
    return Evidence(
        id=str(event.get("id", "")),
        timestamp=parse_timestamp(doc["@timestamp"]),
        dataset=str(event.get("dataset", "")),
        action=event.get("action"),
        message=doc.get("message"),
    )


def _actors(doc: Doc) -> tuple[str, ...]:
    actor = doc.get("actor")
    if isinstance(actor, str) and actor:
        return (actor,)
    user = doc.get("user")
    name = user.get("name") if isinstance(user, dict) else None
    return (name,) if isinstance(name, str) and name else ()
