"""Turning hits into alerts: suppression, and Sigma correlations in event time.

Windows slide: when a hit arrives (in any order) every window of the rule's
timespan that contains it is considered, so related events that straddle
any boundary still correlate, and a late event that completes a window
raises the alert then.  Time is event time.  Each source has a watermark (the
newest event time it delivered); the correlator's watermark is the lowest of
them, and hits older than it by more than ``allowed_lateness`` are too late
to correlate (they still raise their own detection alerts).  State older
than watermark - lateness - timespan is dropped, so memory stays bounded;
after a restart it is rebuilt by feeding the hits of that stretch of the
timeline again, which yields the same alert ids (see ``alert_id``), and
reports only the alerts those hits change.  Hits are kept in one order (event
time, then evidence id), so hits fed in event-time order make the same windows,
alerts and ids however they were batched and whatever order equal times came in.  A hit
fed twice (same rule, same evidence id: a cluster's new leader replays feed
rows its rebuild already read) is held once, so no window counts it twice.

Repeats of an alert (same rule and group) within ``suppress_for`` of its
last event update that alert — count, last seen, evidence — instead of
raising a new one.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from daemon.alert import Alert, Environment, Evidence, alert_id
from daemon.rules.hits import Hit
from daemon.rules.loader import CorrelationRule, DetectionRule, Loaded, RuleInfo

MAX_EVIDENCE: Final = 50
"""Events listed in one alert; ``count`` keeps counting past it."""
MAX_ACTORS: Final = 20
"""Actors listed in one alert: a brute force tries thousands of user names."""
MAX_GROUP_HITS: Final = 10_000
"""Hits kept per correlation group: a flood is bounded, the oldest go first."""
PRUNE_EVERY: Final = 1024
"""Hits between two sweeps of expired state."""


@dataclass(slots=True)
class _Group:
    """The hits of one correlation group, sorted by ``Hit.order``."""

    times: list[datetime] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)
    rules: Counter[str] = field(default_factory=Counter)
    """Hits per rule: a temporal correlation missing a rule needs no window search."""
    held: set[tuple[str, str]] = field(default_factory=set)
    """(rule, evidence id) of every hit held: a replayed event is held once."""

    def add(self, hit: Hit) -> None:
        """Hold ``hit``, unless the group holds it already (a replay, e.g. after a failover)."""
        key = (hit.rule, hit.evidence.id)
        if key in self.held:
            return
        self.held.add(key)
        at = bisect.bisect_right(self.hits, hit.order(), key=Hit.order)
        self.times.insert(at, hit.timestamp)
        self.hits.insert(at, hit)
        self.rules[hit.rule] += 1
        if len(self.hits) > MAX_GROUP_HITS:
            self._forget(self.hits[:1])
            del self.times[0], self.hits[0]

    def drop_before(self, moment: datetime) -> None:
        cut = bisect.bisect_left(self.times, moment)
        if cut:
            self._forget(self.hits[:cut])
            del self.times[:cut], self.hits[:cut]

    def _forget(self, hits: list[Hit]) -> None:
        self.rules.subtract(hit.rule for hit in hits)
        self.held.difference_update((hit.rule, hit.evidence.id) for hit in hits)
        self.rules += Counter()  # drops rules whose count reached zero


@dataclass(slots=True)
class _Open:
    """An alert that repeats may still update, with the events it already counts."""

    alert: Alert
    seen: set[str]


@dataclass(slots=True)
class Correlator:
    rules: Loaded
    allowed_lateness: timedelta = timedelta(minutes=20)
    suppress_for: timedelta = timedelta(hours=1)
    late: int = 0
    """Hits that arrived too late to correlate."""
    _detections: dict[str, DetectionRule] = field(default_factory=dict)
    _uses: dict[str, list[CorrelationRule]] = field(default_factory=dict)
    _groups: dict[tuple[str, str], _Group] = field(default_factory=dict)
    _open: dict[tuple[str, str], _Open] = field(default_factory=dict)
    _newest: dict[str, datetime] = field(default_factory=dict)
    _since_prune: int = 0

    def __post_init__(self) -> None:
        self._detections = {rule.info.id: rule for rule in self.rules.detections}
        for corr in self.rules.correlations:
            for rule_id in set(corr.rules):
                self._uses.setdefault(rule_id, []).append(corr)

    @property
    def watermark(self) -> datetime | None:
        return min(self._newest.values()) if self._newest else None

    def remember(self, alerts: Iterable[Alert]) -> None:
        """Stored alerts repeats may still update (after a restart)."""
        for alert in alerts:
            key = (alert.rule_id, _key(alert.group))
            self._open[key] = _Open(alert, {item.id for item in alert.evidence})

    def feed(self, hits: Iterable[Hit]) -> list[Alert]:
        """Alerts raised or updated by these hits, each once, in the order first touched.

        An alert these hits do not change (events it already counts, fed again
        after a restart) is not among them.
        """
        touched: dict[str, Alert] = {}
        for hit in hits:
            newest = self._newest.get(hit.source)
            if newest is None or hit.timestamp > newest:
                self._newest[hit.source] = hit.timestamp
            detection = self._detections.get(hit.rule)
            if detection is not None and detection.alerts:
                group = {name: hit.values.get(name, "") for name in detection.group_by}
                alert = self._raise(detection.info, group, [hit])
                if alert is not None:
                    touched[alert.id] = alert
            watermark = self.watermark
            if watermark is not None and hit.timestamp < watermark - self.allowed_lateness:
                self.late += 1
            else:
                self._route(hit, touched)
            self._since_prune += 1
            if self._since_prune >= PRUNE_EVERY:
                self.prune()
        return list(touched.values())

    def _route(self, hit: Hit, touched: dict[str, Alert]) -> None:
        """Correlate a hit; a correlation that fires passes a hit of its own on."""
        for corr in self._uses.get(hit.rule, ()):
            correlated = self._correlate(corr, hit)
            if correlated is None:
                continue
            if corr.alerts:
                touched[correlated.id] = correlated
            if corr.info.id in self._uses:
                chained = Hit(corr.info.id, hit.evidence, hit.source, correlated.group, hit.actors)
                self._route(chained, touched)

    def forget_source(self, source: str) -> None:
        """Stop holding the watermark back for a source that delivers no more."""
        self._newest.pop(source, None)

    def prune(self) -> None:
        """Forget windows and open alerts that no event on time can reach any more."""
        self._since_prune = 0
        watermark = self.watermark
        if watermark is None:
            return
        horizon = watermark - self.allowed_lateness
        spans = {corr.info.id: corr.timespan for corr in self.rules.correlations}
        for key in list(self._groups):
            group = self._groups[key]
            group.drop_before(horizon - timedelta(seconds=spans[key[0]]))
            if not group.hits:
                del self._groups[key]
        for key in list(self._open):
            if self._open[key].alert.last_seen < horizon - self.suppress_for:
                del self._open[key]

    def _correlate(self, corr: CorrelationRule, hit: Hit) -> Alert | None:
        group: dict[str, str] = {}
        for name in corr.group_by:
            value = hit.values.get(corr.field_of(name, hit.rule))
            if value is None:
                return None  # Sigma: events without a group-by value do not correlate
            group[name] = value
        key = (corr.info.id, _key(group))
        bucket = self._groups.setdefault(key, _Group())
        bucket.add(hit)  # a replayed event is counted once per window
        known = self._open.get(key)
        if known is not None and self._within_suppression(known.alert, hit.timestamp):
            return self._update(known, [hit])
        window = _satisfied(corr, bucket, hit.timestamp)
        if window is None:
            return None
        return self._raise(corr.info, group, window)

    def _within_suppression(self, alert: Alert, moment: datetime) -> bool:
        return alert.first_seen - self.suppress_for <= moment <= alert.last_seen + self.suppress_for

    def _raise(self, info: RuleInfo, group: dict[str, str], hits: list[Hit]) -> Alert | None:
        """The alert ``hits`` raise or update; None when it counts them all already."""
        key = (info.id, _key(group))
        known = self._open.get(key)
        first = min(hits, key=Hit.order).evidence
        if known is not None and self._within_suppression(known.alert, first.timestamp):
            return self._update(known, hits)
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
        opened = self._open[key] = _Open(alert, set())
        return self._update(opened, hits)

    def _update(self, opened: _Open, hits: list[Hit]) -> Alert | None:
        """The alert with the hits it does not count yet; None when there are none."""
        alert = opened.alert
        changed = False
        for hit in hits:
            evidence = hit.evidence
            if evidence.id in opened.seen:
                continue  # the same event again (a re-read): counted once
            changed = True
            opened.seen.add(evidence.id)
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
        return alert if changed else None


def _evidence_order(item: Evidence) -> tuple[datetime, str]:
    return (item.timestamp, item.id)


def _key(group: dict[str, str]) -> str:
    return "\x1e".join(f"{name}={value}" for name, value in sorted(group.items()))


def _environment(evidence: Iterable[Evidence]) -> Environment:
    kinds = {"cloud" if item.dataset.startswith("aws.") else "on-prem" for item in evidence}
    if len(kinds) > 1:
        return "hybrid"
    return "cloud" if kinds == {"cloud"} else "on-prem"


def _satisfied(corr: CorrelationRule, group: _Group, moment: datetime) -> list[Hit] | None:
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
