"""The alert document as JSON, shared by the ``webhook`` and ``mqtt`` outputs."""

from __future__ import annotations

from connectors.base import Notification

SCHEMA_VERSION = 1


def document(notification: Notification) -> dict[str, object]:
    """One alert: the alert document itself; a digest or summary: an envelope around them."""
    if notification.kind == "alert":
        return notification.alerts[0]
    return {
        "schema": SCHEMA_VERSION,
        "kind": notification.kind,
        "key": notification.key,
        "alerts": notification.alerts,
    }
