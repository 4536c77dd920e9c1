"""Which detection rules match one event, found through an index.

Rules are grouped by ``event.dataset``, and within a dataset whose rules are
keyed on a field (CloudTrail's ``eventName``) by the literal values they need,
so an event is tried only against the few rules that could match it: the
cost per event grows with the rules that share its name, not with the pack.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from daemon.rules.compile import Doc, as_text, getter
from daemon.rules.loader import DetectionRule


@dataclass(slots=True)
class _Bucket:
    keyed: dict[str, list[DetectionRule]] = field(default_factory=lambda: defaultdict(list))
    always: list[DetectionRule] = field(default_factory=list)
    key: Callable[[Doc], Any] | None = None
    """Reads the index field (``eventName``) of an event of this dataset."""


class Detector:
    """Matches documents against a fixed set of compiled detection rules."""

    def __init__(self, rules: list[DetectionRule]) -> None:
        self.rules = rules
        self._buckets: dict[str, _Bucket] = {}
        for rule in rules:
            for dataset in rule.source.datasets:
                bucket = self._buckets.setdefault(dataset, _Bucket())
                index_field = rule.source.index_field
                if index_field is not None and bucket.key is None:
                    bucket.key = getter(rule.source.paths(index_field))
                if rule.index_values is None:
                    bucket.always.append(rule)
                else:
                    for value in rule.index_values:
                        bucket.keyed[value].append(rule)

    def match(self, doc: Doc) -> list[DetectionRule]:
        event = doc.get("event")
        dataset = event.get("dataset") if isinstance(event, dict) else None
        bucket = self._buckets.get(dataset) if isinstance(dataset, str) else None
        if bucket is None:
            return []
        found = [rule for rule in bucket.always if rule.match(doc)]
        if bucket.key is not None:
            key = as_text(bucket.key(doc))
            if key is not None:
                found.extend(rule for rule in bucket.keyed.get(key.lower(), ()) if rule.match(doc))
        return found
