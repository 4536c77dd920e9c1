"""The change records a coverage query looks at."""

from __future__ import annotations

import heapq
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

from connectors.contracts.change_record import ChangeRecord, parse_record
from daemon.identity import IdentityMap


class ChangeBook:
    """Current versions of change records, with the identity map that says
    which person an implementer's name means.

    Build it from the store: ``ChangeBook.from_json(store.change_records(since=..., until=...),
    config.identity.identity_map())``.
    """

    def __init__(
        self, records: Iterable[ChangeRecord], identities: IdentityMap | None = None
    ) -> None:
        self.records = sorted(records, key=lambda r: (r.start, r.id))
        self.identities = identities or IdentityMap()
        self._starts = [r.start for r in self.records]
        self._longest = max((r.end - r.start for r in self.records), default=timedelta(0))

    @classmethod
    def from_json(
        cls, records: Iterable[dict[str, Any]], identities: IdentityMap | None = None
    ) -> ChangeBook:
        """From records in their JSON form (as the store returns them)."""
        return cls((parse_record(r) for r in records), identities)

    def __iter__(self) -> Iterator[ChangeRecord]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)

    def near(self, moment: datetime, horizon: timedelta, count: int) -> list[ChangeRecord]:
        """Every record whose window holds ``moment``, and the ``count`` others
        whose windows come closest to it within ``horizon``, closest first.

        Walks outwards from ``moment`` in start order and stops once no further
        record can be closer (no window is longer than the longest one), so a
        query costs what is near it, not the size of the book.
        """
        records, starts = self.records, self._starts
        holding: list[ChangeRecord] = []
        closest: list[tuple[timedelta, int]] = []  # max-heap by distance (negated)

        def worst() -> timedelta:
            return -closest[0][0] if len(closest) >= count else horizon

        def offer(distance: timedelta, index: int) -> None:
            if distance > worst():
                return
            heapq.heappush(closest, (-distance, index))
            if len(closest) > count:
                heapq.heappop(closest)

        split = bisect_right(starts, moment)
        for index in range(split, len(records)):  # opening after: distance grows
            distance = starts[index] - moment
            if distance > worst():
                break
            offer(distance, index)
        for index in range(split - 1, -1, -1):  # opened before: held, or ended before
            if moment - starts[index] - self._longest > max(worst(), timedelta(0)):
                break
            record = records[index]
            if record.end >= moment:
                holding.append(record)
            else:
                offer(moment - record.end, index)
        ranked = sorted((-negated, index) for negated, index in closest)
        return holding + [records[index] for _, index in ranked]
