"""Loading Sigma rule files into compiled detection and correlation rules.

Every file of every path is parsed together, so a correlation rule may name
detection rules of other files.  A rule that uses something this engine
cannot evaluate is an error naming its file and the feature; a rule for a
logsource auditcorr does not collect (``clamav``) is skipped and reported,
because it could never match.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any, Final

import yaml
from sigma.collection import SigmaCollection
from sigma.conditions import ConditionFieldEqualsValueExpression, ConditionOR
from sigma.correlations import (
    SigmaCorrelationCondition,
    SigmaCorrelationConditionOperator,
    SigmaCorrelationRule,
    SigmaCorrelationType,
)
from sigma.exceptions import SigmaError
from sigma.rule import SigmaRule
from sigma.types import SigmaRuleLocation, SigmaString  # type: ignore[attr-defined]

from daemon.alert import SEVERITIES, Severity
from daemon.logtypes import Logsource
from daemon.rules import BUILTIN
from daemon.rules.behaviour import (
    BehaviourError,
    BehaviourRule,
    UnknownRuleError,
    kind_of,
    parse_rule,
)
from daemon.rules.compile import (
    Predicate,
    UnsupportedFeatureError,
    compile_condition,
    literal_values,
)
from daemon.rules.logsource import UnsupportedLogsourceError, source_for
from daemon.rules.prefilter import Needle, needles

DEFAULT_GROUP_BY: Final = ("user.name",)
"""What repeats of one detection rule are grouped by, unless it says ``group-by``."""
CORRELATION_TYPES: Final = ("event_count", "value_count", "temporal", "temporal_ordered")
_YAML_LOADER: Final = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader
"""libyaml's parser when PyYAML has it: the pure-Python one was most of the
time it took to load SigmaHQ's rules, which each decoding worker does at start."""
TRIGGERING: Final = (
    SigmaCorrelationConditionOperator.GT,
    SigmaCorrelationConditionOperator.GTE,
)


class RuleLoadError(ValueError):
    """A rule file that cannot be used; the message names the file and why."""


class RuleReferenceError(RuleLoadError):
    """A correlation names a rule that is not among the rules loaded with it."""


@dataclass(frozen=True, slots=True)
class RuleInfo:
    """What an alert says about the rule that raised it."""

    id: str
    title: str
    description: str
    level: Severity
    tags: tuple[str, ...]
    falsepositives: tuple[str, ...]
    path: str


@dataclass(frozen=True, slots=True)
class DetectionRule:
    info: RuleInfo
    source: Logsource
    match: Predicate
    index_values: frozenset[str] | None
    """Literal values of the source's index field the rule needs, None: any."""
    needles: frozenset[Needle] | None
    """Texts one of which an event must hold to match (``prefilter.py``), None: unknown."""
    group_by: tuple[str, ...]
    alerts: bool
    """False for a rule only a correlation uses (Sigma's ``generate``)."""


@dataclass(frozen=True, slots=True)
class Condition:
    op: str
    count: float
    field: str | None = None

    def holds(self, value: int) -> bool:
        return value > self.count if self.op == "gt" else value >= self.count


@dataclass(frozen=True, slots=True)
class CorrelationRule:
    info: RuleInfo
    type: str
    rules: tuple[str, ...]
    """Rule ids (detections, or correlations whose alerts feed this one),
    in the order ``temporal_ordered`` needs."""
    group_by: tuple[str, ...]
    timespan: float
    """Seconds."""
    condition: Condition
    aliases: dict[str, dict[str, str]] = field(default_factory=dict)
    """Alias -> rule id -> the field it names there."""
    alerts: bool = True
    """False for a correlation only other correlations use (Sigma's ``generate``)."""

    def field_of(self, name: str, rule_id: str) -> str:
        """The field a group-by name means for events of one detection rule."""
        return self.aliases.get(name, {}).get(rule_id, name)


@dataclass(slots=True)
class Loaded:
    detections: list[DetectionRule] = field(default_factory=list)
    correlations: list[CorrelationRule] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """Rules for logsources auditcorr does not collect, with the reason."""
    behaviours: list[BehaviourRule] = field(default_factory=list)
    """new_terms and baseline rules (``behaviour.py``)."""


def rule_files(paths: Iterable[str | Path]) -> list[Path]:
    """The rule files under each path; ``builtin`` is the built-in pack."""
    found: list[Path] = []
    for entry in paths:
        path = builtin_path() if str(entry) == BUILTIN else Path(entry)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.suffix in (".yml", ".yaml")))
        elif path.is_file():
            found.append(path)
        else:
            raise RuleLoadError(f"{path}: no such rule file or directory")
    return found


def builtin_path() -> Path:
    return Path(str(resources.files("daemon.rules") / "builtin"))


def load_rules(paths: Iterable[str | Path]) -> Loaded:
    """Parse and compile every rule under ``paths``; raises :class:`RuleLoadError`."""
    collections = []
    behaviours: list[tuple[Path, dict[str, Any]]] = []
    for path in rule_files(paths):
        try:
            text = path.read_text(encoding="utf-8")
            docs = list(yaml.load_all(text, Loader=_YAML_LOADER))
            behaviours.extend((path, doc) for doc in docs if kind_of(doc))
            collection = SigmaCollection.from_dicts(
                [doc for doc in docs if not kind_of(doc)],
                source=SigmaRuleLocation(path),
                resolve_references=False,
            )
        except (OSError, UnicodeDecodeError, SigmaError, yaml.YAMLError) as err:
            raise RuleLoadError(f"{path}: {err}") from err
        collections.append(collection)
    try:
        merged = SigmaCollection.merge(collections, resolve_references=True)
    except SigmaError as err:
        raise RuleReferenceError(f"rule references: {err}") from err
    loaded = _compile_all(merged)
    _add_behaviours(loaded, behaviours)
    return loaded


def _add_behaviours(loaded: Loaded, docs: list[tuple[Path, dict[str, Any]]]) -> None:
    """Compile the new_terms and baseline rules; the detections they name become
    building blocks, as those of a correlation do."""
    detections = {rule.info.id for rule in loaded.detections}
    taken = detections | {corr.info.id for corr in loaded.correlations}
    for path, doc in docs:
        kind = kind_of(doc)
        assert kind is not None
        info = _behaviour_info(path, doc)
        if info.id in taken:
            raise RuleLoadError(f"{info.path}: another rule is named {info.id!r}")
        taken.add(info.id)
        try:
            loaded.behaviours.append(parse_rule(info, kind, doc[kind], detections))
        except UnknownRuleError as err:
            raise RuleReferenceError(f"{info.path}: {err}") from err
        except BehaviourError as err:
            raise RuleLoadError(f"{info.path}: {err}") from err
    used = {rule_id for rule in loaded.behaviours for rule_id in rule.rules}
    correlated = {rule_id for corr in loaded.correlations for rule_id in corr.rules}
    loaded.detections = [
        replace(rule, alerts=False)
        if rule.info.id in used and rule.info.id not in correlated
        else rule
        for rule in loaded.detections
    ]


def _behaviour_info(path: Path, doc: dict[str, Any]) -> RuleInfo:
    title = doc.get("title")
    where = f"{path} (rule {title!r})"
    rule_id = doc.get("name") or doc.get("id")
    if not isinstance(title, str) or not isinstance(rule_id, str):
        raise RuleLoadError(f"{where}: a rule needs a title and a name")
    level = doc.get("level", "medium")
    if level not in SEVERITIES:
        raise RuleLoadError(f"{where}: unknown level {level!r}")
    tags, falsepositives = doc.get("tags") or [], doc.get("falsepositives") or []
    if not isinstance(tags, list) or not isinstance(falsepositives, list):
        raise RuleLoadError(f"{where}: tags and falsepositives are lists")
    return RuleInfo(
        id=rule_id,
        title=title,
        description=str(doc.get("description") or "").strip(),
        level=SEVERITIES[SEVERITIES.index(level)],
        tags=tuple(str(tag) for tag in tags),
        falsepositives=tuple(str(item) for item in falsepositives),
        path=where,
    )


def _compile_all(collection: SigmaCollection) -> Loaded:
    loaded = Loaded()
    referenced: dict[int, bool] = {}
    correlations = [rule for rule in collection.rules if isinstance(rule, SigmaCorrelationRule)]
    for corr in correlations:
        for ref in corr.rules or []:
            referenced[id(ref.rule)] = referenced.get(id(ref.rule), False) or corr.generate
    compiled: dict[int, DetectionRule] = {}
    for rule in collection.rules:
        if isinstance(rule, SigmaRule):
            try:
                detection = _detection(rule, alerts=referenced.get(id(rule), True))
            except UnsupportedLogsourceError as err:
                loaded.skipped.append(f"{_where(rule)}: {err}")
                continue
            compiled[id(rule)] = detection
            loaded.detections.append(detection)
    ids = {key: rule.info.id for key, rule in compiled.items()}
    pending = correlations
    while pending:
        # A correlation may build on another: compile those whose references are known.
        ready = [c for c in pending if all(id(ref.rule) in ids for ref in c.rules or [])]
        if not ready:
            ready = pending  # the first one left reports its unknown reference
        for corr in ready:
            compiled_corr = _correlation(corr, ids, alerts=referenced.get(id(corr), True))
            ids[id(corr)] = compiled_corr.info.id
            loaded.correlations.append(compiled_corr)
        pending = [c for c in pending if id(c) not in ids]
    return loaded


def _where(rule: SigmaRule | SigmaCorrelationRule) -> str:
    path = rule.source.path if rule.source else None
    return f"{path} (rule {rule.title!r})" if path else f"rule {rule.title!r}"


def _info(rule: SigmaRule | SigmaCorrelationRule) -> RuleInfo:
    rule_id = rule.name or (str(rule.id) if rule.id else None)
    if rule_id is None:
        raise RuleLoadError(f"{_where(rule)}: a rule needs an id or a name")
    level = rule.level.name.lower() if rule.level else "medium"
    if level not in SEVERITIES:
        raise RuleLoadError(f"{_where(rule)}: unknown level {level!r}")
    return RuleInfo(
        id=rule_id,
        title=rule.title,
        description=(rule.description or "").strip(),
        level=level,
        tags=tuple(str(tag) for tag in rule.tags),
        falsepositives=tuple(rule.falsepositives or ()),
        path=_where(rule),
    )


def _group_by(custom: dict[str, Any], default: tuple[str, ...]) -> tuple[str, ...]:
    value = custom.get("group-by", default)
    return (value,) if isinstance(value, str) else tuple(value)


def _detection(rule: SigmaRule, *, alerts: bool) -> DetectionRule:
    where = _where(rule)
    if rule.errors:
        raise RuleLoadError(f"{where}: {rule.errors[0]}")
    logsource = rule.logsource
    source = source_for(logsource.product, logsource.service, logsource.category)
    try:
        trees = [condition.parse() for condition in rule.detection.parsed_condition]
        tree = trees[0] if len(trees) == 1 else ConditionOR(trees)
        match = compile_condition(tree, source)
    except UnsupportedFeatureError as err:
        raise RuleLoadError(f"{where}: unsupported: {err}") from err
    except SigmaError as err:
        raise RuleLoadError(f"{where}: {err}") from err
    for name, wanted in source.where.items():
        match = _with_field(match, name, wanted)
    if source.native is not None:
        match = _both(source.native, match)
    index = literal_values(tree, source.index_field) if source.index_field else None
    return DetectionRule(
        info=_info(rule),
        source=source,
        match=match,
        index_values=index,
        needles=needles(tree, source),
        group_by=_group_by(rule.custom_attributes, DEFAULT_GROUP_BY),
        alerts=alerts,
    )


def _with_field(match: Predicate, name: str, wanted: str) -> Predicate:
    expected = compile_condition(
        ConditionFieldEqualsValueExpression(name, SigmaString(wanted)), Logsource(())
    )
    return lambda doc: expected(doc) and match(doc)


def _both(native: Predicate, match: Predicate) -> Predicate:
    return lambda doc: native(doc) and match(doc)


def _correlation(
    corr: SigmaCorrelationRule, ids: dict[int, str], *, alerts: bool
) -> CorrelationRule:
    where = _where(corr)
    kind = corr.type.name.lower() if isinstance(corr.type, SigmaCorrelationType) else ""
    if kind not in CORRELATION_TYPES:
        raise RuleLoadError(f"{where}: unsupported: correlation type {kind or corr.type}")
    rules: list[str] = []
    by_ref: dict[str, str] = {}
    for ref in corr.rules or []:
        target = ids.get(id(ref.rule))
        if target is None:
            raise RuleReferenceError(
                f"{where}: correlation of {ref.reference!r}, which is not a rule that loaded"
            )
        rules.append(target)
        by_ref[ref.reference] = target
    condition = _condition(corr, kind, len(rules), where)
    aliases: dict[str, dict[str, str]] = {}
    for name, alias in corr.aliases.aliases.items():
        aliases[name] = {
            by_ref.get(ref.reference, ref.reference): target
            for ref, target in alias.mapping.items()
        }
    return CorrelationRule(
        info=_info(corr),
        type=kind,
        rules=tuple(rules),
        group_by=tuple(corr.group_by or ()),
        timespan=float(corr.timespan.seconds),
        condition=condition,
        aliases=aliases,
        alerts=alerts,
    )


def _condition(corr: SigmaCorrelationRule, kind: str, rules: int, where: str) -> Condition:
    cond = corr.condition
    if kind.startswith("temporal") and cond is None:
        return Condition("gte", rules)
    if not isinstance(cond, SigmaCorrelationCondition):
        raise RuleLoadError(f"{where}: unsupported: extended correlation condition")
    if cond.op not in TRIGGERING:
        raise RuleLoadError(
            f"{where}: unsupported: condition {cond.op.name.lower()} "
            "(only gt and gte can raise an alert as events arrive)"
        )
    fieldref = cond.fieldref
    if isinstance(fieldref, list):
        raise RuleLoadError(f"{where}: unsupported: value_count over several fields")
    if kind == "value_count" and not fieldref:
        raise RuleLoadError(f"{where}: value_count needs condition.field")
    return Condition(cond.op.name.lower(), float(cond.count), fieldref)
