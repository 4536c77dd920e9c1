"""The order stored alerts are listed in, on both engines: oldest first by the first
event, as ``auditcorr alerts`` prints them; newest first by the last event, as the API."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from storesupport import commit_alerts

from daemon.alert import Alert
from daemon.store.base import Store

T0 = datetime(2026, 11, 20, 1, 52, 4, tzinfo=UTC)


def raised(rule: str, first: timedelta, last: timedelta) -> Alert:
    return Alert(
        id=f"{rule}-id",
        rule_id=rule,
        title=rule,
        severity="medium",
        environment="cloud",
        first_seen=T0 + first,
        last_seen=T0 + last,
    )


# As in the demo: a correlation that began before a detection ended after it.
BRUTE_FORCE = raised("ssh_brute_force", timedelta(0), timedelta(minutes=1))
CONSOLE = raised("console_login_brute_force", timedelta(minutes=18), timedelta(minutes=19))
HYBRID = raised("hybrid_then_cloud_login", timedelta(minutes=1), timedelta(minutes=20))


def test_alerts_are_listed_oldest_first_by_their_first_event(store: Store) -> None:
    """An alert that began earlier comes first, however late its last event."""
    commit_alerts(store, [BRUTE_FORCE, CONSOLE, HYBRID])
    assert [a.rule_id for a in store.alerts()] == [
        "ssh_brute_force",
        "hybrid_then_cloud_login",
        "console_login_brute_force",
    ]


def test_alerts_newest_first_are_by_their_last_event(store: Store) -> None:
    """newest_first puts the alert whose last event is latest on top."""
    commit_alerts(store, [BRUTE_FORCE, CONSOLE, HYBRID])
    assert [a.rule_id for a in store.alerts(newest_first=True)] == [
        "hybrid_then_cloud_login",
        "console_login_brute_force",
        "ssh_brute_force",
    ]


def test_alerts_raised_by_one_event_are_listed_by_rule(store: Store) -> None:
    """Alerts with the same first event list by rule, whatever their ids (which depend on
    where the evidence was read)."""
    sudo = replace(raised("sudo_by_non_admin", timedelta(0), timedelta(0)), id="0")
    hybrid = replace(raised("hybrid_readonly", timedelta(0), timedelta(0)), id="f")
    commit_alerts(store, [sudo, hybrid])
    assert [a.rule_id for a in store.alerts()] == ["hybrid_readonly", "sudo_by_non_admin"]
