"""Which detection rules match one event, found through an index.

Rules are grouped by ``event.dataset``.  Within a dataset, a rule keyed on a
field (CloudTrail's ``eventName``) is tried only on events with one of the
literal values it needs; a rule that needs some literal text in some field
(SigmaHQ's linux rules) only on events that hold it (``prefilter.py``); the
rest on every event.  The cost per event grows with the rules that could match
it, not with the pack.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from daemon.rules.compile import Doc, as_text, getter
from daemon.rules.loader import DetectionRule
from daemon.rules.prefilter import Prefilter


@dataclass(slots=True)
class _Bucket:
    keyed: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    filtered: Prefilter = field(default_factory=Prefilter)
    always: list[int] = field(default_factory=list)
    key: Callable[[Doc], Any] | None = None
    """Reads the index field (``eventName``) of an event of this dataset."""


class Detector:
    """Matches documents against a fixed set of compiled detection rules."""

    def __init__(self, rules: list[DetectionRule]) -> None:
        self.rules = rules
        self._matchers = [rule.match for rule in rules]
        self._buckets: dict[str, _Bucket] = {}
        for position, rule in enumerate(rules):
            for dataset in rule.source.datasets:
                bucket = self._buckets.setdefault(dataset, _Bucket())
                index_field = rule.source.index_field
                if index_field is not None and bucket.key is None:
                    bucket.key = getter(rule.source.paths(index_field))
                if rule.index_values is not None:
                    for value in rule.index_values:
                        bucket.keyed[value].append(position)
                elif rule.needles is not None:
                    bucket.filtered.add(position, rule.needles)
                else:
                    bucket.always.append(position)

    def covers(self, dataset: str) -> bool:
        """Whether any rule looks at events of this dataset."""
        return dataset in self._buckets

    def match(self, doc: Doc) -> list[DetectionRule]:
        """The rules the document matches, in the order they were loaded."""
        event = doc.get("event")
        dataset = event.get("dataset") if isinstance(event, dict) else None
        bucket = self._buckets.get(dataset) if isinstance(dataset, str) else None
        if bucket is None:
            return []
        # One list of candidates and one loop: most events try one or two rules, and
        # a generator per kind of candidate cost more than the rules it tried.
        candidates = [*bucket.always, *bucket.filtered.candidates(doc)]
        if bucket.key is not None:
            key = as_text(bucket.key(doc))
            if key is not None:
                candidates += bucket.keyed.get(key.lower(), ())
        matchers = self._matchers
        found = [position for position in candidates if matchers[position](doc)]
        if len(found) > 1:
            found.sort()
        rules = self.rules
        return [rules[position] for position in found]
