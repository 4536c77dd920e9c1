"""The second half of ``unapproved_change``: change hits judged against the change records.

Detection (in the decoding workers) makes a hit of ``CHANGE_RULE`` for every
change-class event, carrying the event's coverage ``Facts``.  Here, where the
alerts are made, each is looked up in the change records the store holds
around its time: a covered change is dropped, an uncovered one goes on to
the correlator with the nearest records and why each does not cover it, so
its alert is grouped, suppressed and stored like any other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from daemon.changes.book import ChangeBook
from daemon.changes.coverage import NEAREST_HORIZON, judge
from daemon.identity import IdentityMap
from daemon.rules.hits import Hit

JSON = dict[str, Any]
RecordReader = Callable[[datetime, datetime], list[JSON]]
"""Change records (JSON form) whose window meets [since, until]: ``store.change_records``."""


@dataclass(slots=True)
class Approvals:
    """Where change hits learn whether an approved change record covers them."""

    read: RecordReader
    identities: IdentityMap | None = None
    covered: int = 0
    """Change-class events an approved record covered."""

    def judge(self, hits: list[Hit], pending: Iterable[JSON] = ()) -> list[Hit]:
        """``hits`` without the covered changes; uncovered ones carry their nearest records.

        ``pending`` are records not yet in the store (those of the batch being
        written); they replace stored versions of the same id.
        """
        changes = [hit for hit in hits if hit.facts is not None]
        if not changes:
            return hits
        book = self._book(changes, pending)
        kept = []
        for hit in hits:
            if hit.facts is None:
                kept.append(hit)
                continue
            verdict = judge(hit.facts, book)
            if verdict.covered:
                self.covered += 1
                continue
            nearest = [{"event": hit.evidence.id, **miss} for miss in verdict.to_json()["nearest"]]
            kept.append(replace(hit, facts=None, context={"nearest": nearest}))
        return kept

    def _book(self, changes: Sequence[Hit], pending: Iterable[JSON]) -> ChangeBook:
        since = min(hit.timestamp for hit in changes) - NEAREST_HORIZON
        until = max(hit.timestamp for hit in changes) + NEAREST_HORIZON
        records = {str(record["id"]): record for record in self.read(since, until)}
        records.update((str(record["id"]), record) for record in pending)
        return ChangeBook.from_json(records.values(), self.identities)
