"""Reviews made when change records close, delivered as alerts by the correlator stage.

The feed carries each change record version the writer kept.  A version that
moves its record into a closed state (``daemon/changes/closing.py``) asks for
the record's post-implementation review, made once the record's window is over
and late events have had ``SETTLE`` to arrive: until then it waits as a state
row of the correlator, committed like its windows, so a restart neither loses
nor repeats it.  The review goes out as an alert (rule ``change_review``, routed
by its verdict tag) in the round that makes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

import orjson
import structlog

from connectors.contracts.change_record import ChangeRecord, parse_record
from daemon.alert import Alert
from daemon.changes.closing import just_closed, review_alert
from daemon.changes.review import SETTLE, book_for, review
from daemon.identity import IdentityMap
from daemon.store.base import CorrelationLog

log = structlog.get_logger()

JSON = dict[str, Any]
_KIND: Final = "review"
"""State rows of reviews waiting: ``["review", change id]`` -> when the review is due."""


class ClosingReviews:
    """The records that closed and wait for their review, and the reviews due."""

    def __init__(self, identities: IdentityMap | None) -> None:
        self._identities = identities
        self._waiting: dict[str, datetime] = {}
        self._changed: set[str] = set()

    def restore(self, state: Mapping[str, bytes]) -> None:
        for row, value in state.items():
            name = orjson.loads(row) if row.startswith('["') else None
            if name and name[0] == _KIND:
                self._waiting[name[1]] = datetime.fromisoformat(value.decode())

    def note(self, reader: CorrelationLog, records: list[JSON]) -> None:
        """Look at the versions a round's writes kept: a record that closed waits for
        its review until its window is over and settled."""
        for data in records:
            after = parse_record(data)
            before = _before(reader.change_history(after.id), after)
            if just_closed(before, after):
                self._waiting[after.id] = after.end + SETTLE
                self._changed.add(after.id)

    def due(self, reader: CorrelationLog, now: datetime) -> list[Alert]:
        """The reviews of the records whose wait is over, as alerts."""
        alerts = []
        for change_id, at in sorted(self._waiting.items(), key=lambda item: item[1]):
            if at > now:
                continue
            del self._waiting[change_id]
            self._changed.add(change_id)
            data = reader.change_record(change_id)
            if data is None:
                continue
            record = parse_record(data)
            book = book_for(reader, record.start, record.end, self._identities)
            done = review(reader, record, book, now=now)
            log.info("change_reviewed", change=change_id, verdict=done.verdict)
            alerts.append(review_alert(done))
        return alerts

    def changes(self) -> dict[str, bytes | None]:
        out: dict[str, bytes | None] = {}
        for change_id in self._changed:
            at = self._waiting.get(change_id)
            row = orjson.dumps([_KIND, change_id]).decode()
            out[row] = None if at is None else at.isoformat().encode()
        self._changed.clear()
        return out


def _before(history: list[JSON], after: ChangeRecord) -> ChangeRecord | None:
    """The version received just before ``after``; None when it is the first."""
    versions = [parse_record(item) for item in history]
    revisions = [version.revision for version in versions]
    if after.revision not in revisions:
        return None
    at = revisions.index(after.revision)
    return versions[at - 1] if at else None
