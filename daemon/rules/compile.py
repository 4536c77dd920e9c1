"""Sigma detections compiled into Python closures over an ECS document.

pySigma parses the rule and resolves its condition (``1 of sel_*``, ``them``,
modifiers) into a tree of and/or/not over field comparisons; this module
turns that tree into nested closures once, at load time, so matching an
event calls plain Python functions and never walks the rule again.

Semantics follow the Sigma specification: strings compare case-insensitively
unless ``cased``; ``*`` and ``?`` are wildcards; ``re`` is a case-sensitive
search; a field holding a list matches when any element matches; ``null``
matches a missing field or a JSON null; keywords (values without a field)
search the event's ``message`` for the value anywhere in it, as full-text
backends do.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any, Final

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionItem,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.types import (
    CompareOperators,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SpecialChars,
)

from daemon.logtypes import Logsource

Doc = dict[str, Any]
Predicate = Callable[[Doc], bool]
ValueTest = Callable[[Any], bool]

KEYWORD_FIELD: Final = "message"
"""Where keyword detections (values without a field name) search."""

_MISSING: Final = object()
MERGE_AT_LEAST: Final = 3
"""String alternatives of one field in an ``or`` that become one regular expression."""


class UnsupportedFeatureError(ValueError):
    """A rule uses something this engine cannot evaluate; names the feature."""


def _walk(node: Any, path: tuple[str, ...]) -> Any:
    for index, part in enumerate(path):
        if isinstance(node, dict):
            node = node.get(part, _MISSING)
            if node is _MISSING:
                return _MISSING
        elif isinstance(node, list):
            # A list of objects (CloudTrail ``resources``): collect from each.
            rest = path[index:]
            values: list[Any] = []
            for item in node:
                found = _walk(item, rest)
                if isinstance(found, list):
                    values.extend(found)
                elif found is not _MISSING:
                    values.append(found)
            return values if values else _MISSING
        else:
            return _MISSING
    return node


def getter(paths: list[tuple[str, ...]]) -> Callable[[Doc], Any]:
    """The value at the first of ``paths`` present in a document, else a marker."""
    if len(paths) == 1:
        return _path_getter(paths[0])

    def first(doc: Doc) -> Any:
        for path in paths:
            value = _walk(doc, path)
            if value is not _MISSING:
                return value
        return _MISSING

    return first


def _path_getter(path: tuple[str, ...]) -> Callable[[Doc], Any]:
    """Plain dictionary lookups for the usual short paths; lists take the slow walk."""
    if len(path) == 1:
        (key,) = path
        return lambda doc: doc.get(key, _MISSING)
    if len(path) == 2:
        first, second = path

        def two(doc: Doc) -> Any:
            node = doc.get(first)
            if type(node) is dict:
                return node.get(second, _MISSING)
            return _MISSING if node is None else _walk(doc, path)

        return two
    if len(path) == 3:
        first, second, third = path

        def three(doc: Doc) -> Any:
            node = doc.get(first)
            if type(node) is dict:
                node = node.get(second)
                if type(node) is dict:
                    return node.get(third, _MISSING)
            return _MISSING if node is None else _walk(doc, path)

        return three
    return lambda doc: _walk(doc, path)


def as_text(value: Any) -> str | None:
    """The text Sigma compares against: JSON scalars as JSON writes them."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return None


_LOWERED: dict[str, str] = {}
_LOWERED_MAX: Final = 65536


def _lower(text: str) -> str:
    """``str.lower``, remembered: many rules fold the same field of one event."""
    found = _LOWERED.get(text)
    if found is None:
        if len(_LOWERED) >= _LOWERED_MAX:
            _LOWERED.clear()
        found = _LOWERED[text] = text.lower()
    return found


def _string_test(value: SigmaString, *, anchored: bool = True) -> ValueTest:
    """Whole-value match for fields; keywords (``anchored=False``) match anywhere."""
    if value.contains_placeholder():
        raise UnsupportedFeatureError("placeholders (%name%) need a processing pipeline")
    cased = isinstance(value, SigmaCasedString)
    parts = value.s
    literal = not value.contains_special()
    fold: Callable[[str], str] = (lambda text: text) if cased else _lower
    if literal:
        plain = fold(_plain(value))
        if not anchored:
            return _on_text(lambda text: plain in fold(text))
        return _on_text(lambda text: fold(text) == plain)
    star = SpecialChars.WILDCARD_MULTI
    if anchored:
        if len(parts) == 3 and parts[0] is star and parts[2] is star and isinstance(parts[1], str):
            needle = fold(parts[1])
            return _on_text(lambda text: needle in fold(text))
        if len(parts) == 2 and parts[1] is star and isinstance(parts[0], str):
            prefix = fold(parts[0])
            return _on_text(lambda text: fold(text).startswith(prefix))
        if len(parts) == 2 and parts[0] is star and isinstance(parts[1], str):
            suffix = fold(parts[1])
            return _on_text(lambda text: fold(text).endswith(suffix))
    pattern = _pattern(value)
    flags = re.DOTALL | (0 if cased else re.IGNORECASE)
    compiled = re.compile(pattern, flags)
    if not anchored:
        return _on_text(lambda text: compiled.search(text) is not None)
    return _on_text(lambda text: compiled.fullmatch(text) is not None)


def _pattern(value: SigmaString, *, trim: bool = False) -> str:
    """The regular expression a Sigma string (wildcards, escapes) stands for.

    ``trim`` drops leading and trailing ``*``: what a search finds anyway.
    """
    parts = list(value.s)
    while trim and parts and parts[0] is SpecialChars.WILDCARD_MULTI:
        parts.pop(0)
    while trim and parts and parts[-1] is SpecialChars.WILDCARD_MULTI:
        parts.pop()
    return "".join(
        ".*"
        if part is SpecialChars.WILDCARD_MULTI
        else "."
        if part is SpecialChars.WILDCARD_SINGLE
        else re.escape(part)
        if isinstance(part, str)
        else _unsupported_part(part)
        for part in parts
    )


def _plain(value: SigmaString) -> str:
    """The literal text of a string without wildcards (escapes resolved: ``\\*`` is ``*``)."""
    return "".join(part for part in value.s if isinstance(part, str))


def _unsupported_part(part: object) -> str:
    raise UnsupportedFeatureError(f"string part {part!r}")


def _on_text(test: Callable[[str], bool]) -> ValueTest:
    def check(value: Any) -> bool:
        if type(value) is str:  # nearly every value: no call to as_text
            return test(value)
        text = as_text(value)
        return text is not None and test(text)

    return check


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


_COMPARE: Final[dict[CompareOperators, Callable[[float, float], bool]]] = {
    CompareOperators.LT: lambda a, b: a < b,
    CompareOperators.LTE: lambda a, b: a <= b,
    CompareOperators.GT: lambda a, b: a > b,
    CompareOperators.GTE: lambda a, b: a >= b,
}

_RE_FLAGS: Final = {
    SigmaRegularExpressionFlag.IGNORECASE: re.IGNORECASE,
    SigmaRegularExpressionFlag.MULTILINE: re.MULTILINE,
    SigmaRegularExpressionFlag.DOTALL: re.DOTALL,
}


def value_test(value: Any) -> ValueTest:
    """A test of one present, non-null scalar against a Sigma value."""
    if isinstance(value, SigmaString):
        return _string_test(value)
    if isinstance(value, SigmaBool):
        wanted = value.boolean
        return lambda found: found is wanted or as_text(found) == ("true" if wanted else "false")
    if isinstance(value, SigmaNumber):
        number = float(value.number)
        text = str(value.number)
        return lambda found: _number(found) == number or as_text(found) == text
    if isinstance(value, SigmaRegularExpression):
        flags = 0
        for flag in value.flags:
            flags |= _RE_FLAGS[flag]
        try:
            compiled = re.compile(str(value.regexp), flags)
        except re.error as err:
            raise UnsupportedFeatureError(
                f"regular expression {str(value.regexp)!r}: {err}"
            ) from err
        return _on_text(lambda text: compiled.search(text) is not None)
    if isinstance(value, SigmaCIDRExpression):
        network = value.network
        return lambda found: _in_network(found, network)
    if isinstance(value, SigmaCompareExpression):
        op = _COMPARE[value.op]
        limit = float(value.number.number)

        def compare(found: Any) -> bool:
            number = _number(found)
            return number is not None and op(number, limit)

        return compare
    if isinstance(value, SigmaExpansion):
        tests = [value_test(item) for item in value.values]
        return lambda found: any(test(found) for test in tests)
    raise UnsupportedFeatureError(f"value type {type(value).__name__}")


def _in_network(found: Any, network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    if not isinstance(found, str):
        return False
    try:
        return ipaddress.ip_address(found) in network
    except ValueError:
        return False


def _any(get: Callable[[Doc], Any], test: ValueTest) -> Predicate:
    def match(doc: Doc) -> bool:
        found = get(doc)
        if found is _MISSING or found is None:
            return False
        if isinstance(found, list):
            # A loop: any() over a generator cost more than testing the one or two
            # items of an event.category or event.type.
            for item in found:  # noqa: SIM110 - see above
                if item is not None and test(item):
                    return True
            return False
        return test(found)

    return match


def _field_expression(node: ConditionFieldEqualsValueExpression, source: Logsource) -> Predicate:
    get = getter(source.paths(node.field))
    value = node.value
    if isinstance(value, SigmaNull):
        return lambda doc: get(doc) in (_MISSING, None)
    if isinstance(value, SigmaExists):
        if value.exists:
            return lambda doc: get(doc) not in (_MISSING, None)
        return lambda doc: get(doc) in (_MISSING, None)
    if isinstance(value, SigmaFieldReference):
        return _field_reference(get, getter(source.paths(value.field)), value)
    return _any(get, value_test(value))


def _field_reference(
    get: Callable[[Doc], Any], other: Callable[[Doc], Any], ref: SigmaFieldReference
) -> Predicate:
    def match(doc: Doc) -> bool:
        left, right = as_text(get(doc)), as_text(other(doc))
        if left is None or right is None:
            return False
        left, right = left.lower(), right.lower()
        if ref.starts_with:
            return left.startswith(right)
        if ref.ends_with:
            return left.endswith(right)
        return left == right

    return match


def _combine(preds: list[Predicate], *, every: bool) -> Predicate:
    """``and`` (every) or ``or`` of predicates, unrolled for the common one or two."""
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        first, second = preds
        if every:
            return lambda doc: first(doc) and second(doc)
        return lambda doc: first(doc) or second(doc)
    if every:

        def all_of(doc: Doc) -> bool:
            for pred in preds:  # noqa: SIM110 - all() would make a generator per call
                if not pred(doc):
                    return False
            return True

        return all_of

    def any_of(doc: Doc) -> bool:
        for pred in preds:  # noqa: SIM110 - any() would make a generator per call
            if pred(doc):
                return True
        return False

    return any_of


def compile_condition(node: ConditionItem | Any, source: Logsource) -> Predicate:
    """A predicate for one parsed and resolved Sigma condition tree."""
    if isinstance(node, ConditionAND):
        return _combine([compile_condition(arg, source) for arg in node.args], every=True)
    if isinstance(node, ConditionOR):
        merged, rest = _merge_strings(node.args, source)
        return _combine(merged + [compile_condition(arg, source) for arg in rest], every=False)
    if isinstance(node, ConditionNOT):
        inner = compile_condition(node.args[0], source)
        return lambda doc: not inner(doc)
    if isinstance(node, ConditionFieldEqualsValueExpression):
        return _field_expression(node, source)
    if isinstance(node, ConditionValueExpression):
        if isinstance(node.value, SigmaNull | SigmaExists | SigmaFieldReference):
            raise UnsupportedFeatureError(f"keyword of type {type(node.value).__name__}")
        value = node.value
        test = (
            _string_test(value, anchored=False)
            if isinstance(value, SigmaString)
            else value_test(value)
        )
        return _any(getter([(KEYWORD_FIELD,)]), test)
    raise UnsupportedFeatureError(f"condition element {type(node).__name__}")


def _string_alternative(node: Any) -> tuple[str | None, str] | None:
    """(field or None for a keyword, pattern) of a case-insensitive string test, else None."""
    value = getattr(node, "value", None)
    if (
        not isinstance(value, SigmaString)
        or isinstance(value, SigmaCasedString)
        or value.contains_placeholder()
    ):
        return None
    if isinstance(node, ConditionFieldEqualsValueExpression):
        return node.field, _pattern(value)
    if isinstance(node, ConditionValueExpression):
        return None, _pattern(value, trim=True)
    return None


def _merge_strings(args: list[Any], source: Logsource) -> tuple[list[Predicate], list[Any]]:
    """One regular expression for the string alternatives of one field in an ``or``.

    SigmaHQ's rules list dozens of values for one field (``Image|endswith``, shell
    keywords); one alternation searched in C beats one closure per value.
    """
    groups: dict[str | None, list[tuple[Any, str]]] = {}
    rest = []
    for arg in args:
        found = _string_alternative(arg)
        if found is None:
            rest.append(arg)
        else:
            groups.setdefault(found[0], []).append((arg, found[1]))
    merged: list[Predicate] = []
    for field, members in groups.items():
        if len(members) < MERGE_AT_LEAST:
            rest.extend(arg for arg, _ in members)
            continue
        patterns = [pattern for _, pattern in members]
        joined = "|".join(f"(?:{pattern})" for pattern in patterns)
        compiled = re.compile(joined, re.DOTALL | re.IGNORECASE)
        if field is None:  # keywords: anywhere in the message
            merged.append(_any(getter([(KEYWORD_FIELD,)]), _regex_test(compiled.search)))
        else:
            merged.append(_any(getter(source.paths(field)), _regex_test(compiled.fullmatch)))
    return merged, rest


def _regex_test(find: Callable[[str], re.Match[str] | None]) -> ValueTest:
    return _on_text(lambda text: find(text) is not None)


def literal_values(node: ConditionItem | Any, field: str) -> frozenset[str] | None:
    """Lower-cased literals ``field`` must equal for the tree to match, or None.

    The rule index uses it: a rule that can only match ``eventName`` in
    {StopLogging, DeleteTrail} is tried only on events with those names.
    """
    if isinstance(node, ConditionFieldEqualsValueExpression):
        value = node.value
        if (
            node.field == field
            and isinstance(value, SigmaString)
            and not value.contains_special()
            and not value.contains_placeholder()
        ):
            return frozenset([_plain(value).lower()])
        return None
    if isinstance(node, ConditionOR):
        found: set[str] = set()
        for arg in node.args:
            branch = literal_values(arg, field)
            if branch is None:
                return None
            found |= branch
        return frozenset(found)
    if isinstance(node, ConditionAND):
        for arg in node.args:
            branch = literal_values(arg, field)
            if branch is not None:
                return branch
    return None
