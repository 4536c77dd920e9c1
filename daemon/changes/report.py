"""Change records, coverage verdicts and people as the CLI prints them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, tzinfo
from typing import Any

from connectors.changerecord import ChangeRecord
from daemon.changes.coverage import Verdict
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
    axes = ("hosts", "aws_accounts", "aws_regions", "resources", "actions")
    return [
        f"    {axis}: {', '.join(getattr(scope, axis))}" for axis in axes if getattr(scope, axis)
    ]


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
