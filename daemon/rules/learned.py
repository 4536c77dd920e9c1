"""What ``new_terms`` and ``baseline`` rules learned from the timeline, and their verdicts.

The correlator feeds every hit of these rules' detections here, in event-time
order, live and in a backfill alike, so a backfill of last month is history
for today.  A rule learns from the first event the correlator saw while the
rule was loaded (``since``); until its ``history`` has passed in event time it
raises nothing and says so once (``rule_learning``).

State is durable and bounded like the correlator's windows: ``changes`` gives
the rows changed since it was last asked, committed with the alerts, and
``restore`` loads them after a restart.  Rows:

* ``["learning", rule]`` -> ``{"since": time, "forgotten": n}``;
* ``["terms", rule, hash]`` -> the UTC day (days since 1970) the tuple was last
  seen: a 64-bit hash of the tuple, kept to the day, so a tuple seen all day
  changes its row once a day; at most ``max_terms`` per rule, the least
  recently seen forgotten first (counted in ``forgotten``);
* ``["baseline", rule, group hash]`` -> the group and its peak per day over
  ``history``; at most ``max_groups`` per rule, the least recently active go;
* ``["bwindow", rule, group hash, event id]`` -> a hit in the group's current
  window (``timespan``), as the feed carried it.

Expired state is swept as event time passes: windows each minute, terms and
days each day.  A late event (older than what is stored for its tuple) never
makes a tuple look new: only a tuple not seen at all within the history is.
"""

from __future__ import annotations

import bisect
import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Final

import orjson
import structlog

from daemon.rules.behaviour import BaselineRule, BehaviourRule, Field, NewTermsRule
from daemon.rules.hits import Hit
from daemon.rules.loader import RuleInfo

log = structlog.get_logger()

LEARNING: Final = "learning"
TERMS: Final = "terms"
BASELINE: Final = "baseline"
WINDOW: Final = "bwindow"
_KINDS: Final = (LEARNING, TERMS, BASELINE, WINDOW)
MAX_WINDOW_HITS: Final = 10_000
"""Hits held in one group's window: a flood is bounded, the oldest go first."""
EVICT_SHARE: Final = 0.1
"""Share of a full rule's terms or groups forgotten at once, so eviction is rare."""
_SECONDS_PER_DAY: Final = 86_400


def day_of(moment: datetime) -> int:
    """The UTC day of ``moment``, as days since 1970-01-01."""
    return math.floor(moment.timestamp()) // _SECONDS_PER_DAY


def _hash(values: Iterable[str]) -> str:
    return hashlib.blake2b("\x1f".join(values).encode(), digest_size=8).hexdigest()


def _row(*name: str) -> str:
    return orjson.dumps(list(name)).decode()


def _values(fields: Iterable[Field], hit: Hit) -> dict[str, str] | None:
    """Field label -> value; None when the hit lacks one (it then takes no part)."""
    found = {}
    for item in fields:
        value = item.value(hit.values)
        if value is None:
            return None
        found[item.label] = value
    return found


@dataclass(frozen=True, slots=True)
class Verdict:
    """An alert to raise or update: the rule, its group, and the hits it is about."""

    info: RuleInfo
    group: dict[str, str]
    hits: list[Hit]


@dataclass(slots=True)
class Learning:
    since: datetime | None = None
    forgotten: int = 0

    def learned(self, rule: BehaviourRule, moment: datetime) -> bool:
        return self.since is not None and moment - self.since >= rule.history

    def to_json(self) -> dict[str, Any]:
        return {
            "since": None if self.since is None else self.since.isoformat(),
            "forgotten": self.forgotten,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Learning:
        since = data.get("since")
        return cls(None if since is None else datetime.fromisoformat(since), data["forgotten"])


@dataclass(slots=True)
class _Group:
    """A baseline group: its peak per day, and the hits of its current window."""

    group: dict[str, str]
    days: dict[int, int] = field(default_factory=dict)
    times: list[datetime] = field(default_factory=list)
    window: list[Hit] = field(default_factory=list)
    active: int = 0
    """The last day it was active: the least recently active groups go first."""

    def to_json(self) -> bytes:
        return orjson.dumps(
            {"group": self.group, "days": {str(day): peak for day, peak in self.days.items()}}
        )


class Learner:
    """The history of every new_terms and baseline rule; see the module docstring."""

    def __init__(self, rules: Iterable[BehaviourRule]) -> None:
        self.rules = {rule.info.id: rule for rule in rules}
        self._uses: dict[str, list[BehaviourRule]] = {}
        for rule in self.rules.values():
            for rule_id in set(rule.rules):
                self._uses.setdefault(rule_id, []).append(rule)
        self.learning = {rule_id: Learning() for rule_id in self.rules}
        self.terms: dict[str, dict[str, int]] = {
            rule_id: {} for rule_id, rule in self.rules.items() if isinstance(rule, NewTermsRule)
        }
        self.groups: dict[str, dict[str, _Group]] = {
            rule_id: {} for rule_id, rule in self.rules.items() if isinstance(rule, BaselineRule)
        }
        self._latest_since: datetime | None = None
        """The latest ``since`` of any rule (None while one has none): hits after it
        move no rule's start, so most hits cost one comparison here."""
        self._swept_day: int | None = None
        self._told: set[str] = set()
        self._days: dict[int, int] = {}
        """Day numbers shared by every term (one int object per day, not per term)."""
        self._changed: dict[str, bytes | None] = {}

    def uses(self, rule_id: str) -> bool:
        return rule_id in self._uses

    def saw(self, moment: datetime) -> None:
        """An event reached the correlator: each rule's history starts at the earliest."""
        if not self.learning or (self._latest_since is not None and moment >= self._latest_since):
            return
        for rule_id, learning in self.learning.items():
            if learning.since is None or moment < learning.since:
                learning.since = moment
                self._changed[_row(LEARNING, rule_id)] = orjson.dumps(learning.to_json())
        self._latest_since = max(learning.since or moment for learning in self.learning.values())

    def feed(self, hit: Hit) -> list[Verdict]:
        """What the history says of one hit (learning from it first)."""
        self.saw(hit.timestamp)
        found = []
        for rule in self._uses.get(hit.rule, ()):
            verdict = (
                self._new_term(rule, hit)
                if isinstance(rule, NewTermsRule)
                else self._baseline(rule, hit)
            )
            if verdict is not None:
                found.append(verdict)
        return found

    def _quiet(self, rule: BehaviourRule, moment: datetime) -> bool:
        """Whether the rule is still learning at ``moment`` (said once per process)."""
        learning = self.learning[rule.info.id]
        if learning.learned(rule, moment):
            return False
        if rule.info.id not in self._told and learning.since is not None:
            self._told.add(rule.info.id)
            log.info(
                "rule_learning",
                rule=rule.info.id,
                since=learning.since.isoformat(),
                until=(learning.since + rule.history).isoformat(),
            )
        return True

    def _new_term(self, rule: NewTermsRule, hit: Hit) -> Verdict | None:
        values = _values(rule.fields, hit)
        if values is None:
            return None
        key = _hash(values.values())
        seen = self.terms[rule.info.id]
        last = seen.get(key)
        day = day_of(hit.timestamp)
        if last is None or day > last:
            seen[key] = self._days.setdefault(day, day)
            self._changed[_row(TERMS, rule.info.id, key)] = str(day).encode()
            if last is None and len(seen) > rule.max_terms:
                self._forget_terms(rule, seen)
        known = last is not None and last >= day_of(hit.timestamp - rule.history)
        if known or self._quiet(rule, hit.timestamp):
            return None
        group = _values(rule.group_by, hit)
        if group is None:
            return None
        context = {"new_terms": [{"terms": values, "history": span_text(rule.history)}]}
        return Verdict(rule.info, group, [replace(hit, context=context)])

    def _forget_terms(self, rule: NewTermsRule, seen: dict[str, int]) -> None:
        """A full rule forgets its least recently seen terms, a share at once."""
        count = max(1, int(len(seen) * EVICT_SHARE))
        for key, _ in sorted(seen.items(), key=lambda item: item[1])[:count]:
            del seen[key]
            self._changed[_row(TERMS, rule.info.id, key)] = None
        learning = self.learning[rule.info.id]
        learning.forgotten += count
        self._changed[_row(LEARNING, rule.info.id)] = orjson.dumps(learning.to_json())

    def _baseline(self, rule: BaselineRule, hit: Hit) -> Verdict | None:
        group = _values(rule.group_by, hit)
        if group is None:
            return None
        if rule.distinct is not None and rule.distinct.value(hit.values) is None:
            return None
        key = _hash(group.values())
        groups = self.groups[rule.info.id]
        held = groups.get(key)
        if held is None:
            held = groups[key] = _Group(group)
            if len(groups) > rule.max_groups:
                self._forget_groups(rule, groups)
        day = day_of(hit.timestamp)
        held.active = max(held.active, day)
        at = bisect.bisect_right(held.times, hit.timestamp)
        held.times.insert(at, hit.timestamp)
        held.window.insert(at, hit)
        self._changed[_row(WINDOW, rule.info.id, key, hit.evidence.id)] = orjson.dumps(
            hit.to_json()
        )
        if len(held.window) > MAX_WINDOW_HITS:
            self._drop_window(rule, key, held, 1)
            at -= 1
            if at < 0:
                return None  # older than every hit held: evicted at once
        # The window ending at this hit, which sorts last among hits of its time.
        window = held.window[
            bisect.bisect_right(held.times, hit.timestamp - rule.timespan) : at + 1
        ]
        value = _measure(rule, window)
        if value > held.days.get(day, 0):
            held.days[day] = value
            self._changed[_row(BASELINE, rule.info.id, key)] = held.to_json()
        if self._quiet(rule, hit.timestamp):
            return None
        peaks = [peak for past, peak in held.days.items() if day - rule.history_days <= past < day]
        if peaks:
            reference = _percentile(peaks, rule.percentile)
            if value < rule.floor or value <= reference * rule.factor:
                return None
            said: dict[str, Any] = {"value": value, "usual": reference, "factor": rule.factor}
        else:
            needed = rule.new_group_floor
            if needed is None or value < needed:
                return None
            said = {"value": value, "usual": None, "new_group": True}
        said["timespan"] = span_text(rule.timespan)
        return Verdict(rule.info, group, [*window[:-1], replace(hit, context={"baseline": [said]})])

    def _forget_groups(self, rule: BaselineRule, groups: dict[str, _Group]) -> None:
        count = max(1, int(len(groups) * EVICT_SHARE))
        for key, held in sorted(groups.items(), key=lambda item: item[1].active)[:count]:
            self._drop_window(rule, key, held, len(held.window))
            del groups[key]
            self._changed[_row(BASELINE, rule.info.id, key)] = None

    def _drop_window(self, rule: BaselineRule, key: str, held: _Group, count: int) -> None:
        for hit in held.window[:count]:
            self._changed[_row(WINDOW, rule.info.id, key, hit.evidence.id)] = None
        del held.window[:count], held.times[:count]

    def prune(self, horizon: datetime) -> None:
        """Forget windows no event on time can reach, and (once a day) history older than
        each rule's window; ``horizon`` is the watermark less the allowed lateness."""
        today = day_of(horizon)
        sweep_days = self._swept_day != today
        self._swept_day = today
        for rule_id, groups in self.groups.items():
            rule = self.rules[rule_id]
            assert isinstance(rule, BaselineRule)
            for key in list(groups):
                held = groups[key]
                cut = bisect.bisect_left(held.times, horizon - rule.timespan)
                if cut:
                    self._drop_window(rule, key, held, cut)
                if sweep_days:
                    old = [day for day in held.days if day < today - rule.history_days]
                    for day in old:
                        del held.days[day]
                    if not held.days and not held.window:
                        del groups[key]
                        self._changed[_row(BASELINE, rule_id, key)] = None
                    elif old:
                        self._changed[_row(BASELINE, rule_id, key)] = held.to_json()
        if not sweep_days:
            return
        for rule_id, seen in self.terms.items():
            oldest = day_of(horizon - self.rules[rule_id].history)
            for key in [key for key, day in seen.items() if day < oldest]:
                del seen[key]
                self._changed[_row(TERMS, rule_id, key)] = None

    def changes(self) -> dict[str, bytes | None]:
        """The state rows changed since the last call (None: deleted), to commit."""
        out, self._changed = self._changed, {}
        return out

    def restore(self, state: Mapping[str, bytes]) -> None:
        """Load the rows ``changes`` gave, as committed.  Rows of a rule no longer loaded
        (or now of another type) are deleted with the next commit: what the state holds
        stays bounded by the rules loaded."""
        windows: list[tuple[str, str, Hit]] = []
        for row, value in state.items():
            if not row.startswith('["'):
                continue
            name = orjson.loads(row)
            if not name or name[0] not in _KINDS:
                continue
            kind, rule_id = name[0], name[1]
            if kind == LEARNING and rule_id in self.learning:
                self.learning[rule_id] = Learning.from_json(orjson.loads(value))
            elif kind == TERMS and rule_id in self.terms:
                day = int(value)
                self.terms[rule_id][name[2]] = self._days.setdefault(day, day)
            elif kind == BASELINE and rule_id in self.groups:
                data = orjson.loads(value)
                days = {int(day): peak for day, peak in data["days"].items()}
                self.groups[rule_id][name[2]] = _Group(
                    data["group"], days, active=max(days, default=0)
                )
            elif kind == WINDOW and rule_id in self.groups:
                windows.append((rule_id, name[2], Hit.from_json(orjson.loads(value))))
            else:
                self._changed[row] = None
        for rule_id, key, hit in sorted(windows, key=lambda item: item[2].order()):
            held = self.groups[rule_id].get(key)
            if held is not None:
                held.times.append(hit.timestamp)
                held.window.append(hit)
        sinces = [learning.since for learning in self.learning.values()]
        known = [since for since in sinces if since is not None]
        self._latest_since = max(known) if known and len(known) == len(sinces) else None


def _measure(rule: BaselineRule, window: list[Hit]) -> int:
    """The count, or the distinct count of ``rule.distinct``, of a window's hits."""
    if rule.distinct is None:
        return len(window)
    distinct = rule.distinct
    return len({distinct.value(hit.values) for hit in window} - {None})


def _percentile(values: list[int], percentile: float) -> int:
    """Nearest rank: the smallest value at least ``percentile`` % of the values reach."""
    ordered = sorted(values)
    rank = max(1, math.ceil(percentile / 100 * len(ordered)))
    return ordered[rank - 1]


def span_text(span: timedelta) -> str:
    """A duration as the rules write it: ``14d``, ``10m``."""
    seconds = int(span.total_seconds())
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def learning_state(
    rule: BehaviourRule, learning: Learning | None, newest: datetime | None
) -> dict[str, Any]:
    """What ``rules list`` says of a rule's learning: since when, until when, whether done."""
    if learning is None or learning.since is None:
        return {"state": "waiting", "note": "no events yet: learning starts with the first"}
    until = learning.since + rule.history
    done = newest is not None and newest >= until
    note = (
        f"history since {learning.since:%Y-%m-%d %H:%M}"
        if done
        else f"learning until {until:%Y-%m-%d %H:%M}: raises nothing before"
    )
    if learning.forgotten:
        note += f"; full, forgot {learning.forgotten} least recently seen"
    return {
        "state": "learned" if done else "learning",
        "since": learning.since.isoformat(),
        "until": until.isoformat(),
        "forgotten": learning.forgotten,
        "note": note,
    }


def stored_learning(
    rules: Iterable[BehaviourRule], state: Mapping[str, bytes]
) -> dict[str, dict[str, Any]]:
    """Each rule's learning state and size, from the correlator's committed state rows."""
    learnings: dict[str, Learning] = {}
    sizes: dict[str, int] = {}
    newest: datetime | None = None
    for row, value in state.items():
        if not row.startswith('["'):
            continue
        name = orjson.loads(row)
        if name[0] == "watermark":
            moment = datetime.fromisoformat(value.decode())
            newest = moment if newest is None else max(newest, moment)
        elif name[0] == LEARNING:
            learnings[name[1]] = Learning.from_json(orjson.loads(value))
        elif name[0] in (TERMS, BASELINE):
            sizes[name[1]] = sizes.get(name[1], 0) + 1
    found = {}
    for rule in rules:
        described = learning_state(rule, learnings.get(rule.info.id), newest)
        kept = "terms" if isinstance(rule, NewTermsRule) else "groups"
        described[kept] = sizes.get(rule.info.id, 0)
        described["note"] += f"; {described[kept]} {kept}"
        found[rule.info.id] = described
    return found
