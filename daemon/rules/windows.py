"""The hits correlation groups hold: in memory only, or in the store with a bounded cache.

A group holds the hits a window of its correlation may still use.  Offline
(``rules test``, a correlator without a store) every group stays in memory.
The correlator stage makes the store their home (``durable``): every change
goes out as a held-hit row committed with the round, and only the groups
recent rounds touched stay in memory, at most ``HELD_IN_MEMORY`` hits and
groups; the others are read again by their key when a hit arrives for them,
and the store sweeps expired hits by event time.  So memory stays flat however
many addresses and users have open windows, and a restart reads nothing until
a hit needs it.
"""

from __future__ import annotations

import bisect
from collections import Counter, OrderedDict
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

import orjson

from daemon.rules.hits import Hit
from daemon.store.units import Held

MAX_GROUP_HITS: Final = 10_000
"""Hits kept per correlation group: a flood is bounded, the oldest go first."""
HELD_IN_MEMORY: Final = 40_000
"""Hits and groups a durable correlator keeps in memory between rounds (a held hit
weighs about a kilobyte): the groups touched longest ago go first."""

GroupKey = tuple[str, str]
"""(correlation id, group values)"""
HeldReader = Callable[[Collection[GroupKey]], Mapping[GroupKey, list[bytes]]]
"""Reads the committed hits of groups; a group holding none is left out."""


@dataclass(slots=True)
class Group:
    """The hits of one correlation group, sorted by ``Hit.order``."""

    times: list[datetime] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)
    rules: Counter[str] = field(default_factory=Counter)
    """Hits per rule: a temporal correlation missing a rule needs no window search."""

    @classmethod
    def of(cls, hits: list[Hit]) -> Group:
        hits.sort(key=Hit.order)
        return cls([hit.timestamp for hit in hits], hits, Counter(hit.rule for hit in hits))

    def add(self, hit: Hit) -> list[Hit]:
        """Hold ``hit``; returns the hit the size cap evicted, if any."""
        at = bisect.bisect_right(self.hits, hit.order(), key=Hit.order)
        self.times.insert(at, hit.timestamp)
        self.hits.insert(at, hit)
        self.rules[hit.rule] += 1
        if len(self.hits) <= MAX_GROUP_HITS:
            return []
        evicted = self.hits[:1]
        self._forget(evicted)
        del self.times[0], self.hits[0]
        return evicted

    def drop_before(self, moment: datetime) -> list[Hit]:
        """Forget the hits before ``moment``; returns them."""
        cut = bisect.bisect_left(self.times, moment)
        dropped = self.hits[:cut]
        if cut:
            self._forget(dropped)
            del self.times[:cut], self.hits[:cut]
        return dropped

    def _forget(self, hits: list[Hit]) -> None:
        rules = self.rules
        for hit in hits:
            rules[hit.rule] -= 1
            if not rules[hit.rule]:
                del rules[hit.rule]


class Windows:
    """The groups of every correlation, by ``GroupKey``; see the module docstring."""

    def __init__(self, spans: Mapping[str, timedelta]) -> None:
        self._spans = spans
        self._groups: OrderedDict[GroupKey, Group] = OrderedDict()
        """Least recently touched first."""
        self._reader: HeldReader | None = None
        self._weight = 0
        """Hits held in ``_groups`` plus the groups themselves."""
        self._rows: dict[tuple[str, str, str], tuple[int, bytes | None]] = {}
        self._expired: dict[str, int] = {}
        self._correlations: Collection[str] | None = None

    def durable(self, reader: HeldReader) -> None:
        """Hold hits in the store ``reader`` reads (empty so far: call before any hit).
        The first ``changes`` also drops what correlations no longer loaded hold."""
        self._reader = reader
        self._correlations = tuple(self._spans)

    def prefetch(self, keys: Iterable[GroupKey]) -> None:
        """Read the groups of ``keys`` not in memory in one call to the store."""
        if self._reader is None:
            return
        wanted = {key for key in keys if key not in self._groups}
        if wanted:
            self._load(wanted)

    def group(self, key: GroupKey) -> Group:
        """The group of ``key``, read from the store when not in memory."""
        group = self._groups.get(key)
        if group is None:
            if self._reader is not None:
                return self._load({key})[key]
            group = self._groups[key] = Group()
            self._weight += 1
        else:
            self._groups.move_to_end(key)
        return group

    def hold(self, key: GroupKey, hit: Hit, raw: bytes) -> Group:
        """Add ``hit`` (``raw``: its JSON) to its group; returns the group."""
        group = self.group(key)
        self._row(key, hit, raw)
        evicted = group.add(hit)
        self._weight += 1 - len(evicted)
        for gone in evicted:
            self._row(key, gone, None)
        return group

    def prune(self, horizon: datetime) -> None:
        """Forget the hits no window ending at or after ``horizon`` can use."""
        for key in list(self._groups):
            group = self._groups[key]
            cut = horizon - self._spans[key[0]]
            for hit in group.drop_before(cut):
                self._row(key, hit, None)
                self._weight -= 1
            if not group.hits:
                del self._groups[key]
                self._weight -= 1
        if self._reader is not None:
            for correlation, span in self._spans.items():
                self._expired[correlation] = _micros(horizon - span)

    def changes(self) -> tuple[list[Held], dict[str, int], Collection[str] | None]:
        """What changed since the last call, to commit: held-hit rows, per correlation
        the event time (µs) before which its held hits go, and — the first time — the
        correlations whose held hits stay (the others' go).  Then, the changes being
        the store's from here, the groups touched longest ago leave memory."""
        rows = [(*name, at, raw) for name, (at, raw) in self._rows.items()]
        expired, correlations = self._expired, self._correlations
        self._rows, self._expired, self._correlations = {}, {}, None
        if self._reader is not None:
            while self._weight > HELD_IN_MEMORY and self._groups:
                _, group = self._groups.popitem(last=False)
                self._weight -= 1 + len(group.hits)
        return rows, expired, correlations

    def __len__(self) -> int:
        return len(self._groups)

    def held(self) -> int:
        """Hits held in memory."""
        return self._weight - len(self._groups)

    def _load(self, keys: set[GroupKey]) -> dict[GroupKey, Group]:
        assert self._reader is not None
        found = self._reader(keys)
        loaded = {}
        for key in keys:
            group = Group.of([Hit.from_json(orjson.loads(raw)) for raw in found.get(key, ())])
            self._groups[key] = loaded[key] = group
            self._weight += 1 + len(group.hits)
        return loaded

    def _row(self, key: GroupKey, hit: Hit, raw: bytes | None) -> None:
        if self._reader is None:
            return  # nothing to commit: memory is the only home
        name = f"{hit.rule}\x1f{hit.evidence.id}"
        self._rows[key[0], key[1], name] = (_micros(hit.timestamp), raw)


def _micros(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
