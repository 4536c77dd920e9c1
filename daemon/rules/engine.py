"""The rules of one daemon run: loaded once at start, correlated in the writer.

Detection runs in the decoding workers (``process.init_worker`` compiles the
same paths); this object holds the stateful half.  Live, each committed
batch's hits are correlated (in event-time order within the batch) before
the batch is written, and the alerts go into the same transaction.  A
backfill instead gathers its hits (only the matches: few) and correlates them
in event-time order across all sources once everything is read, so a replay
raises what a live run would have.

Hits of ``unapproved_change`` are judged against the change records first
(``approvals``): live against the records stored when the batch is written
(and the batch's own), in a backfill once every source, change records
included, has been read, so the order the sources are read in does not matter.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Final

import orjson

from connectors.base import JSON
from daemon.alert import Alert
from daemon.model import parse_timestamp
from daemon.process import Processed
from daemon.rules.correlate import Correlator
from daemon.rules.hits import Hit, HitMaker
from daemon.rules.loader import Loaded, load_rules
from daemon.rules.unapproved import Approvals
from daemon.store.base import EventQuery, Store
from daemon.timeparse import parse_duration

REBUILD_SOURCE: Final = "\x00timeline"
"""The source name of hits replayed from the store at start."""
REBUILD_LIMIT: Final = 200_000
"""Events read back at most to rebuild correlation windows at start."""
MAX_BACKFILL_HITS: Final = 100_000
"""Hits a backfill holds for ordering (bounded memory: a hit weighs about a
kilobyte).  When full, the held hits are correlated in event-time order and
holding starts over: sources are read roughly in time order, so chunks in
order and ``allowed_lateness`` within a chunk's edges give the live result."""


@dataclass(slots=True)
class RuleEngine:
    paths: tuple[str, ...]
    loaded: Loaded
    correlator: Correlator
    ordered: bool = False
    """Backfill: gather hits, correlate them in event-time order at the end."""
    approvals: Approvals = field(default_factory=lambda: Approvals(lambda since, until: []))
    """Where change hits are judged; the daemon sets one that reads its store."""
    _held: list[Hit] = field(default_factory=list)

    @classmethod
    def load(
        cls,
        paths: Sequence[str],
        *,
        allowed_lateness: str = "20m",
        suppress_for: str = "1h",
        ordered: bool = False,
    ) -> RuleEngine:
        """Raises ``RuleLoadError`` naming the rule file: a config error found at start."""
        loaded = load_rules(paths)
        correlator = Correlator(
            loaded,
            allowed_lateness=parse_duration(allowed_lateness),
            suppress_for=parse_duration(suppress_for),
        )
        return cls(tuple(str(path) for path in paths), loaded, correlator, ordered)

    def alerts_for(self, results: Sequence[Processed]) -> list[Alert]:
        """Alerts raised or updated by a batch about to be written (runs in the writer thread)."""
        hits = [hit for result in results for hit in result.hits]
        if self.ordered:
            self._held.extend(hits)
            if len(self._held) < MAX_BACKFILL_HITS:
                return []
            hits = self._release()
        pending = [orjson.loads(entry.record) for result in results for _, entry in result.changes]
        return self.correlate(hits, pending)

    def correlate(self, hits: list[Hit], pending: Sequence[JSON] = ()) -> list[Alert]:
        """Alerts raised or updated by hits, changes judged with ``pending`` records
        besides the stored ones (a cluster's leader reads both from the feed).

        The hits of one write (several sources' batches, in the order their
        workers finished) are correlated in event-time order, so that order
        does not pick which of them opens an alert and names it."""
        ordered = sorted(hits, key=Hit.order)
        return self.correlator.feed(self.approvals.judge(ordered, pending))

    def finish(self) -> list[Alert]:
        """What a backfill's held hits raise, correlated in event-time order."""
        return self.correlator.feed(self.approvals.judge(self._release()))

    def _release(self) -> list[Hit]:
        held, self._held = self._held, []
        held.sort(key=Hit.order)
        return held

    def rebuild(self, store: Store) -> list[Alert]:
        """Restore correlation state from the timeline after a restart.

        Open alerts come back from the alerts table; windows from the events
        of the last timespan + lateness, matched again.  Alerts this raises
        have the ids they had before, so writing them changes nothing twice.
        """
        recent = store.search(EventQuery(limit=1, order="newest"))
        if not recent:
            return []
        maker = HitMaker(self.loaded)
        end = parse_timestamp(recent[0]["@timestamp"])
        correlator = self.correlator
        reach = max((corr.timespan for corr in self.loaded.correlations), default=0.0)
        since = end - correlator.allowed_lateness - timedelta(seconds=reach)
        correlator.remember(
            store.alerts(since=since - correlator.suppress_for, limit=REBUILD_LIMIT)
        )
        docs = store.search(EventQuery(since=since, order="oldest", limit=REBUILD_LIMIT))
        alerts = correlator.feed(self.approvals.judge(_hits(maker, docs)))
        correlator.forget_source(REBUILD_SOURCE)
        return alerts


def _hits(maker: HitMaker, docs: Iterable[dict[str, object]]) -> list[Hit]:
    return [hit for doc in docs for hit in maker.hits(doc, REBUILD_SOURCE)]
