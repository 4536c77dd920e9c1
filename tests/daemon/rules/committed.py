"""What the correlator stage commits, kept in memory for the correlator's unit tests:
state rows and held hits with the store's semantics (``Round``), so a test restarts a
correlator from them.  The stores' own tests check that the engines keep them so."""

from __future__ import annotations

from collections.abc import Collection

from daemon.rules.correlate import Correlator
from daemon.rules.windows import GroupKey


class Committed:
    def __init__(self) -> None:
        self.state: dict[str, bytes] = {}
        self.held: dict[GroupKey, dict[str, tuple[int, bytes]]] = {}

    def attach(self, correlator: Correlator) -> Correlator:
        """``correlator`` holding its windows here, with the state committed so far."""
        correlator.windows.durable(self.read)
        correlator.restore(dict(self.state))
        return correlator

    def commit(self, correlator: Correlator) -> dict[str, bytes | None]:
        """Take what ``correlator`` changed, as a round's commit; returns its state rows."""
        changes = correlator.changes()
        for name, value in changes.items():
            if value is None:
                self.state.pop(name, None)
            else:
                self.state[name] = value
        rows, expired, correlations = correlator.windows.changes()
        for correlation, group, name, at, raw in rows:
            hits = self.held.setdefault((correlation, group), {})
            if raw is None:
                hits.pop(name, None)
            else:
                hits[name] = (at, raw)
        for (correlation, _), hits in self.held.items():
            before = expired.get(correlation)
            gone = correlations is not None and correlation not in correlations
            for name in [name for name, (at, _) in hits.items() if gone or (before or 0) > at]:
                del hits[name]
        return changes

    def read(self, groups: Collection[GroupKey]) -> dict[GroupKey, list[bytes]]:
        return {
            key: [raw for _, raw in self.held[key].values()] for key in groups if self.held.get(key)
        }

    def hits_of(self, correlation: str) -> int:
        return sum(len(hits) for (name, _), hits in self.held.items() if name == correlation)
