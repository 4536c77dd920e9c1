"""Plain-text messages: the console, e-mail bodies and syslog messages."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from connectors.base import Notification
from connectors.messages.facts import facts, headline, summary_line


def text_lines(notification: Notification, zone: ZoneInfo, link: str | None = None) -> list[str]:
    """A readable block: headline, then who/what/where/when and evidence, or one line per alert."""
    lines = [headline(notification)]
    if notification.kind != "alert":
        lines.extend("  " + summary_line(facts(alert, zone, link)) for alert in notification.alerts)
        return lines
    item = facts(notification.alerts[0], zone, link)
    lines += [
        f"  who:   {item.who}",
        f"  what:  {item.what}",
        f"  where: {item.where}",
        f"  when:  {item.when_local} ({item.when_utc})"
        + (f", {item.count} times" if item.count > 1 else ""),
        f"  rule:  {item.rule}  alert: {item.id}",
    ]
    lines += [f"  > {line}" for line in item.evidence]
    if item.link:
        lines.append(f"  {item.link}")
    return lines


def one_line(notification: Notification, zone: ZoneInfo) -> str:
    """The message in one line (syslog MSG, e-mail subject)."""
    if notification.kind != "alert":
        return headline(notification)
    item = facts(notification.alerts[0], zone)
    return f"{headline(notification)}: {item.who} @ {item.where} at {item.when_utc}"
