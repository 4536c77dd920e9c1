"""The rules of one daemon run: loaded once at start, correlated by the correlator stage.

Detection runs in the decoding workers (``process.init_worker`` compiles the
same paths); this object holds the stateful half, which the correlator stage
(``daemon/correlator/stage.py``) feeds with the hits it reads from the store's
feed, one round at a time, and whose state it commits with the alerts.

Hits of ``unapproved_change`` are judged against the change records first
(``approvals``): those the store holds when the round is correlated, which
include the records of the write that stored the change's event.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from daemon.alert import Alert
from daemon.rules.correlate import Correlator
from daemon.rules.hits import Hit
from daemon.rules.loader import Loaded, load_rules
from daemon.rules.unapproved import Approvals
from daemon.timeparse import parse_duration

MAX_BACKFILL_HITS: Final = 100_000
"""Hits a backfill's correlator round holds for ordering (bounded memory: a hit
weighs about a kilobyte).  A backfill is correlated once every source is read,
in rounds of this many hits, each in event-time order: sources are read roughly
in time order, so rounds in order and ``allowed_lateness`` within a round's
edges give the live result."""


@dataclass(slots=True)
class RuleEngine:
    paths: tuple[str, ...]
    loaded: Loaded
    correlator: Correlator
    approvals: Approvals = field(default_factory=lambda: Approvals(lambda since, until: []))
    """Where change hits are judged; the daemon sets one that reads its store."""

    @classmethod
    def load(
        cls,
        paths: Sequence[str],
        *,
        allowed_lateness: str = "20m",
        suppress_for: str = "1h",
    ) -> RuleEngine:
        """Raises ``RuleLoadError`` naming the rule file: a config error found at start."""
        return cls.of(
            paths, load_rules(paths), allowed_lateness=allowed_lateness, suppress_for=suppress_for
        )

    @classmethod
    def of(
        cls,
        paths: Sequence[str],
        loaded: Loaded,
        *,
        allowed_lateness: str = "20m",
        suppress_for: str = "1h",
    ) -> RuleEngine:
        """An engine with empty state over rules loaded before."""
        correlator = Correlator(
            loaded,
            allowed_lateness=parse_duration(allowed_lateness),
            suppress_for=parse_duration(suppress_for),
        )
        return cls(tuple(str(path) for path in paths), loaded, correlator)

    def correlate(self, hits: Sequence[Hit]) -> list[Alert]:
        """Alerts raised or updated by one round of hits.

        The hits of a round (several writes' batches, in commit order) are
        correlated in event-time order, so that order does not pick which of
        them opens an alert and names it."""
        ordered = sorted(hits, key=Hit.order)
        return self.correlator.feed(self.approvals.judge(ordered))
