"""Chat messages: Slack Block Kit, Mattermost/Rocket.Chat attachments, Teams Adaptive Cards.

All three carry the same facts in the same order: severity colour, who, what,
where, when (local zone and UTC), the top evidence lines and a link.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from connectors.base import Notification
from connectors.messages.facts import (
    Facts,
    facts,
    headline,
    summary_line,
    worst_colour,
    worst_severity,
)

JSON = dict[str, Any]


def _fields(item: Facts) -> list[tuple[str, str]]:
    when = f"{item.when_local}\n{item.when_utc}"
    if item.count > 1:
        when += f"\n{item.count} times"
    return [("Who", item.who), ("Where", item.where), ("When", when), ("Rule", item.rule)]


def _alerts(notification: Notification, zone: ZoneInfo, link: str | None) -> list[Facts]:
    return [facts(alert, zone, link) for alert in notification.alerts]


def slack(notification: Notification, zone: ZoneInfo, link: str | None) -> JSON:
    """Block Kit inside a coloured attachment; ``text`` is the notification fallback."""
    items = _alerts(notification, zone, link)
    blocks: list[JSON] = [
        {"type": "header", "text": {"type": "plain_text", "text": headline(notification)[:150]}}
    ]
    if notification.kind == "alert":
        item = items[0]
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": item.what}})
        blocks.append(
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": f"*{name}*\n{value}"}
                    for name, value in _fields(item)
                ],
            }
        )
        if item.evidence:
            evidence = "\n".join(item.evidence)
            blocks.append(
                {"type": "section", "text": {"type": "mrkdwn", "text": f"```{evidence}```"}}
            )
        if item.link:
            blocks.append(
                {
                    "type": "context",
                    "elements": [{"type": "mrkdwn", "text": f"<{item.link}|Open in timeline>"}],
                }
            )
    else:
        lines = "\n".join(f"• {summary_line(item)}" for item in items)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": lines[:3000]}})
    return {
        "text": headline(notification),
        "attachments": [{"color": worst_colour(notification), "blocks": blocks}],
    }


def attachment(notification: Notification, zone: ZoneInfo, link: str | None) -> JSON:
    """The attachment format Mattermost and Rocket.Chat incoming webhooks share."""
    items = _alerts(notification, zone, link)
    if notification.kind == "alert":
        item = items[0]
        body: JSON = {
            "title": headline(notification),
            "text": item.what
            + ("\n```\n" + "\n".join(item.evidence) + "\n```" if item.evidence else ""),
            "fields": [
                {"short": True, "title": name, "value": value} for name, value in _fields(item)
            ],
        }
        if item.link:
            body["title_link"] = item.link
    else:
        body = {
            "title": headline(notification),
            "text": "\n".join(f"- {summary_line(item)}" for item in items),
        }
    body["color"] = worst_colour(notification)
    return {"text": headline(notification), "attachments": [body]}


def adaptive_card(notification: Notification, zone: ZoneInfo, link: str | None) -> JSON:
    """A Teams message with one Adaptive Card, as Teams workflow webhooks take it."""
    items = _alerts(notification, zone, link)
    colour = "Attention" if worst_severity(notification) in ("high", "critical") else "Warning"
    body: list[JSON] = [
        {
            "type": "TextBlock",
            "text": headline(notification),
            "weight": "Bolder",
            "size": "Medium",
            "color": colour,
            "wrap": True,
        }
    ]
    actions: list[JSON] = []
    if notification.kind == "alert":
        item = items[0]
        body.append({"type": "TextBlock", "text": item.what, "wrap": True})
        body.append(
            {
                "type": "FactSet",
                "facts": [{"title": name, "value": value} for name, value in _fields(item)],
            }
        )
        body.extend(
            {
                "type": "TextBlock",
                "text": line,
                "fontType": "Monospace",
                "wrap": True,
                "isSubtle": True,
            }
            for line in item.evidence
        )
        if item.link:
            actions.append(
                {"type": "Action.OpenUrl", "title": "Open in timeline", "url": item.link}
            )
    else:
        body.extend(
            {"type": "TextBlock", "text": summary_line(item), "wrap": True} for item in items
        )
    card: JSON = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    }
    if actions:
        card["actions"] = actions
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}
        ],
    }
