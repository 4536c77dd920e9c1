"""The second half of ``unapproved_change``: change hits judged against the change records.

Detection (in the decoding workers) makes a hit of ``CHANGE_RULE`` for every
change-class event, carrying the event's coverage ``Facts``.  Here, where the
alerts are made, each is looked up in the change records the store holds
around its time: a covered change is dropped, an uncovered one goes on to
the correlator with the nearest records and why each does not cover it, so
its alert is grouped, suppressed and stored like any other.

Without any source of change records nothing can be known approved, so the
rule is off: every change hit is dropped, and the daemon says so once at start
(``auditcorr doctor`` and ``auditcorr rules list --config`` say so too).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final

import structlog

from connectors import registry
from connectors.config import ConnectorConfig
from daemon import logtypes
from daemon.changes.book import ChangeBook
from daemon.changes.coverage import NEAREST_HORIZON, judge
from daemon.identity import IdentityMap
from daemon.rules.change import CHANGE_RULE
from daemon.rules.hits import Hit
from daemon.rules.loader import Loaded

log = structlog.get_logger()

JSON = dict[str, Any]
RecordReader = Callable[[datetime, datetime], list[JSON]]
"""Change records (JSON form) whose window meets [since, until]: ``store.change_records``."""

OFF_REASON: Final = "no source of change records is configured: no change can be known approved"
TURN_ON: Final = (
    "add a source of change records (docs/changes.md#where-records-come-from) and restart"
)


@dataclass(slots=True)
class Approvals:
    """Where change hits learn whether an approved change record covers them."""

    read: RecordReader
    identities: IdentityMap | None = None
    judging: bool = True
    """False without a source of change records: the rule is off and change hits are
    dropped, since an alert for every change would say nothing."""
    covered: int = 0
    """Change-class events an approved record covered."""

    def judge(self, hits: list[Hit]) -> list[Hit]:
        """``hits`` without the covered changes; uncovered ones carry their nearest records.

        The records are those committed when the correlator reads the hits: a
        write commits its change records before (or with) the hits of its events.
        """
        changes = [hit for hit in hits if hit.facts is not None]
        if not changes:
            return hits
        if not self.judging:
            return [hit for hit in hits if hit.facts is None]
        book = self._book(changes)
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

    def _book(self, changes: Sequence[Hit]) -> ChangeBook:
        since = min(hit.timestamp for hit in changes) - NEAREST_HORIZON
        until = max(hit.timestamp for hit in changes) + NEAREST_HORIZON
        return ChangeBook.from_json(self.read(since, until), self.identities)


def approvals_for(
    read: RecordReader,
    identities: IdentityMap | None,
    loaded: Loaded,
    sources: Mapping[str, ConnectorConfig],
) -> Approvals:
    """Where the daemon judges changes; off without a change source, said once in the log."""
    reason = off_reason(sources)
    if reason is not None and any(rule.info.id == CHANGE_RULE for rule in loaded.detections):
        log.warning("rule_disabled", rule=CHANGE_RULE, reason=reason, hint=TURN_ON)
    return Approvals(read, identities, judging=reason is None)


def off_reason(sources: Mapping[str, ConnectorConfig]) -> str | None:
    """Why ``unapproved_change`` cannot run with these sources; None when it can."""
    if any(brings_change_records(section.type) for section in sources.values()):
        return None
    return OFF_REASON


@functools.cache
def brings_change_records(source_type: str) -> bool:
    """Whether a source type's records are change records: its module names the log type
    it emits as ``LOG_TYPE``, and that log type keeps a change book (``book_entry``).
    No connector type is named here, so a new change source counts."""
    module = sys.modules[registry.load(registry.SOURCES, source_type).__module__]
    log_type = getattr(module, "LOG_TYPE", None)
    return isinstance(log_type, str) and logtypes.get(log_type).book_entry is not None
