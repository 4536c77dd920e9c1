"""A review when a change closes: when a record has just closed, and the alert that
carries its review through the outputs.

Pure functions for the correlator stage: it holds the version of a record it saw
last and the one just written, asks :func:`just_closed`, reviews the record
(:func:`daemon.changes.review.review`) and queues :func:`review_alert` like any
alert.  The alert's id depends only on the record and its closing version, so a
replay, a restart or a second daemon makes the same id and delivery stays
idempotent; its tag ``change_review.<verdict>`` is what outputs route by
(``include_tags``/``exclude_tags``: ``exclude_tags = ["change_review.clean"]``
drops clean reviews).
"""

from __future__ import annotations

from typing import Final

from connectors.contracts.change_record import CLOUD_AXES, ChangeRecord
from daemon.alert import Alert, Environment, Evidence, Severity, alert_id
from daemon.changes.review import Review, Seen, Verdict

REVIEW_RULE: Final = "change_review"
CLOSED: Final = frozenset({"completed", "cancelled", "rejected"})
"""States after which nothing more is done under a record."""

SEVERITY: Final[dict[Verdict, Severity]] = {
    "clean": "informational",
    "in_progress": "informational",
    "not_executed": "low",
    "outside_window": "medium",
    "scope_creep": "medium",
}
MAX_EVIDENCE = 20


def just_closed(before: ChangeRecord | None, after: ChangeRecord) -> bool:
    """True when ``after`` (the version just received) moves the record into a closed
    state from the version before it.  A record first seen closed (None before it: a
    backfill of last year's records) did not close here and gets no review."""
    return after.state in CLOSED and before is not None and before.state not in CLOSED


def review_alert(review: Review) -> Alert:
    """The review as an alert: evidence is what went wrong (out of scope, or outside
    the window and covered by nothing), the whole review is its context."""
    record = review.record
    findings = [s for s in review.inside if not s.in_scope]
    findings += [s for s in review.outside if not s.covered_by]
    findings.sort(key=lambda seen: seen.facts.time)
    actors = {seen.facts.people[0] for seen in (*review.inside, *findings) if seen.facts.people}
    counts = review.counts()
    return Alert(
        id=alert_id(REVIEW_RULE, {"change.id": record.id}, record.end, record.revision),
        rule_id=REVIEW_RULE,
        title=f"Change review {record.id}: {review.verdict}",
        severity=SEVERITY[review.verdict],
        environment=_environment(record),
        first_seen=findings[0].facts.time if findings else record.start,
        last_seen=findings[-1].facts.time if findings else record.end,
        count=max(len(findings), 1),
        tags=[f"{REVIEW_RULE}.{review.verdict}"],
        actors=sorted(actors),
        evidence=[_evidence(seen) for seen in findings[:MAX_EVIDENCE]],
        description=(
            f"{record.id} ({record.state}) {record.title}: {counts['in_scope']} event(s) in"
            f" scope, {counts['out_of_scope']} out of scope in the window,"
            f" {counts['outside_window']} on its scope outside the window covered by nothing"
        ),
        group={"change.id": record.id, "verdict": review.verdict},
        context={"review": review.to_json()},
    )


def _evidence(seen: Seen) -> Evidence:
    event = seen.found.document.get("event") or {}
    return Evidence(
        id=str(event.get("id") or seen.found.key),
        timestamp=seen.facts.time,
        dataset=str(event.get("dataset") or ""),
        action=seen.facts.action,
        message=seen.found.document.get("message"),
    )


def _environment(record: ChangeRecord) -> Environment:
    scope = record.scope
    cloud = any(scope.axis(axis) for axis in (*CLOUD_AXES, "resources"))
    if scope.hosts and not cloud:
        return "on-prem"
    if cloud and not scope.hosts:
        return "cloud"
    return "hybrid"
