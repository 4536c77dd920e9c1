"""What one member's store write hands the correlator, as bytes for the feed.

Members compute detection hits in their decoding workers; the leader
correlates them.  An entry carries the hits of one write and the change
records it stored (``RuleEngine.correlate`` judges changes against them), in
JSON so that every member reads what any other wrote.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson

from connectors.base import JSON
from daemon.alert import Evidence
from daemon.changes.coverage import Facts, Resource
from daemon.process import Processed
from daemon.rules.hits import Hit


def encode(batches: Sequence[Processed]) -> bytes | None:
    """The entry of a write; None when it holds nothing to correlate."""
    hits = [_hit(hit) for batch in batches for hit in batch.hits]
    changes = [orjson.Fragment(entry.record) for batch in batches for _, entry in batch.changes]
    if not hits and not changes:
        return None
    return orjson.dumps({"hits": hits, "changes": changes})


def decode(entry: bytes) -> tuple[list[Hit], list[JSON]]:
    """The hits and change records of an entry."""
    data = orjson.loads(entry)
    return [_unhit(item) for item in data["hits"]], data["changes"]


def _hit(hit: Hit) -> dict[str, Any]:
    facts = hit.facts
    return {
        "rule": hit.rule,
        "evidence": hit.evidence.to_json(),
        "source": hit.source,
        "values": hit.values,
        "actors": hit.actors,
        "context": hit.context,
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
        },
    }


def _unhit(item: dict[str, Any]) -> Hit:
    facts = item["facts"]
    return Hit(
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
        ),
    )
