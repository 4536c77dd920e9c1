"""Routing per output: filters at queueing time, quiet hours with a digest, rate-limit summaries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from deliverysupport import Receiver, delivering, make_alert, queue, wait_until

from connectors.outputs.webhook import WebhookConfig
from daemon.routing import quiet_until, route
from daemon.store.base import Delivery
from daemon.store.sqlite import SqliteStore

TOKYO = ZoneInfo("Asia/Tokyo")


def config(**settings: object) -> WebhookConfig:
    return WebhookConfig.model_validate(
        {"type": "webhook", "endpoint": "http://127.0.0.1:9/", **settings}
    )


@pytest.mark.parametrize(
    ("settings", "alert_settings", "taken"),
    [
        ({"min_severity": "high"}, {"severity": "high"}, True),
        ({"min_severity": "high"}, {"severity": "medium"}, False),
        ({"include_rules": ["root_login"]}, {}, False),
        ({"include_rules": ["root_login"]}, {"rule": "root_login"}, True),
        ({"exclude_rules": ["root_login"]}, {"rule": "root_login"}, False),
        ({"include_tags": ["attack.t1078"]}, {}, True),
        ({"include_tags": ["attack.t1562"]}, {}, False),
        ({"exclude_tags": ["attack.initial_access"]}, {}, False),
        ({"environments": ["on-prem", "hybrid"]}, {"environment": "cloud"}, False),
        ({"environments": ["on-prem", "hybrid"]}, {"environment": "hybrid"}, True),
    ],
)
def test_route_filters(
    settings: dict[str, object], alert_settings: dict[str, object], taken: bool
) -> None:
    """Severity floor, rule ids, ATT&CK tags (a tag covers those under it) and environment."""
    assert route(config(**settings))(make_alert(**alert_settings)) is taken  # type: ignore[arg-type]


def test_quiet_hours_wrap_midnight_in_the_daemon_zone() -> None:
    """22:00-07:00 in the given zone: 23:30 and 06:59 are quiet until 07:00; 07:00 is not."""
    quiet = config(quiet_hours="22:00-07:00")
    late = datetime(2026, 11, 20, 23, 30, tzinfo=TOKYO)
    assert quiet_until(quiet, late, TOKYO) == datetime(2026, 11, 21, 7, 0, tzinfo=TOKYO)
    early = datetime(2026, 11, 21, 6, 59, tzinfo=TOKYO)
    assert quiet_until(quiet, early, TOKYO) == datetime(2026, 11, 21, 7, 0, tzinfo=TOKYO)
    assert quiet_until(quiet, datetime(2026, 11, 21, 7, 0, tzinfo=TOKYO), TOKYO) is None
    noon = datetime(2026, 11, 21, 12, 0, tzinfo=TOKYO)
    assert quiet_until(quiet, noon, TOKYO) is None
    # The same moment is 03:00 in UTC: quiet there.
    assert quiet_until(quiet, noon, ZoneInfo("UTC")) == datetime(2026, 11, 21, 7, 0, tzinfo=UTC)


def test_bad_quiet_hours_are_a_config_error() -> None:
    """Quiet hours must read HH:MM-HH:MM."""
    with pytest.raises(ValueError, match="HH:MM-HH:MM"):
        config(quiet_hours="10pm-7am")


async def test_alerts_held_in_quiet_hours_arrive_as_one_digest(
    store: SqliteStore, receiver: Receiver
) -> None:
    """Below the bypass severity alerts wait for the end of quiet hours, then go as one digest;
    a critical alert goes out at once."""
    real = datetime.now(UTC)
    offset = [timedelta(0)]
    start, end = real - timedelta(hours=1), real + timedelta(hours=1)
    outputs = {
        "hook": WebhookConfig.model_validate(
            {
                "type": "webhook",
                "endpoint": receiver.url,
                "quiet_hours": f"{start:%H:%M}-{end:%H:%M}",
            }
        )
    }
    alerts = [make_alert(n, severity="medium") for n in range(3)]
    urgent = make_alert(9, severity="critical")
    queue(store, outputs, [*alerts, urgent])
    async with delivering(store, outputs, clock=lambda: datetime.now(UTC) + offset[0]):
        await receiver.wait_for(1)
        await wait_until(lambda: len(store.deliveries("pending")) == 3)
        assert receiver.accepted[0].headers["Idempotency-Key"] == urgent.id
        offset[0] = timedelta(hours=1, minutes=2)
        await receiver.wait_for(2)
        await wait_until(lambda: len(store.deliveries("sent")) == 4)
    digest = receiver.accepted[1]
    assert digest.headers["X-Auditcorr-Kind"] == "digest"
    assert sorted(a["id"] for a in digest.json["alerts"]) == sorted(a.id for a in alerts)


def held_for_limit(rows: list[Delivery]) -> bool:
    """Every row waits for the rate limit's window to free a slot (most of a minute)."""
    later = datetime.now(UTC) + timedelta(seconds=30)
    return bool(rows) and all(row.due_at > later for row in rows)


async def test_over_the_rate_limit_alerts_are_grouped_not_dropped(
    store: SqliteStore, receiver: Receiver
) -> None:
    """Ten alerts, two messages a minute: one alert alone, the other nine in one summary;
    alerts after that wait for the limit instead of being dropped."""
    outputs = {
        "hook": WebhookConfig.model_validate(
            {"type": "webhook", "endpoint": receiver.url, "max_messages_per_minute": 2}
        )
    }
    queue(store, outputs, [make_alert(n) for n in range(10)])
    async with delivering(store, outputs):
        await receiver.wait_for(2)
        await wait_until(lambda: len(store.deliveries("sent")) == 10)
        queue(store, outputs, [make_alert(n) for n in range(10, 13)])
        await wait_until(lambda: held_for_limit(store.deliveries("pending")))
    kinds = sorted(r.headers["X-Auditcorr-Kind"] for r in receiver.accepted)
    assert kinds == ["alert", "summary"]
    summary = next(r for r in receiver.accepted if r.headers["X-Auditcorr-Kind"] == "summary")
    assert len(summary.json["alerts"]) == 9
    assert len(store.deliveries("pending")) == 3
    assert len(receiver.accepted) == 2
