"""E-mail messages: a plain-text body and an HTML alternative with the same facts."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate
from html import escape
from zoneinfo import ZoneInfo

from connectors.base import Notification
from connectors.messages.facts import facts, summary_line, worst_colour
from connectors.messages.text import one_line, text_lines


def _html(notification: Notification, zone: ZoneInfo, link: str | None) -> str:
    colour = worst_colour(notification)
    items = [facts(alert, zone, link) for alert in notification.alerts]
    title = escape(one_line(notification, zone))
    if notification.kind == "alert":
        item = items[0]
        rows = [
            ("Who", item.who),
            ("What", item.what),
            ("Where", item.where),
            ("When", f"{item.when_local} ({item.when_utc})"),
            ("Rule", item.rule),
            ("Alert", item.id),
        ]
        table = "".join(
            f"<tr><th align='left'>{name}</th><td>{escape(value)}</td></tr>" for name, value in rows
        )
        evidence = "".join(f"<li><code>{escape(line)}</code></li>" for line in item.evidence)
        body = f"<table>{table}</table><ul>{evidence}</ul>"
        if item.link:
            body += f"<p><a href='{escape(item.link)}'>Open in timeline</a></p>"
    else:
        body = "<ul>" + "".join(f"<li>{escape(summary_line(i))}</li>" for i in items) + "</ul>"
    return (
        f"<html><body><h2 style='border-left:6px solid {colour};padding-left:8px'>{title}</h2>"
        f"{body}</body></html>"
    )


def email_message(
    notification: Notification,
    zone: ZoneInfo,
    *,
    sender: str,
    recipients: list[str],
    link: str | None,
) -> EmailMessage:
    """The message; ``Message-ID`` derives from the idempotency key, so a resend is one mail."""
    message = EmailMessage()
    message["Subject"] = one_line(notification, zone)
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = f"<{notification.key}@auditcorr>"
    message["X-Auditcorr-Key"] = notification.key
    message.set_content("\n".join(text_lines(notification, zone, link)) + "\n")
    message.add_alternative(_html(notification, zone, link), subtype="html")
    return message
