"""Per-source ``keep`` and ``drop``: the timeline's search syntax, applied before the store.

An expression is what a person types in the timeline's search box (``auditcorr
timeline`` and the web page): whitespace-separated terms, all of which must hold.

``field:value``
    An exact field value, as the timeline's filters match it: ``action:GetObject``,
    ``dataset:aws.cloudtrail``, ``host:web01``; ``process:CRON`` matches
    ``process.name``.
``word``
    A word of the event's searchable text, as the full-text search finds it: folded
    case, a word of several tokens is a phrase of them, a trailing ``*`` a prefix.
``-term``
    The term must not hold (``-user:backup``, ``-sshd``).

The decode workers evaluate compiled expressions on each normalized event, so a
dropped record is never encoded, stored or indexed (daemon/process.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from daemon import logtypes
from daemon.model import AuditEvent
from daemon.store.text import TAG_FIELDS, query_words, search_text, tag_values, tokens

FIELDS: tuple[str, ...] = (*TAG_FIELDS, "process")
"""Field names an expression may use: the timeline's filters and ``process``."""

DROPPED_KEY = "@dropped:"
"""Checkpoint key prefix (then the daemon's member name) of a source's running tally
of records its filters dropped, committed with the batches that dropped them, so
``auditcorr sources`` shows it beside a running daemon and after a restart."""

_FIELD_TERM = re.compile(r"^([a-z_]+):(.+)$")


class FilterSyntaxError(ValueError):
    """An expression that cannot be compiled; the message says which term and why."""


@dataclass(frozen=True, slots=True)
class Term:
    """One condition: a field's exact value, or a phrase of the searchable text."""

    negated: bool
    field: str | None
    """None for a word of the searchable text."""
    value: str = ""
    phrase: tuple[str, ...] = ()
    prefix: bool = False


@dataclass(frozen=True, slots=True)
class Expression:
    """Terms that must all hold on one event."""

    text: str
    terms: tuple[Term, ...]

    def positive(self, field: str) -> list[str]:
        """Values this expression asks ``field`` to have (terms without ``-``)."""
        return [t.value for t in self.terms if t.field == field and not t.negated]


def parse(text: str) -> Expression:
    """Compile one expression; raises FilterSyntaxError naming the bad term."""
    terms: list[Term] = []
    for part in text.split():
        negated = part.startswith("-") and len(part) > 1
        body = part[1:] if negated else part
        found = _FIELD_TERM.match(body)
        if found is not None:
            name, value = found.groups()
            if name not in FIELDS:
                raise FilterSyntaxError(
                    f"unknown field {name!r} in {part!r} (fields: {', '.join(FIELDS)})"
                )
            terms.append(Term(negated, name, value))
            continue
        ((literal, prefix),) = query_words(body) or [("", False)]
        phrase = tuple(tokens(literal))
        if not phrase:
            raise FilterSyntaxError(f"{part!r} holds no word to search for")
        terms.append(Term(negated, None, phrase=phrase, prefix=prefix))
    if not terms:
        raise FilterSyntaxError("empty expression: it would match every event")
    return Expression(text, tuple(terms))


def _field_values(event: AuditEvent, source: str) -> dict[str, str | None]:
    values = dict(tag_values(event, source))
    process = event.fields.get("process.name")
    values["process"] = process if isinstance(process, str) else None
    return values


def _has_phrase(words: Sequence[str], term: Term) -> bool:
    size = len(term.phrase)
    last = size - 1
    for start in range(len(words) - last):
        window = words[start : start + size]
        if window[:last] == list(term.phrase[:last]) and (
            window[last].startswith(term.phrase[last])
            if term.prefix
            else window[last] == term.phrase[last]
        ):
            return True
    return False


class _Seen:
    """One event as expressions look at it: field values, and its words only when an
    expression asks (building the searchable text is the costly part)."""

    __slots__ = ("_event", "_words", "values")

    def __init__(self, values: Mapping[str, str | None], event: AuditEvent | None) -> None:
        self._event = event
        self._words: list[str] | None = None
        self.values = values

    @property
    def words(self) -> list[str]:
        if self._words is None:
            event = self._event
            self._words = (
                [] if event is None else tokens(search_text(event, logtypes.index_words(event)))
            )
        return self._words

    def holds(self, expression: Expression) -> bool:
        for term in expression.terms:
            if term.field is not None:
                found = self.values[term.field] == term.value
            else:
                found = _has_phrase(self.words, term)
            if found == term.negated:
                return False
        return True


def matches(expression: Expression, event: AuditEvent, source: str) -> bool:
    """Whether every term of ``expression`` holds on ``event`` read by ``source``."""
    return _Seen(_field_values(event, source), event).holds(expression)


@dataclass(frozen=True, slots=True)
class SourceFilters:
    """A source's ``keep`` and ``drop`` lists, compiled."""

    keep: tuple[Expression, ...]
    drop: tuple[Expression, ...]

    def verdict(self, event: AuditEvent, source: str) -> str | None:
        """None to store the event; else the name of the filter that drops it
        (``keep`` when it matches no keep expression, ``drop[i]`` for the first drop
        expression it matches), which the counters on /metrics carry."""
        return self._judge(_Seen(_field_values(event, source), event))

    def decided_by(self, fields: Iterable[str]) -> bool:
        """Whether every expression reads only these fields (no words): then
        ``raw_verdict`` decides on values read before normalizing."""
        known = set(fields)
        return all(
            term.field is not None and term.field in known
            for expression in (*self.keep, *self.drop)
            for term in expression.terms
        )

    def raw_verdict(self, values: Mapping[str, str | None]) -> str | None:
        """The verdict on field values read from the raw record (see ``decided_by``)."""
        return self._judge(_Seen(values, None))

    def _judge(self, seen: _Seen) -> str | None:
        if self.keep and not any(seen.holds(e) for e in self.keep):
            return "keep"
        for index, expression in enumerate(self.drop):
            if seen.holds(expression):
                return f"drop[{index}]"
        return None


@lru_cache(maxsize=256)
def compiled(keep: tuple[str, ...], drop: tuple[str, ...]) -> SourceFilters | None:
    """The filters of one source, compiled once per worker; None when it has none."""
    if not keep and not drop:
        return None
    return SourceFilters(tuple(map(parse, keep)), tuple(map(parse, drop)))


def problems(keep: Sequence[str], drop: Sequence[str]) -> list[tuple[str, str]]:
    """(key, message) for each expression that does not compile, keyed ``drop[1]``."""
    found = []
    for name, texts in (("keep", keep), ("drop", drop)):
        for index, text in enumerate(texts):
            try:
                parse(text)
            except FilterSyntaxError as err:
                found.append((f"{name}[{index}]", str(err)))
    return found
