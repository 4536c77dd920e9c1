"""Turning hits into alerts: suppression, and Sigma correlations in event time.

Windows slide: when a hit arrives (in any order) every window of the rule's
timespan that contains it is considered, so related events that straddle
any boundary still correlate, and a late event that completes a window
raises the alert then.  Time is event time.  Each source has a watermark (the
newest event time it delivered); the correlator's watermark is the lowest of
them, and hits older than it by more than ``allowed_lateness`` are too late
to correlate (they still raise their own detection alerts).  State older
than watermark - lateness - timespan is dropped, so memory stays bounded.
Hits are kept in one order (event time, then evidence id), so hits fed in
event-time order make the same windows, alerts and ids however they were
batched and whatever order equal times came in.

The state is durable: ``changes`` gives the state rows changed since it was
last asked (open alerts, watermarks, what the learning rules learned) and
``windows.changes`` the hits the groups hold or let go (as the feed carried
them), which the correlator stage commits with the alerts and its feed
position; ``restore`` loads the rows after a restart and the held hits are
read back group by group when a hit needs them, so windows continue exactly
where they stopped.  Each event reaches the correlator once (the store feeds
only events it stored for the first time), so nothing here deduplicates events.

Repeats of an alert (same rule and group) within ``suppress_for`` of its
last event update that alert — count, last seen, evidence — instead of
raising a new one.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Final

import orjson

from daemon.alert import Alert, Environment, Evidence, alert_id
from daemon.rules.hits import Hit
from daemon.rules.learned import Learner, Verdict
from daemon.rules.loader import CorrelationRule, DetectionRule, Loaded, RuleInfo
from daemon.rules.windows import Group, Windows

MAX_EVIDENCE: Final = 50
"""Events listed in one alert; ``count`` keeps counting past it."""
MAX_ACTORS: Final = 20
"""Actors listed in one alert: a brute force tries thousands of user names."""
HOT_ALERTS: Final = 4_096
"""Open alerts kept decoded between rounds: a flood updates the same few thousand
alerts round after round, and decoding one with its evidence costs about 100 µs.
One stays decoded while some round of every ``HOT_ROUNDS`` updates it, and a newly
updated one joins while there is room, so a flood of more alerts than this still
finds most of its work decoded; the rest wait as their JSON.  A brute force's alert
with 50 pieces of evidence takes about 10 KB as JSON and 46 KB decoded with its
encodings kept, so this holds at most about 190 MB, for a flood that keeps 4,096
such alerts updated."""
HOT_ROUNDS: Final = 16
PRUNE_STEP: Final = timedelta(minutes=1)
"""How far the watermark moves between two sweeps of expired state: a sweep visits
every group, so it runs per minute of event time, not per so many hits."""


@dataclass(slots=True)
class _Held:
    """An alert repeats may update: its JSON (what the state row holds) and, while it is
    hot, its decoded object as well."""

    first_seen: datetime
    last_seen: datetime
    doc: bytes = b""
    alert: Alert | None = None

    def open(self) -> Alert:
        if self.alert is None:
            self.alert = Alert.from_json(orjson.loads(self.doc))
        return self.alert

    def settle(self) -> None:
        """Encode the alert as it stands, keeping it decoded."""
        if self.alert is not None:
            self.first_seen, self.last_seen = self.alert.first_seen, self.alert.last_seen
            self.doc = self.alert.document()

    def cool(self) -> None:
        """Keep only the JSON (settled before)."""
        self.alert = None

    def bounds(self) -> tuple[datetime, datetime]:
        alert = self.alert
        return (
            (self.first_seen, self.last_seen)
            if alert is None
            else (alert.first_seen, alert.last_seen)
        )


@dataclass(slots=True)
class Correlator:
    rules: Loaded
    allowed_lateness: timedelta = timedelta(minutes=20)
    suppress_for: timedelta = timedelta(hours=1)
    late: int = 0
    """Hits that arrived too late to correlate."""
    _detections: dict[str, DetectionRule] = field(default_factory=dict)
    _uses: dict[str, list[CorrelationRule]] = field(default_factory=dict)
    _open: dict[tuple[str, str], _Held] = field(default_factory=dict)
    """Alerts repeats may still update, by (rule, group)."""
    _newest: dict[str, datetime] = field(default_factory=dict)
    _pruned_at: datetime | None = None
    """The watermark of the last sweep."""
    _changed: set[tuple[str, ...]] = field(default_factory=set)
    """Open alerts and watermarks changed since ``changes`` was last called."""
    _spans: dict[str, timedelta] = field(default_factory=dict)
    _decoded: set[tuple[str, str]] = field(default_factory=set)
    """Open alerts updated by the hits being fed, encoded again when they are done."""
    _hot: dict[tuple[str, str], int] = field(default_factory=dict)
    """Open alerts kept decoded, and the round that last updated each."""
    _rounds: int = 0
    learner: Learner = field(init=False)
    """The history of the new_terms and baseline rules (``learned.py``)."""
    windows: Windows = field(init=False)
    """The hits correlation groups hold (``windows.py``): committed apart from the
    state rows, as held-hit rows."""

    def __post_init__(self) -> None:
        self.learner = Learner(self.rules.behaviours)
        self._detections = {rule.info.id: rule for rule in self.rules.detections}
        self._spans = {
            corr.info.id: timedelta(seconds=corr.timespan) for corr in self.rules.correlations
        }
        self.windows = Windows(self._spans)
        for corr in self.rules.correlations:
            for rule_id in set(corr.rules):
                self._uses.setdefault(rule_id, []).append(corr)

    @property
    def watermark(self) -> datetime | None:
        return min(self._newest.values()) if self._newest else None

    def changes(self) -> dict[str, bytes | None]:
        """The state rows changed since the last call (None: deleted), to commit: an
        open alert and a watermark are one row each (held hits: ``windows.changes``)."""
        self._settle()
        out: dict[str, bytes | None] = {}
        for name in self._changed:
            if name[0] == _WATERMARK:
                newest = self._newest.get(name[1])
                out[_row(name)] = None if newest is None else newest.isoformat().encode()
            else:
                held = self._open.get((name[1], name[2]))
                out[_row(name)] = None if held is None else held.doc
        self._changed.clear()
        out.update(self.learner.changes())
        return out

    def restore(self, state: Mapping[str, bytes]) -> None:
        """Load the state rows ``changes`` gave, as committed (after a restart); the
        held hits are read from the store when a hit needs them (``windows.durable``)."""
        self.learner.restore(state)
        for row, value in state.items():
            name = _name_of(row)
            if name is None:
                continue  # another part of the correlator's state
            if name[0] == _WATERMARK:
                self._newest[name[1]] = datetime.fromisoformat(value.decode())
            elif name[0] == _OPEN:
                alert = Alert.from_json(orjson.loads(value))
                self._open[name[1], name[2]] = _Held(alert.first_seen, alert.last_seen, value)

    def feed(self, hits: Iterable[Hit]) -> list[Alert]:
        """Alerts raised or updated by these hits, each once, in the order first touched."""
        touched: dict[str, Alert] = {}
        hits = list(hits)
        self.windows.prefetch(self._groups_of(hits))
        for hit in hits:
            newest = self._newest.get(hit.source)
            if newest is None or hit.timestamp > newest:
                self._newest[hit.source] = hit.timestamp
                self._changed.add((_WATERMARK, hit.source))
            detection = self._detections.get(hit.rule)
            if detection is not None and detection.alerts:
                group = {name: hit.values.get(name, "") for name in detection.group_by}
                alert = self._raise(detection.info, group, [hit])
                touched[alert.id] = alert
            if self.learner.uses(hit.rule):
                for verdict in self.learner.feed(hit):
                    alert = self._judged(verdict, hit)
                    touched[alert.id] = alert
            else:
                self.learner.saw(hit.timestamp)
            watermark = self.watermark
            if watermark is not None and hit.timestamp < watermark - self.allowed_lateness:
                self.late += 1
            else:
                self._route(hit, touched)
            if watermark is not None and (
                self._pruned_at is None or watermark - self._pruned_at >= PRUNE_STEP
            ):
                self.prune()
        self._settle()
        return list(touched.values())

    def _groups_of(self, hits: list[Hit]) -> Iterator[tuple[str, str]]:
        """The groups ``hits`` will be held in (not those whose open alert absorbs them);
        hits of a correlation that fires (chained) read theirs when they come."""
        for hit in hits:
            for corr in self._uses.get(hit.rule, ()):
                group = _group_of(corr, hit)
                if group is None:
                    continue
                key = (corr.info.id, _key(group))
                if not self._absorbed(corr, key, hit):
                    yield key

    def _absorbed(self, corr: CorrelationRule, key: tuple[str, str], hit: Hit) -> bool:
        """Whether the open alert of ``key`` takes ``hit`` without its group.

        A hit an open alert absorbs can be in no later window: a new alert needs a hit
        past the suppression, over a timespan that ends after this alert's last event.
        Not holding it keeps a flood into an open alert O(1) per hit."""
        known = self._open.get(key)
        return (
            known is not None
            and self._within_suppression(known, hit.timestamp)
            and self.suppress_for >= self._spans[corr.info.id]
        )

    def _route(self, hit: Hit, touched: dict[str, Alert]) -> None:
        """Correlate a hit; a correlation that fires passes a hit of its own on."""
        uses = self._uses.get(hit.rule, ())
        raw = orjson.dumps(hit.to_json()) if uses else b""
        for corr in uses:
            correlated = self._correlate(corr, hit, raw)
            if correlated is None:
                continue
            if corr.alerts:
                touched[correlated.id] = correlated
            if corr.info.id in self._uses:
                chained = Hit(corr.info.id, hit.evidence, hit.source, correlated.group, hit.actors)
                self._route(chained, touched)

    def _judged(self, verdict: Verdict, hit: Hit) -> Alert:
        """The alert of a new_terms or baseline verdict: a repeat within the suppression
        counts the hit that repeats it, not its window again."""
        key = (verdict.info.id, _key(verdict.group))
        known = self._open.get(key)
        if known is not None and self._within_suppression(known, hit.timestamp):
            # The context said why when the alert was raised; a repeat only counts.
            return self._update(key, known, [replace(verdict.hits[-1], context=None)])
        return self._raise(verdict.info, verdict.group, verdict.hits)

    def prune(self) -> None:
        """Forget windows and open alerts that no event on time can reach any more."""
        self._settle()
        watermark = self._pruned_at = self.watermark
        if watermark is None:
            return
        horizon = watermark - self.allowed_lateness
        self.learner.prune(horizon)
        self.windows.prune(horizon)
        for key in list(self._open):
            if self._open[key].bounds()[1] < horizon - self.suppress_for:
                del self._open[key]
                self._hot.pop(key, None)
                self._changed.add((_OPEN, *key))

    def _correlate(self, corr: CorrelationRule, hit: Hit, raw: bytes) -> Alert | None:
        group = _group_of(corr, hit)
        if group is None:
            return None
        key = (corr.info.id, _key(group))
        known = self._open.get(key)
        if known is not None and self._absorbed(corr, key, hit):
            return self._update(key, known, [hit])
        bucket = self.windows.hold(key, hit, raw)
        if known is not None and self._within_suppression(known, hit.timestamp):
            return self._update(key, known, [hit])
        window = _satisfied(corr, bucket, hit.timestamp)
        if window is None:
            return None
        return self._raise(corr.info, group, window)

    def _within_suppression(self, held: _Held, moment: datetime) -> bool:
        first, last = held.bounds()
        return first - self.suppress_for <= moment <= last + self.suppress_for

    def _settle(self) -> None:
        """Encode the open alerts the hits fed so far updated; see ``HOT_ALERTS`` for
        which stay decoded."""
        if not self._decoded:
            return
        self._rounds += 1
        hot, now = self._hot, self._rounds
        for key in self._decoded:
            held = self._open.get(key)
            if held is None:
                continue
            held.settle()
            if key in hot or len(hot) < HOT_ALERTS:
                hot[key] = now
            else:
                held.cool()
        self._decoded.clear()
        for key in [key for key, last in hot.items() if now - last >= HOT_ROUNDS]:
            del hot[key]
            held = self._open.get(key)
            if held is not None:
                held.cool()

    def _raise(self, info: RuleInfo, group: dict[str, str], hits: list[Hit]) -> Alert:
        """The alert ``hits`` raise or update."""
        key = (info.id, _key(group))
        known = self._open.get(key)
        first = min(hits, key=Hit.order).evidence
        if known is not None and self._within_suppression(known, first.timestamp):
            return self._update(key, known, hits)
        alert = Alert(
            id=alert_id(info.id, group, first.timestamp, first.id),
            rule_id=info.id,
            title=info.title,
            severity=info.level,
            environment="cloud",  # set from the evidence below
            first_seen=first.timestamp,
            last_seen=first.timestamp,
            count=0,
            tags=[tag for tag in info.tags if tag.startswith("attack.")],
            description=info.description,
            group=group,
        )
        self._open[key] = _Held(alert.first_seen, alert.last_seen, alert=alert)
        return self._update(key, self._open[key], hits)

    def _update(self, key: tuple[str, str], held: _Held, hits: list[Hit]) -> Alert:
        """The alert counting ``hits`` too."""
        alert = held.open()
        self._decoded.add(key)
        self._changed.add((_OPEN, *key))
        for hit in hits:
            evidence = hit.evidence
            alert.count += 1
            alert.first_seen = min(alert.first_seen, evidence.timestamp)
            alert.last_seen = max(alert.last_seen, evidence.timestamp)
            for actor in hit.actors:
                if actor not in alert.actors:
                    bisect.insort(alert.actors, actor)
                    del alert.actors[MAX_ACTORS:]
            if len(alert.evidence) < MAX_EVIDENCE:
                bisect.insort(alert.evidence, evidence, key=_evidence_order)
                for name, items in (hit.context or {}).items():
                    alert.context.setdefault(name, []).extend(items)
            if alert.count == 1:
                alert.environment = _environment([evidence])
            elif alert.environment != _environment([evidence]):
                alert.environment = "hybrid"
        return alert


def _evidence_order(item: Evidence) -> tuple[datetime, str]:
    return (item.timestamp, item.id)


def _group_of(corr: CorrelationRule, hit: Hit) -> dict[str, str] | None:
    group: dict[str, str] = {}
    for name in corr.group_by:
        value = hit.values.get(corr.field_of(name, hit.rule))
        if value is None:
            return None  # Sigma: events without a group-by value do not correlate
        group[name] = value
    return group


def _key(group: dict[str, str]) -> str:
    return "\x1e".join(f"{name}={value}" for name, value in sorted(group.items()))


_OPEN: Final = "open"
_WATERMARK: Final = "watermark"
"""Kinds of state row, named by a JSON array: an alert repeats may update
``["open", rule, group]``, a source's watermark ``["watermark", source]``."""


def _row(name: tuple[str, ...]) -> str:
    return orjson.dumps(name).decode()


def _name_of(row: str) -> tuple[str, ...] | None:
    """The name of a state row of this correlator; None for another part's row."""
    if not row.startswith('["'):
        return None
    name = orjson.loads(row)
    return tuple(name) if name and name[0] in (_OPEN, _WATERMARK) else None


def _environment(evidence: Iterable[Evidence]) -> Environment:
    kinds = {"cloud" if item.dataset.startswith("aws.") else "on-prem" for item in evidence}
    if len(kinds) > 1:
        return "hybrid"
    return "cloud" if kinds == {"cloud"} else "on-prem"


def _satisfied(corr: CorrelationRule, group: Group, moment: datetime) -> list[Hit] | None:
    """The earliest window of ``corr.timespan`` holding ``moment`` that meets the condition.

    One sweep over the window starts, with the window's tally kept as it
    slides, so a group of n hits costs O(n) per hit, not O(n²).
    """
    if corr.type == "temporal_ordered" and len(group.rules) < len(set(corr.rules)):
        return None
    if corr.type == "temporal" and not corr.condition.holds(len(group.rules)):
        return None  # conditions are gt/gte: a window never holds more rules than its group
    span = timedelta(seconds=corr.timespan)
    times, hits = group.times, group.hits
    first = bisect.bisect_left(times, moment - span)
    last = bisect.bisect_right(times, moment)
    tally = _Tally(corr)
    end = first
    for start in range(first, last):
        limit = times[start] + span
        while end < len(times) and times[end] <= limit:
            tally.add(hits[end])
            end += 1
        if tally.holds():
            window = hits[start:end]
            if corr.type != "temporal_ordered" or _in_order(corr.rules, window):
                return window
        tally.remove(hits[start])
    return None


class _Tally:
    """What a correlation's condition reads of a window, updated hit by hit."""

    def __init__(self, corr: CorrelationRule) -> None:
        self.corr = corr
        self.count = 0
        self.seen: Counter[str | None] = Counter()

    def _item(self, hit: Hit) -> str | None:
        corr = self.corr
        if corr.type == "value_count":
            assert corr.condition.field is not None
            return hit.values.get(corr.field_of(corr.condition.field, hit.rule))
        return hit.rule

    def add(self, hit: Hit) -> None:
        self.count += 1
        if self.corr.type != "event_count":
            self.seen[self._item(hit)] += 1

    def remove(self, hit: Hit) -> None:
        self.count -= 1
        if self.corr.type != "event_count":
            item = self._item(hit)
            self.seen[item] -= 1
            if not self.seen[item]:
                del self.seen[item]

    def holds(self) -> bool:
        corr = self.corr
        if corr.type == "event_count":
            return corr.condition.holds(self.count)
        if corr.type == "value_count":
            return corr.condition.holds(len(self.seen) - (None in self.seen))
        if corr.type == "temporal":
            return corr.condition.holds(len(self.seen))
        return len(self.seen) >= len(set(corr.rules))


def _in_order(rules: tuple[str, ...], window: list[Hit]) -> bool:
    """temporal_ordered: the rules' events occur in the listed order."""
    wanted = 0
    for hit in window:
        if hit.rule == rules[wanted]:
            wanted += 1
            if wanted == len(rules):
                return True
    return False
