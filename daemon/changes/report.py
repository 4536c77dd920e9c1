"""Change records, coverage verdicts, reviews and people as the CLI prints them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta, tzinfo
from typing import Any

from connectors.contracts.change_record import SCOPE_AXES, ChangeRecord
from daemon.changes.coverage import Verdict
from daemon.changes.review import MARGIN, MAX_EVENTS, VERDICTS, Review, Seen
from daemon.identity import Person


def _local(moment: datetime, zone: tzinfo) -> str:
    return f"{moment.astimezone(zone):%Y-%m-%d %H:%M}"


def record_lines(records: Iterable[ChangeRecord], zone: tzinfo) -> list[str]:
    """One line per record: id, state, window, implementers, title."""
    lines = [f"{'id':14}  {'state':12}  {'window':33}  {'implementers':20}  title"]
    for record in records:
        window = f"{_local(record.start, zone)} - {_local(record.end, zone)[-5:]}"
        if record.end.astimezone(zone).date() != record.start.astimezone(zone).date():
            window = f"{_local(record.start, zone)} - {_local(record.end, zone)}"
        people = ", ".join(record.implementers) or "-"
        lines.append(
            f"{record.id[:14]:14}  {record.state:12}  {window:33}  {people[:20]:20}  {record.title}"
        )
    return lines


def scope_lines(record: ChangeRecord) -> list[str]:
    scope = record.scope
    return [f"    {axis}: {', '.join(scope.axis(axis))}" for axis in SCOPE_AXES if scope.axis(axis)]


def verdict_lines(event_doc: dict[str, Any], verdict: Verdict, zone: tzinfo) -> list[str]:
    event = event_doc.get("event", {})
    facts = verdict.facts
    lines = [f"event {event.get('id')}: {event_doc.get('message') or event.get('action')}"]
    if facts is not None:
        told = {
            "time": _local(facts.time, zone),
            "person": ", ".join(facts.people) or None,
            "host": facts.host,
            "account": facts.account,
            "region": facts.region,
            "resources": ", ".join(r.arn or r.id for r in facts.resources) or None,
            "action": facts.action,
        }
        lines.extend(f"  {name}: {value}" for name, value in told.items() if value)
    if verdict.covered:
        lines.append("covered by: " + ", ".join(r.id for r in verdict.covered_by))
        return lines
    lines.append("NOT covered by any change record")
    if verdict.nearest:
        lines.append("nearest records:")
        lines.extend(f"  {miss.describe()}" for miss in verdict.nearest)
    else:
        lines.append("no change record has a window within a week of it")
    return lines


def person_lines(person: Person) -> list[str]:
    lines = [f"{person.id}" + (f" ({person.name})" if person.name else "")]
    if person.emails:
        lines.append(f"  email: {', '.join(person.emails)}")
    for account in person.unix:
        hosts = f" on {', '.join(account.hosts)}" if account.hosts else " on every host"
        lines.append(f"  unix: {account.name}{hosts}")
    if person.aws:
        lines.append(f"  aws: {', '.join(person.aws)}")
    if person.groups:
        lines.append(f"  groups: {', '.join(person.groups)}")
    return lines


def review_lines(review: Review, zone: tzinfo) -> list[str]:
    """A review as the change board reads it: the record, the verdict, then each event."""
    record = review.record
    counts = review.counts()
    lines = [f"{record.id} {record.state}: {record.title}"]
    window = f"{_local(record.start, zone)} - {_local(record.end, zone)}"
    lines.append(f"  window: {window} ({zone})")
    for implementer in review.implementers:
        people = "; ".join(_who(person) for person in implementer.people) or "nobody in the map"
        lines.append(f"  implementer {implementer.name}: {people}")
    lines.append("  scope:")
    lines.extend("  " + line for line in scope_lines(record))
    lines.append(
        f"verdict: {review.verdict} ({counts['in_scope']} in scope, {counts['out_of_scope']}"
        f" out of scope, {counts['outside_window']} outside the window uncovered)"
    )
    lines.append("in the window, by the implementers:")
    lines.extend(_seen_line(seen, zone, _scope_note(seen)) for seen in review.inside)
    if not review.inside:
        lines.append("  nothing")
    lines.append(f"on its scope outside the window (within {_hours(MARGIN)} h), by anyone:")
    for seen in review.outside:
        where = "before" if seen.facts.time < record.start else "after"
        covered = f"covered by {', '.join(seen.covered_by)}" if seen.covered_by else "NOT COVERED"
        lines.append(_seen_line(seen, zone, f"{where}, {covered}"))
    if not review.outside:
        lines.append("  nothing")
    if review.truncated:
        lines.append(f"(cut short at {MAX_EVENTS} events per list)")
    return lines


def _who(person: Person) -> str:
    accounts = [u.name for u in person.unix] + list(person.aws) + list(person.emails)
    named = f"{person.id} ({person.name})" if person.name else person.id
    return f"{named}: {', '.join(dict.fromkeys(accounts))}" if accounts else named


def _scope_note(seen: Seen) -> str:
    return "in scope" if seen.in_scope else "OUT OF SCOPE: " + "; ".join(seen.reasons)


def _seen_line(seen: Seen, zone: tzinfo, note: str) -> str:
    facts = seen.facts
    who = facts.people[0] if facts.people else "-"
    where = facts.host or "/".join(filter(None, (facts.account, facts.region))) or "-"
    action = facts.action or "-"
    return f"  {_local(facts.time, zone)}  {who:10}  {action:28}  {where:27}  {note}"


def _hours(delta: timedelta) -> int:
    return int(delta.total_seconds() // 3600)


PERIOD_COLUMNS = (
    "id",
    "state",
    "window_start",
    "window_end",
    "implementers",
    "verdict",
    "in_scope",
    "out_of_scope",
    "outside_window",
    "outside_covered",
    "title",
)
"""Columns of the period report (``changes --review --since ... --format csv``)."""


def period_rows(reviews: Iterable[Review]) -> list[dict[str, str | int]]:
    """One row per reviewed record, by window start, times in UTC."""
    rows: list[dict[str, str | int]] = []
    for review in reviews:
        record = review.record
        window = record.to_json()["window"]
        rows.append(
            {
                "id": record.id,
                "state": record.state,
                "window_start": window["start"],
                "window_end": window["end"],
                "implementers": ";".join(record.implementers),
                "verdict": review.verdict,
                **review.counts(),
                "title": record.title,
            }
        )
    return rows


def period_lines(reviews: list[Review], zone: tzinfo) -> list[str]:
    """The period report as a table, then the number of records per verdict."""
    lines = [f"{'id':14}  {'state':10}  {'window':33}  {'verdict':14}  in  out  outside  title"]
    for review in reviews:
        record, counts = review.record, review.counts()
        window = f"{_local(record.start, zone)} - {_local(record.end, zone)[-5:]}"
        lines.append(
            f"{record.id[:14]:14}  {record.state[:10]:10}  {window:33}  {review.verdict:14}"
            f"  {counts['in_scope']:>2}  {counts['out_of_scope']:>3}  {counts['outside_window']:>7}"
            f"  {record.title}"
        )
    tally = Counter(review.verdict for review in reviews)
    summary = ", ".join(f"{tally[v]} {v}" for v in VERDICTS if tally[v])
    lines.append(f"{len(reviews)} change(s)" + (f": {summary}" if summary else ""))
    return lines
