"""The literal texts a detection rule cannot match without: a filter in front of the rules.

SigmaHQ's linux rules have no ``eventName`` to be indexed by: over a hundred
``process_creation`` rules look at every execve event and the keyword rules at
every syslog message.  Nearly all of them need some literal text in some
field (``/bash`` in ``process.executable``, ``iptables`` in the message).
:func:`needles` finds, for one rule, a set of (field, text) pairs at least one
of which an event must hold for the rule to match; :class:`Prefilter` then
tries a rule only on the events that hold one of its needles, which for
benign activity is almost none.

The needles are necessary conditions, never sufficient: a rule they let through
is still matched in full, so they can only save work, not change a result.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Final

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionItem,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.types import SigmaExpansion, SigmaString

from daemon.logtypes import Logsource
from daemon.rules.compile import KEYWORD_FIELD, Doc, as_text, getter

Paths = tuple[tuple[str, ...], ...]
"""Where a rule's field lives in the document (the getter's paths)."""
Needle = tuple[Paths, str]
"""A field and a lower-cased ASCII text its value must contain."""

# What ``re.IGNORECASE`` takes for an ASCII letter but ``str.lower`` leaves alone:
# dotless i and long s.  (Kelvin sign and dotted capital I lower to text holding
# their ASCII letter already.)
_ASCII_FOLDS: Final = str.maketrans({"\u0131": "i", "\u017f": "s"})
_DATASET: Final[Paths] = (("event", "dataset"),)
_SEEN_MAX: Final = 65536
"""Texts of one field whose outcome is remembered at most (then forgotten all at once)."""


def fold(text: str) -> str:
    """Lower-cased so that any case-insensitive match of an ASCII needle is a substring."""
    lowered = text.lower()
    return lowered if lowered.isascii() else lowered.translate(_ASCII_FOLDS)


def needles(node: ConditionItem | Any, source: Logsource) -> frozenset[Needle] | None:
    """Needles one of which an event must hold for the condition tree to match, or None.

    ``and``: the needles of its most selective part (longest shortest needle);
    ``or``: the needles of all its parts, None when one part has none; ``not``,
    regular expressions, numbers, ``exists``, ``null`` and ``event.dataset``
    (which picked the events the rule is tried on already): None.
    """
    if isinstance(node, ConditionAND):
        found = [part for arg in node.args if (part := needles(arg, source)) is not None]
        return max(found, key=_selectivity, default=None)
    if isinstance(node, ConditionOR):
        return _union(needles(arg, source) for arg in node.args)
    if isinstance(node, ConditionFieldEqualsValueExpression):
        paths = tuple(source.paths(node.field))
        # Every event the rule is tried on has one of its datasets: no filter there.
        return None if paths == _DATASET else _value_needles(paths, node.value)
    if isinstance(node, ConditionValueExpression):
        return _value_needles(((KEYWORD_FIELD,),), node.value)
    return None


def _union(parts: Iterable[frozenset[Needle] | None]) -> frozenset[Needle] | None:
    """The needles of alternatives: all of theirs, None when one alternative has none."""
    union: set[Needle] = set()
    for part in parts:
        if part is None:
            return None
        union |= part
    return frozenset(union)


def _selectivity(found: frozenset[Needle]) -> tuple[int, int]:
    return min(len(text) for _, text in found), -len(found)


def _value_needles(paths: Paths, value: Any) -> frozenset[Needle] | None:
    if isinstance(value, SigmaExpansion):
        return _union(_value_needles(paths, item) for item in value.values)
    if not isinstance(value, SigmaString) or value.contains_placeholder():
        return None
    texts = [fold(part) for part in value.s if isinstance(part, str) and part.isascii()]
    longest = max(texts, key=len, default="")
    return frozenset([(paths, longest)]) if longest else None


def _texts(value: Any) -> Iterable[str]:
    """The texts a field's value compares as (each element of a list)."""
    if isinstance(value, list):
        return [text for item in value if (text := as_text(item)) is not None]
    text = as_text(value)
    return () if text is None else (text,)


_Field = tuple[Callable[[Doc], Any], dict[str, list[int]], dict[str, tuple[int, ...]]]
"""A field's getter, its needles' rules by text, and what each text seen let through."""


class Prefilter:
    """Rules (by position) behind their needles, grouped by field.

    What a field's text lets through is remembered: audit logs repeat the same
    executables, event sources, error codes and program messages, so most
    texts are looked up, not searched for every needle again.
    """

    def __init__(self) -> None:
        self._fields: dict[Paths, _Field] = {}

    def add(self, position: int, found: frozenset[Needle]) -> None:
        for paths, text in found:
            _, by_text, _ = self._fields.setdefault(paths, (getter(list(paths)), {}, {}))
            by_text.setdefault(text, []).append(position)
        for _, _, seen in self._fields.values():
            seen.clear()

    def candidates(self, doc: Doc) -> set[int]:
        """The positions of the rules one of whose needles the document holds."""
        found: set[int] = set()
        for get, by_text, seen in self._fields.values():
            value = get(doc)
            for text in (value,) if type(value) is str else _texts(value):
                passed = seen.get(text)
                if passed is None:
                    folded = fold(text)
                    passed = tuple(
                        position
                        for needle, positions in by_text.items()
                        if needle in folded
                        for position in positions
                    )
                    if len(seen) >= _SEEN_MAX:
                        seen.clear()
                    seen[text] = passed
                if passed:
                    found.update(passed)
        return found
