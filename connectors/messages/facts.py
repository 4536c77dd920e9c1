"""What a person at 3 a.m. needs from an alert, taken once from its document.

Every channel family renders these facts; none reads the alert document
itself, so wording and choices stay the same everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from connectors.base import Notification

COLOURS = {
    "informational": "#6c757d",
    "low": "#2f81f7",
    "medium": "#d29922",
    "high": "#f0883e",
    "critical": "#da3633",
}
"""Severity colours (hex), shared by every chat channel."""
EVIDENCE_LINES = 3

_WHERE_KEYS = (
    ("cloud.account.id", "cloud.region"),
    ("host.name",),
    ("source.ip",),
)


@dataclass(frozen=True, slots=True)
class Facts:
    id: str
    rule: str
    title: str
    severity: str
    colour: str
    who: str
    what: str
    where: str
    when_local: str
    when_utc: str
    count: int
    evidence: list[str]
    link: str | None


def _when(text: str, zone: ZoneInfo) -> tuple[str, str]:
    moment = datetime.fromisoformat(text)
    local = moment.astimezone(zone).strftime(f"%Y-%m-%d %H:%M:%S {zone.key}")
    return local, moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _who(alert: dict[str, Any]) -> str:
    group = alert.get("group", {})
    people = list(alert.get("actors", []))
    principal = group.get("user.name") or group.get("actor")
    if principal and principal not in people:
        people.append(principal)
    return ", ".join(people) or "unknown"


def _where(alert: dict[str, Any]) -> str:
    group = alert.get("group", {})
    for keys in _WHERE_KEYS:
        values = [group[key] for key in keys if group.get(key)]
        if values:
            return "/".join(values)
    datasets = sorted({item.get("event.dataset", "") for item in alert.get("evidence", [])})
    return ", ".join(filter(None, datasets)) or "unknown"


def _evidence(alert: dict[str, Any]) -> list[str]:
    lines = []
    for item in alert.get("evidence", [])[:EVIDENCE_LINES]:
        what = item.get("message") or item.get("event.action") or item.get("id")
        lines.append(f"{item['@timestamp']} {item['event.dataset']}: {what}")
    return lines


def facts(alert: dict[str, Any], zone: ZoneInfo, link: str | None = None) -> Facts:
    """The facts of one alert document; ``link`` may hold ``{id}``."""
    local, utc = _when(alert["last_seen"], zone)
    rule = alert["rule"]
    return Facts(
        id=alert["id"],
        rule=rule["id"],
        title=rule["title"],
        severity=alert["severity"],
        colour=COLOURS.get(alert["severity"], COLOURS["informational"]),
        who=_who(alert),
        what=rule.get("description") or rule["title"],
        where=_where(alert),
        when_local=local,
        when_utc=utc,
        count=int(alert.get("count", 1)),
        evidence=_evidence(alert),
        link=link.format(id=alert["id"]) if link else None,
    )


def worst_severity(notification: Notification) -> str:
    order = list(COLOURS)
    severities: list[str] = [alert["severity"] for alert in notification.alerts]
    return max(
        severities,
        key=lambda severity: order.index(severity) if severity in order else 0,
    )


def headline(notification: Notification) -> str:
    """One line naming the message: the alert, or how many alerts a group holds."""
    if notification.kind == "alert":
        alert = notification.alerts[0]
        return f"[{alert['severity'].upper()}] {alert['rule']['title']}"
    reason = "after quiet hours" if notification.kind == "digest" else "over the rate limit"
    worst = worst_severity(notification).upper()
    return f"[{worst}] {len(notification.alerts)} alerts ({notification.kind} {reason})"


def summary_line(item: Facts) -> str:
    """One alert in a digest or summary."""
    return f"{item.severity.upper()} {item.title} — {item.who} @ {item.where}, {item.when_local}"


def worst_colour(notification: Notification) -> str:
    return COLOURS.get(worst_severity(notification), COLOURS["informational"])
