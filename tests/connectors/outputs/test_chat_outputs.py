"""Chat outputs post what their incoming webhooks take, with every fact and non-ASCII intact."""

from __future__ import annotations

from typing import Any

import pytest
from deliverysupport import Receiver, delivering, make_alert, queue, wait_until

from connectors import registry
from connectors.config import OutputConfig
from daemon.store.sqlite import SqliteStore

LINK = "https://auditcorr.example/alerts/{id}"


def texts(value: Any) -> str:
    """Every string in a JSON value, joined: what a reader of the message sees."""
    if isinstance(value, dict):
        return " ".join(texts(item) for item in value.values())
    if isinstance(value, list):
        return " ".join(texts(item) for item in value)
    return str(value)


def shape(type_name: str, body: dict[str, Any]) -> None:
    if type_name == "slack":
        (attachment,) = body["attachments"]
        assert attachment["color"] == "#f0883e"
        assert attachment["blocks"][0]["type"] == "header"
    elif type_name == "teams":
        (attachment,) = body["attachments"]
        assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
        assert attachment["content"]["type"] == "AdaptiveCard"
    else:
        (attachment,) = body["attachments"]
        assert attachment["color"] == "#f0883e"
        assert {field["title"] for field in attachment["fields"]} >= {"Who", "Where", "When"}


@pytest.mark.parametrize("type_name", ["slack", "mattermost", "rocketchat", "teams"])
async def test_chat_message_carries_who_what_where_when_evidence_and_link(
    type_name: str, store: SqliteStore, receiver: Receiver
) -> None:
    """The posted message names person, account/region, both times, evidence and the link."""
    model = registry.load(registry.OUTPUTS, type_name).config_model
    config: OutputConfig = model.model_validate(
        {"type": type_name, "endpoint": receiver.url, "alert_url": LINK}
    )
    outputs = {"chat": config}
    alert = make_alert()
    queue(store, outputs, [alert])
    async with delivering(store, outputs, timezone="Asia/Tokyo"):
        await receiver.wait_for(1)
        await wait_until(lambda: store.deliveries("sent"))
    body = receiver.accepted[0].json
    shape(type_name, body)
    seen = texts(body)
    for fact in (
        "Console login without MFA",
        "alice",
        "111111111111/ap-northeast-1",
        "2026-11-20 18:00:30 Asia/Tokyo",
        "2026-11-20 09:00:30 UTC",
        "alice がMFAなしでログイン",
        LINK.format(id=alert.id),
    ):
        assert fact in seen, f"{fact!r} missing from the {type_name} message"
