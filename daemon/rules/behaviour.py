"""Rules that compare an event with what was normal before it: ``new_terms`` and ``baseline``.

Sigma can say "this call" and "ten of these in ten minutes", not "for the
first time" or "more than this principal ever does".  These two rule types
say that, in a YAML document beside the Sigma rules (a top-level ``new_terms:``
or ``baseline:`` block where a correlation has ``correlation:``).  Like a
correlation they build on Sigma detection rules, named under ``rules``, which
select the events; the history they compare with is learned by the correlator
(``daemon/rules/learned.py``) from the timeline itself.

A field may be given a name of its own and several fields, the first one an
event has counting (``principal: [<the role's name>, user.name]``: a role's
sessions are one principal, whatever each session is called).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final

from daemon.timeparse import parse_duration

if TYPE_CHECKING:
    from daemon.rules.loader import RuleInfo

KINDS: Final = ("new_terms", "baseline")
DEFAULT_MAX_TERMS: Final = 100_000
"""Terms one new_terms rule remembers; past it the least recently seen go first."""
DEFAULT_MAX_GROUPS: Final = 20_000
"""Groups one baseline rule keeps a history for; past it the least recently active go."""
MAX_HISTORY: Final = timedelta(days=90)


class BehaviourError(ValueError):
    """A new_terms or baseline block that cannot be used; the message says why."""


class UnknownRuleError(BehaviourError):
    """The block names a rule that is not a detection rule loaded with it."""


@dataclass(frozen=True, slots=True)
class Field:
    """One field of a tuple or a group: the first of ``names`` an event has."""

    label: str
    """What alerts call it: the field's name, or the name given to several."""
    names: tuple[str, ...]

    def value(self, values: dict[str, str]) -> str | None:
        for name in self.names:
            found = values.get(name)
            if found is not None:
                return found
        return None


@dataclass(frozen=True, slots=True)
class NewTermsRule:
    """An alert when the tuple of ``fields`` was not seen within ``history`` before."""

    info: RuleInfo
    rules: tuple[str, ...]
    fields: tuple[Field, ...]
    group_by: tuple[Field, ...]
    history: timedelta
    max_terms: int = DEFAULT_MAX_TERMS
    type: str = "new_terms"


@dataclass(frozen=True, slots=True)
class BaselineRule:
    """An alert when a group's count (or distinct count of ``distinct``) in ``timespan``
    is above ``factor`` times the ``percentile`` of its own daily peaks over ``history``
    and at least ``floor``; a group with no history alerts at ``new_group_floor``."""

    info: RuleInfo
    rules: tuple[str, ...]
    group_by: tuple[Field, ...]
    timespan: timedelta
    history: timedelta
    distinct: Field | None
    percentile: float
    factor: float
    floor: int
    new_group_floor: int | None
    max_groups: int = DEFAULT_MAX_GROUPS
    type: str = "baseline"

    @property
    def history_days(self) -> int:
        return math.ceil(self.history / timedelta(days=1))


BehaviourRule = NewTermsRule | BaselineRule


def kind_of(doc: Any) -> str | None:
    """``new_terms`` or ``baseline`` for a document of one of these rules, else None."""
    if not isinstance(doc, dict):
        return None
    kinds = [kind for kind in KINDS if kind in doc]
    return kinds[0] if len(kinds) == 1 else None


def parse_rule(info: RuleInfo, kind: str, block: Any, detections: set[str]) -> BehaviourRule:
    """The rule a ``new_terms:`` or ``baseline:`` block describes; raises BehaviourError."""
    if not isinstance(block, dict):
        raise BehaviourError(f"{kind} must be a mapping")
    spec = dict(block)
    rules = _names(spec.pop("rules", None), "rules")
    for rule_id in rules:
        if rule_id not in detections:
            raise UnknownRuleError(f"rules: {rule_id!r} is not a detection rule that loaded")
    history = _duration(spec.pop("history", None), "history")
    if history > MAX_HISTORY:
        raise BehaviourError(f"history: at most {MAX_HISTORY.days}d")
    if kind == "new_terms":
        fields = _fields(spec.pop("fields", None), "fields")
        group_by = _fields(spec.pop("group-by", None), "group-by") if "group-by" in spec else fields
        max_terms = _count(spec.pop("max_terms", DEFAULT_MAX_TERMS), "max_terms", least=1)
        _no_more(spec, kind)
        return NewTermsRule(info, rules, fields, group_by, history, max_terms)
    group_by = _fields(spec.pop("group-by", None), "group-by")
    timespan = _duration(spec.pop("timespan", None), "timespan")
    distinct = spec.pop("distinct", None)
    percentile = _number(spec.pop("percentile", 100), "percentile")
    if not 0 < percentile <= 100:
        raise BehaviourError("percentile: between 0 (excluded) and 100")
    factor = _number(spec.pop("factor", 1), "factor")
    if factor < 1:
        raise BehaviourError("factor: at least 1 (below it, ordinary days would alert)")
    floor = _count(spec.pop("floor", None), "floor", least=1)
    new_group = spec.pop("new_group_floor", None)
    max_groups = _count(spec.pop("max_groups", DEFAULT_MAX_GROUPS), "max_groups", least=1)
    _no_more(spec, kind)
    return BaselineRule(
        info,
        rules,
        group_by,
        timespan,
        history,
        None if distinct is None else _field(distinct, "distinct"),
        percentile,
        factor,
        floor,
        None if new_group is None else _count(new_group, "new_group_floor", least=1),
        max_groups,
    )


def _no_more(spec: dict[str, Any], kind: str) -> None:
    if spec:
        raise BehaviourError(f"{kind}: unknown key {sorted(spec)[0]!r}")


def _names(value: Any, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise BehaviourError(f"{key}: a list of rule names is needed")
    return tuple(value)


def _field(value: Any, key: str) -> Field:
    if isinstance(value, str):
        return Field(value, (value,))
    if isinstance(value, dict) and len(value) == 1:
        ((label, names),) = value.items()
        names = [names] if isinstance(names, str) else names
        if (
            isinstance(label, str)
            and isinstance(names, list)
            and names
            and all(isinstance(name, str) for name in names)
        ):
            return Field(label, tuple(names))
    raise BehaviourError(
        f"{key}: a field name, or {{name: [fields]}} (the first field an event has counts)"
    )


def _fields(value: Any, key: str) -> tuple[Field, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise BehaviourError(f"{key}: a list of fields is needed")
    return tuple(_field(item, key) for item in value)


def _duration(value: Any, key: str) -> timedelta:
    if not isinstance(value, str):
        raise BehaviourError(f"{key}: a duration like 10m or 14d is needed")
    try:
        found = parse_duration(value)
    except ValueError as err:
        raise BehaviourError(f"{key}: {err}") from err
    if found <= timedelta(0):
        raise BehaviourError(f"{key}: must be longer than nothing")
    return found


def _number(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BehaviourError(f"{key}: a number is needed")
    return float(value)


def _count(value: Any, key: str, *, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise BehaviourError(f"{key}: a whole number of at least {least} is needed")
    return value


def needed(rule: BehaviourRule) -> set[str]:
    """The fields the hits of this rule's detections must carry."""
    fields = list(rule.group_by)
    if isinstance(rule, NewTermsRule):
        fields += rule.fields
    elif rule.distinct is not None:
        fields.append(rule.distinct)
    return {name for item in fields for name in item.names}
