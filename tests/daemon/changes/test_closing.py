"""A review when a change closes: when a record closes, and the alert its review becomes."""

from __future__ import annotations

from datetime import UTC, datetime

from test_review import MAINTENANCE

from connectors.contracts.change_record import ChangeRecord, parse_record
from connectors.outputs.webhook import WebhookConfig
from daemon.alert import Alert
from daemon.changes.book import ChangeBook
from daemon.changes.closing import REVIEW_RULE, just_closed, review_alert
from daemon.changes.coverage import facts_of
from daemon.changes.review import Review, Seen, Verdict
from daemon.routing import route
from daemon.store.base import Found

RECORD = parse_record(MAINTENANCE)


def state_of(name: str) -> ChangeRecord:
    return parse_record({**MAINTENANCE, "state": name})


AT = datetime(2026, 11, 21, tzinfo=UTC)


def test_a_record_closes_once() -> None:
    """Entering a closed state closes a record; a version after that does not close it
    again, and a record first seen closed was not seen closing."""
    assert just_closed(state_of("implementing"), state_of("completed"))
    assert not just_closed(None, state_of("completed"))
    assert just_closed(state_of("approved"), state_of("cancelled"))
    assert not just_closed(state_of("completed"), state_of("completed"))
    assert not just_closed(state_of("completed"), state_of("cancelled"))
    assert not just_closed(state_of("requested"), state_of("approved"))


def doc(action: str, at: str, event_id: str) -> dict[str, object]:
    return {
        "@timestamp": at,
        "event": {"id": event_id, "dataset": "aws.cloudtrail", "action": action},
        "actor": "alice",
        "cloud": {"account": {"id": "111111111111"}, "service": {"name": "s3"}},
        "message": f"alice called s3:{action}",
    }


def made(verdict: Verdict, record: ChangeRecord = RECORD) -> Review:
    found = Found(7, "test", "cloudtrail", doc("PutBucketPolicy", "2026-11-20T09:14:05Z", "e1"))
    facts = facts_of(found.document, ChangeBook([]))
    out_of_scope = Seen(found, facts, reasons=("action s3:PutBucketPolicy not in scope",))
    return Review(record, verdict, AT, (), (out_of_scope,), ())


def test_the_alert_names_the_findings_and_routes_by_verdict() -> None:
    """The out-of-scope call is the evidence; the verdict is a tag outputs route by."""
    alert = review_alert(made("scope_creep"))
    assert alert.rule_id == REVIEW_RULE
    assert alert.tags == ["change_review.scope_creep"]
    assert alert.group == {"change.id": "CHG0041207", "verdict": "scope_creep"}
    assert [e.id for e in alert.evidence] == ["e1"]
    assert alert.actors == ["alice"]
    assert alert.environment == "cloud"
    assert alert.context["review"]["verdict"] == "scope_creep"
    assert Alert.from_json(alert.to_json()) == alert


def test_the_alert_id_is_stable_for_one_closing_version() -> None:
    """Made again (a replay, another daemon) it has the same id; a new version, another."""
    first, again = review_alert(made("scope_creep")), review_alert(made("scope_creep"))
    assert first.id == again.id
    other = parse_record({**MAINTENANCE, "title": "edited after closing"})
    assert review_alert(made("scope_creep", other)).id != first.id


def test_clean_reviews_can_be_dropped_by_an_output() -> None:
    """``exclude_tags = ["change_review.clean"]`` drops clean reviews and keeps the rest."""
    config = WebhookConfig.model_validate(
        {
            "type": "webhook",
            "endpoint": "http://127.0.0.1:9/",
            "min_severity": "informational",
            "exclude_tags": ["change_review.clean"],
        }
    )
    accepts = route(config)
    assert not accepts(review_alert(made("clean")))
    assert accepts(review_alert(made("scope_creep")))
