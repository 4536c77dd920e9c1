"""The post-implementation review of a change record: what its implementers did in
its window, what of it was in scope, and what touched its scope outside the window.

The coverage query asks "which record approved this event?"; a review asks the
other way round, for the change board and the auditors.  It reads the store
through its ordinary read methods (``page``, ``change_records``) and judges each
event with the coverage query's own reasons, so a review and an
``unapproved_change`` alert never disagree about one event.

Only change-class events count (``logtypes.is_change``): reads change nothing a
review is about.

Usage::

    book = book_for(store, record.start, record.end, identities)
    print(review(store, record, book, now=datetime.now(UTC)).verdict)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from itertools import product
from math import prod
from typing import Any, Literal, Protocol

from connectors.contracts.change_record import CLOUD_AXES, SCOPE_AXES, ChangeRecord, Scope
from daemon import logtypes
from daemon.changes.book import ChangeBook
from daemon.changes.coverage import (
    NEAREST_HORIZON,
    Facts,
    covered_by,
    facts_of,
    reasons,
    touches,
)
from daemon.gcpause import cyclic_gc_paused
from daemon.identity import IdentityMap, Person
from daemon.model import format_timestamp
from daemon.store.base import EventQuery, Found

JSON = dict[str, Any]
Verdict = Literal["clean", "scope_creep", "outside_window", "not_executed", "in_progress"]
VERDICTS: tuple[Verdict, ...] = (
    "clean",
    "scope_creep",
    "outside_window",
    "not_executed",
    "in_progress",
)

MARGIN = timedelta(hours=4)
"""How far before a window opens and after it closes a review looks for work on its scope:
early starts and overruns.  Work further away is no part of this change; when no record
covers it, it is an ``unapproved_change`` alert of its own."""
SETTLE = timedelta(minutes=20)
"""A window is reviewed as over this long after it closed: CloudTrail delivers 5-15 min
late (the default ``[rules] allowed_lateness``)."""
MAX_EVENTS = 5000
"""Events kept per list of a review; beyond it the review says it was cut short."""
_PAGE = 1000
MAX_PROBES = 16
"""Most store filters one look at a scope outside the window makes."""


class Reader(Protocol):
    """The store reads a review needs (every store has them)."""

    def page(self, query: EventQuery) -> list[Found]: ...

    def change_records(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> list[JSON]: ...


@dataclass(frozen=True, slots=True)
class Implementer:
    """A name from a record's implementers and the people it means in the identity map."""

    name: str
    people: tuple[Person, ...]

    def to_json(self) -> JSON:
        return {"name": self.name, "people": [_person(p) for p in self.people]}


@dataclass(frozen=True, slots=True)
class Seen:
    """One event of a review and what it means for the record."""

    found: Found
    facts: Facts
    reasons: tuple[str, ...] = ()
    """Inside the window: why the event is out of the record's scope (none: in scope)."""
    covered_by: tuple[str, ...] = ()
    """Outside the window: the records that cover the event (none: nothing does)."""

    @property
    def in_scope(self) -> bool:
        return not self.reasons

    def to_json(self, record: ChangeRecord) -> JSON:
        doc = self.found.document
        event = doc.get("event") or {}
        out: JSON = {
            "key": str(self.found.key),
            "id": event.get("id"),
            "@timestamp": format_timestamp(self.facts.time),
            "dataset": event.get("dataset"),
            "person": self.facts.people[0] if self.facts.people else None,
            "action": self.facts.action or event.get("action"),
            "host": self.facts.host,
            "account": self.facts.account,
            "region": self.facts.region,
            "message": doc.get("message"),
        }
        if self.facts.time < record.start or self.facts.time > record.end:
            out["when"] = "before" if self.facts.time < record.start else "after"
            out["covered_by"] = list(self.covered_by)
        else:
            out["in_scope"] = self.in_scope
            out["reasons"] = list(self.reasons)
        return out


@dataclass(frozen=True, slots=True)
class Review:
    record: ChangeRecord
    verdict: Verdict
    as_of: datetime
    implementers: tuple[Implementer, ...]
    inside: tuple[Seen, ...]
    """The implementers' change-class events in the window, oldest first (without
    implementers: anyone's that touch the scope)."""
    outside: tuple[Seen, ...]
    """Anyone's change-class events on the record's scope within ``MARGIN`` of the window."""
    truncated: bool = False

    def counts(self) -> dict[str, int]:
        in_scope = sum(1 for seen in self.inside if seen.in_scope)
        covered = sum(1 for seen in self.outside if seen.covered_by)
        return {
            "in_scope": in_scope,
            "out_of_scope": len(self.inside) - in_scope,
            "outside_window": len(self.outside) - covered,
            "outside_covered": covered,
        }

    def to_json(self) -> JSON:
        return {
            "change": self.record.to_json(),
            "verdict": self.verdict,
            "as_of": format_timestamp(self.as_of),
            "implementers": [i.to_json() for i in self.implementers],
            "counts": self.counts(),
            "inside": [seen.to_json(self.record) for seen in self.inside],
            "outside": [seen.to_json(self.record) for seen in self.outside],
            "truncated": self.truncated,
        }


def book_for(
    reader: Reader, since: datetime, until: datetime, identities: IdentityMap | None
) -> ChangeBook:
    """The records a review of windows within ``since..until`` weighs for coverage:
    everything near enough to cover work done up to ``MARGIN`` outside them."""
    reach = MARGIN + NEAREST_HORIZON
    records = reader.change_records(since=since - reach, until=until + reach)
    return ChangeBook.from_json(records, identities)


def review(
    reader: Reader,
    record: ChangeRecord,
    book: ChangeBook,
    *,
    now: datetime,
    settle: timedelta = SETTLE,
) -> Review:
    """Review ``record`` as of ``now``; ``book`` holds the records near its window
    (:func:`book_for`) and the identity map that resolves its implementers."""
    implementers = tuple(_resolve(name, book) for name in record.implementers)
    inside, cut_inside = _inside(reader, record, implementers, book)
    outside, cut_outside = _outside(reader, record, book)
    return Review(
        record=record,
        verdict=verdict_of(record, inside, outside, now=now, settle=settle),
        as_of=now,
        implementers=implementers,
        inside=inside,
        outside=outside,
        truncated=cut_inside or cut_outside,
    )


def reviews(
    reader: Reader,
    records: list[ChangeRecord],
    identities: IdentityMap | None,
    *,
    now: datetime,
) -> list[Review]:
    """The reviews of many records (a period report), weighed against one book.

    The cyclic collector is paused meanwhile: the reviews kept hold thousands of
    event documents (which hold no cycles), and every collection would walk them all.
    """
    if not records:
        return []
    since, until = min(r.start for r in records), max(r.end for r in records)
    book = book_for(reader, since, until, identities)
    with cyclic_gc_paused():
        return [review(reader, record, book, now=now) for record in records]


def verdict_of(
    record: ChangeRecord,
    inside: tuple[Seen, ...],
    outside: tuple[Seen, ...],
    *,
    now: datetime,
    settle: timedelta = SETTLE,
) -> Verdict:
    """The worst finding first: work out of scope, then uncovered work on the scope
    outside the window, then an approved change nobody carried out."""
    if now < record.end + settle:
        return "in_progress"
    if any(not seen.in_scope for seen in inside):
        return "scope_creep"
    if any(not seen.covered_by for seen in outside):
        return "outside_window"
    if record.authorizes and not inside:
        return "not_executed"
    return "clean"


# -- the implementers' work in the window ------------------------------------------


def _resolve(name: str, book: ChangeBook) -> Implementer:
    """A person id, any account or principal of a person, or a group of people."""
    identities = book.identities
    people = list(identities.lookup(name))
    people += [p for p in identities.people if name in p.groups and p not in people]
    return Implementer(name, tuple(people))


def _inside(
    reader: Reader, record: ChangeRecord, implementers: tuple[Implementer, ...], book: ChangeBook
) -> tuple[tuple[Seen, ...], bool]:
    """The implementers' changes in the window; for a record that names no implementers
    (anyone may carry it out), anyone's changes that touch its scope."""
    probes: list[EventQuery] = []
    for implementer in implementers:
        if implementer.people:
            probes += [EventQuery(actor=person.id) for person in implementer.people]
        else:  # nobody in the identity map: the name is an account as events spell it
            probes.append(EventQuery(user=implementer.name))
    if not record.implementers:
        scoped = scope_probes(record)
        probes = [EventQuery()] if scoped is None else scoped
    found, cut = _collect(reader, probes, [(record.start, record.end)])
    seen = []
    for item in found:
        facts = facts_of(item.document, book)
        if record.implementers or touches(record, facts):
            seen.append(Seen(item, facts, reasons=tuple(reasons(record, facts, book))))
    return tuple(seen), cut


# -- work on the scope outside the window --------------------------------------------


def _outside(
    reader: Reader, record: ChangeRecord, book: ChangeBook
) -> tuple[tuple[Seen, ...], bool]:
    probes = scope_probes(record)
    if probes is not None and not probes:
        return (), False  # an empty scope: nothing to touch
    tick = timedelta(microseconds=1)
    spans = [(record.start - MARGIN, record.start - tick), (record.end + tick, record.end + MARGIN)]
    found, cut = _collect(reader, probes or [EventQuery()], spans)
    seen = []
    for item in found:
        facts = facts_of(item.document, book)
        if record.start <= facts.time <= record.end or not touches(record, facts):
            continue
        covering = covered_by(facts, book)
        seen.append(Seen(item, facts, covered_by=tuple(r.id for r in covering)))
    return tuple(seen), cut


_GLOB = frozenset("*?[")


def scope_probes(record: ChangeRecord) -> list[EventQuery] | None:
    """Store filters whose union holds every event that can touch the record's scope.

    Each axis the index knows exactly (actions as event actions, hosts, accounts,
    regions, without globs) narrows the filters, all of them together while their
    combinations stay few (``MAX_PROBES``; regions, then accounts, then hosts are
    left out first).  None when no axis can be told to the index (globs only), ``[]``
    for an empty scope.
    """
    scope = record.scope
    if not any(scope.axis(axis) for axis in SCOPE_AXES):
        return []
    axes = [
        ("action", _event_actions(scope.actions)),
        ("host", _exact(scope.hosts)),
        *_cloud_probes(scope),
    ]
    known = [(name, values) for name, values in axes if values]
    while known and prod(len(values) for _, values in known) > MAX_PROBES:
        known.pop()
    if not known:
        return None
    names = [name for name, _ in known]
    return [
        _probe(dict(zip(names, combination, strict=True)))
        for combination in product(*(values for _, values in known))
    ]


_INDEXED = {"cloud.account.id": "account", "cloud.region": "region"}
"""ECS paths of cloud scope axes that the index holds as a filter."""


def _cloud_probes(scope: Scope) -> list[tuple[str, list[str] | None]]:
    """The index filters of the record's cloud axes: none unless every one it sets is
    indexed, since a probe on one cloud's accounts would miss another cloud's events."""
    paths = logtypes.scope_axes()
    found: dict[str, list[str]] = {}
    for axis in CLOUD_AXES:
        values = scope.axis(axis)
        if not values:
            continue
        name = _INDEXED.get(paths.get(axis, ""))
        exact = _exact(values)
        if name is None or exact is None:
            return []
        found.setdefault(name, []).extend(exact)
    return [(name, found.get(name)) for name in ("account", "region")]


def _probe(values: dict[str, str]) -> EventQuery:
    return EventQuery(
        action=values.get("action"),
        host=values.get("host"),
        account=values.get("account"),
        region=values.get("region"),
    )


def _exact(values: tuple[str, ...]) -> list[str] | None:
    if not values or any(_GLOB & set(value) for value in values):
        return None
    return list(values)


def _event_actions(patterns: tuple[str, ...]) -> list[str] | None:
    """The ``event.action`` values scope actions mean, or None when one is a glob the
    index cannot list (``ec2:*``)."""
    found: list[str] = []
    kinds = logtypes.action_kinds()
    for pattern in patterns:
        kind, colon, name = pattern.partition(":")
        if colon and kind.lower() in kinds:
            found += kinds[kind.lower()]
        elif colon and not _GLOB & set(name):
            found.append(name)  # a cloud call: the service, then the action
        elif not colon and not _GLOB & set(pattern):
            found.append(pattern)
        else:
            return None
    return list(dict.fromkeys(found)) if found else None


# -- reading ------------------------------------------------------------------------


def _collect(
    reader: Reader, probes: list[EventQuery], spans: list[tuple[datetime, datetime]]
) -> tuple[list[Found], bool]:
    """Change-class events of any probe in any of the ``(since, until)`` spans, once each,
    oldest first."""
    found: dict[int, Found] = {}
    cut = False
    for probe, (since, until) in product(probes, spans):
        for item in _pages(reader, replace(probe, since=since, until=until)):
            if logtypes.is_change(item.document):
                found[item.key] = item
                if len(found) > MAX_EVENTS:
                    cut = True
                    break
    events = sorted(found.values(), key=lambda item: item.key)[:MAX_EVENTS]
    return events, cut


def _pages(reader: Reader, query: EventQuery) -> Iterator[Found]:
    after = None
    while True:
        page = reader.page(replace(query, limit=_PAGE, order="oldest", after=after))
        yield from page
        if len(page) < _PAGE:
            return
        after = page[-1].key


def _person(person: Person) -> JSON:
    accounts = [u.name for u in person.unix] + list(person.aws) + list(person.emails)
    return {"id": person.id, "name": person.name, "accounts": list(dict.fromkeys(accounts))}
