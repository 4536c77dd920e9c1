"""Which change records cover an event, and when none does, which came closest and why.

A record covers an event when it authorizes work (approved, implementing,
completed), the event's person is one of its implementers, the event lies in
its window, and the event's host, account, region, resources and action are
in its scope.  An empty scope axis (or no implementers) means no restriction;
an axis the event does not tell (a CloudTrail call has no host, an sshd
login no account) does not count against a record.

Usage, for a rule or the CLI::

    book = ChangeBook.from_json(store.change_records(since=t - day, until=t + day), identities)
    verdict = coverage(event_doc, book)
    if not verdict.covered:
        print([miss.describe() for miss in verdict.nearest])
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any

from connectors.contracts.change_record import CLOUD_AXES, ChangeRecord
from daemon import logtypes
from daemon.changes.book import ChangeBook
from daemon.logtypes import Resource
from daemon.model import parse_timestamp

JSON = dict[str, Any]

NEAREST_HORIZON = timedelta(days=7)
"""Records whose window is further from the event than this are not "near"."""
NEAREST_CANDIDATES = 20
"""Records nearest in time that are weighed for the nearest-records answer."""


@dataclass(frozen=True, slots=True)
class Facts:
    """What an event says about each axis; None (or empty) where it does not tell."""

    time: datetime
    people: tuple[str, ...] = ()
    """The resolved person id first, then the account names seen."""
    host: str | None = None
    account: str | None = None
    region: str | None = None
    resources: tuple[Resource, ...] = ()
    action: str | None = None
    cloud: tuple[tuple[str, str | None], ...] = ()
    """The cloud scope axes of the event's log type with the event's value on each
    (``("aws_accounts", "111122223333")``); empty for a host event."""


@dataclass(frozen=True, slots=True)
class Miss:
    """A record that does not cover the event, with every reason why."""

    record: ChangeRecord
    reasons: tuple[str, ...]

    def describe(self) -> str:
        return f"{self.record.id}: {'; '.join(self.reasons)}"


@dataclass(frozen=True, slots=True)
class Verdict:
    covered_by: tuple[ChangeRecord, ...] = ()
    nearest: tuple[Miss, ...] = ()
    """When nothing covers: the closest records, fewest reasons first."""
    facts: Facts | None = field(default=None, compare=False)

    @property
    def covered(self) -> bool:
        return bool(self.covered_by)

    def to_json(self) -> JSON:
        return {
            "covered": self.covered,
            "covered_by": [r.id for r in self.covered_by],
            "nearest": [{"id": m.record.id, "reasons": list(m.reasons)} for m in self.nearest],
        }


def coverage(event_doc: Mapping[str, Any], book: ChangeBook, *, nearest: int = 3) -> Verdict:
    """The records of ``book`` that cover the ECS document ``event_doc``.

    When none does, ``nearest`` holds up to ``nearest`` records whose window
    lies within a week of the event, each with the reasons it does not cover:
    of the records holding the event's time and the 20 others closest in time,
    those with the fewest reasons, then the closest.
    """
    return judge(facts_of(event_doc, book), book, nearest=nearest)


def judge(facts: Facts, book: ChangeBook, *, nearest: int = 3) -> Verdict:
    """:func:`coverage` for facts already taken from an event (where it was decoded)."""
    covering: list[ChangeRecord] = []
    misses: list[tuple[int, float, Miss]] = []
    for record in book.near(facts.time, NEAREST_HORIZON, NEAREST_CANDIDATES):
        found = reasons(record, facts, book)
        if not found:
            covering.append(record)
        else:
            distance = _distance(record, facts.time).total_seconds()
            misses.append((len(found), distance, Miss(record, tuple(found))))
    if covering:
        return Verdict(tuple(covering), (), facts)
    misses.sort(key=lambda item: (item[0], item[1], item[2].record.id))
    return Verdict((), tuple(m for _, _, m in misses[:nearest]), facts)


def covered_by(facts: Facts, book: ChangeBook) -> list[ChangeRecord]:
    """The records covering an event, without :func:`judge`'s nearest misses: only a
    record whose window holds the event can cover it, so only those are weighed."""
    return [
        record
        for record in book.near(facts.time, timedelta(0), 1)
        if record.start <= facts.time <= record.end and not reasons(record, facts, book)
    ]


# -- the axes ------------------------------------------------------------------


def reasons(record: ChangeRecord, facts: Facts, book: ChangeBook) -> list[str]:
    """Every reason ``record`` does not cover an event with ``facts``; none: it covers it."""
    found = []
    if not record.authorizes:
        found.append(f"state is {record.state}")
    if facts.time < record.start:
        found.append(f"window opens {_span(record.start - facts.time)} after")
    elif facts.time > record.end:
        found.append(f"window ended {_span(facts.time - record.end)} before")
    if record.implementers and facts.people and not _implements(record, facts, book):
        who = facts.people[0]
        found.append(f"{who} is not an implementer ({', '.join(record.implementers)})")
    return found + scope_reasons(record, facts)


def scope_reasons(record: ChangeRecord, facts: Facts) -> list[str]:
    """The axes of ``record``'s scope that an event with ``facts`` lies outside of."""
    found = []
    scope = record.scope
    if scope.hosts and facts.host and not _any(facts.host, scope.hosts):
        found.append(f"host {facts.host} not in scope")
    found.extend(_cloud_reasons(record, facts))
    if scope.resources:
        outside = [r for r in facts.resources if not any(r.matches(p) for p in scope.resources)]
        if outside:
            found.append(f"resource {outside[0].arn or outside[0].id} not in scope")
    if scope.actions and facts.action and not _any(facts.action, scope.actions):
        found.append(f"action {facts.action} not in scope")
    return found


def touches(record: ChangeRecord, facts: Facts) -> bool:
    """The event lies in ``record``'s scope and names at least one of its axes.

    Unlike coverage, an axis the event does not tell proves nothing here: a
    CloudTrail call touches no host-only scope, and an empty scope is touched
    by nothing.
    """
    scope = record.scope
    told = (
        (scope.hosts and facts.host)
        or any(scope.axis(axis) and value for axis, value in facts.cloud)
        or (scope.resources and facts.resources)
        or (scope.actions and facts.action)
    )
    return bool(told) and not scope_reasons(record, facts)


def _cloud_reasons(record: ChangeRecord, facts: Facts) -> list[str]:
    """A cloud event lies outside a cloud axis of another cloud (an AWS account scope
    covers no GCP project); a value the event does not tell does not count."""
    if not facts.cloud:
        return []
    told = dict(facts.cloud)
    found = []
    for axis in CLOUD_AXES:
        patterns = record.scope.axis(axis)
        if not patterns:
            continue
        noun = axis.partition("_")[2].removesuffix("s")
        if axis not in told:
            found.append(f"{noun}s of another cloud")
        elif (value := told[axis]) and not _any(value, patterns):
            found.append(f"{noun} {value} not in scope")
    return found


def _any(value: str, patterns: tuple[str, ...]) -> bool:
    value = value.lower()
    return any(fnmatchcase(value, pattern.lower()) for pattern in patterns)


def _implements(record: ChangeRecord, facts: Facts, book: ChangeBook) -> bool:
    """An implementer names the event's person: as person id, account name or group."""
    names = {name.lower() for name in facts.people}
    actor = facts.people[0] if facts.people else None
    identities = book.identities
    for implementer in record.implementers:
        if implementer.lower() in names:
            return True
        if actor is not None:
            if implementer in identities.groups_of(actor):
                return True
            if any(person.id == actor for person in identities.lookup(implementer)):
                return True
    return False


def _distance(record: ChangeRecord, moment: datetime) -> timedelta:
    if moment < record.start:
        return record.start - moment
    if moment > record.end:
        return moment - record.end
    return timedelta(0)


def _span(delta: timedelta) -> str:
    minutes = round(delta.total_seconds() / 60)
    if minutes < 1:
        return "less than a minute"
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{round(hours / 24)} days"


# -- what an event tells ---------------------------------------------------------


def facts_of(doc: Mapping[str, Any], book: ChangeBook | None = None) -> Facts:
    """The coverage axes of an ECS document, as its log type tells them."""
    user = logtypes.child(doc, "user")
    actor = doc.get("actor")
    if not isinstance(actor, str) and book is not None:
        actor = book.identities.actor_of_document(doc)
    people = [p for p in (actor, user.get("name")) if isinstance(p, str) and p]
    log_type = logtypes.of_document(doc)
    if log_type is None:
        action = logtypes.child(doc, "event").get("action")
        return Facts(
            time=parse_timestamp(str(doc["@timestamp"])),
            people=tuple(dict.fromkeys(people)),
            host=logtypes.child(doc, "host").get("name"),
            action=action if isinstance(action, str) else None,
        )
    return Facts(
        time=parse_timestamp(str(doc["@timestamp"])),
        people=tuple(dict.fromkeys(people)),
        host=logtypes.child(doc, "host").get("name"),
        account=_value(doc, log_type.account),
        region=_value(doc, "cloud.region"),
        resources=tuple(log_type.resources(doc)),
        action=log_type.change_action(doc),
        cloud=tuple((axis, _value(doc, path)) for axis, path in log_type.scope.items()),
    )


def _value(doc: Mapping[str, Any], path: str | None) -> str | None:
    """The string at a dotted ECS path of a document."""
    if path is None:
        return None
    *parents, leaf = path.split(".")
    node = doc
    for part in parents:
        node = logtypes.child(node, part)
    found = node.get(leaf)
    return found if isinstance(found, str) else None
