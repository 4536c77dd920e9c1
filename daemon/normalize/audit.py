"""The daemon's own audit trail: what admins did through the API or the CLI.

Reading the quarantine (raw evidence), retrying deliveries, migrating the
store and starting with a changed identity map are entries on the timeline
like any other event, so "who looked at
the evidence" has an answer.  ``daemon/audit.py`` writes them; a record is::

    {"id": "4f0c...", "at": "2026-11-27T12:00:00.123Z", "action": "quarantine_read",
     "via": "api", "user": "ops-admin", "role": "admin", "peer": "10.0.0.5",
     "outcome": "success", "target": "/api/v1/quarantine", "detail": {"entries": 3}}

No built-in rule selects the dataset ``auditcorr.audit``.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime
from typing import Any

from connectors.base import NormalizationError
from daemon.model import AuditEvent
from daemon.normalize import Limits, json_records

DATASET = "auditcorr.audit"
SOURCE = "auditcorr"
"""The source name the entries are stored under (``--source auditcorr`` finds them)."""
OUTCOMES = ("success", "failure")
KINDS = {
    "quarantine_read": (["database"], ["access"]),
    "deliveries_retried": (["configuration"], ["change"]),
    "store_migrated": (["database"], ["change"]),
    "identity_map_changed": (["iam"], ["change"]),
}
"""ECS category and type of each action; others are ``process``/``info``."""


def decode(payload: bytes, limits: Limits) -> list[Any]:
    """A JSON list of records (or one record)."""
    return json_records(payload, limits, "audit records")


def normalize(record: Any) -> AuditEvent:
    if not isinstance(record, dict):
        raise NormalizationError("an audit record is a JSON object")
    try:
        at = datetime.fromisoformat(record["at"])
        texts = {key: str(record[key]) for key in ("id", "action", "via", "user", "role")}
        outcome = record.get("outcome", "success")
        target = record.get("target")
        peer = record.get("peer")
    except (KeyError, TypeError, ValueError) as err:
        raise NormalizationError(f"not an audit record: {err!r}") from err
    if at.tzinfo is None or outcome not in OUTCOMES:
        raise NormalizationError("an audit record has a zoned time and a known outcome")
    user = texts["user"]
    category, kind = KINDS.get(texts["action"], (["process"], ["info"]))
    event = AuditEvent(
        timestamp=at,
        id=f"audit:{texts['id']}",
        dataset=DATASET,
        category=category,
        type=kind,
        action=texts["action"],
        outcome=outcome,
        provider="auditcorr",
        user_name=user,
        related_user=[user],
        message=f"{user} ({texts['role']}, {texts['via']}): {texts['action']}"
        + (f" {target}" if target else ""),
        labels={"via": texts["via"], "role": texts["role"]},
        original=record,
    )
    if isinstance(peer, str) and _is_address(peer):
        event.source_ip = peer
        event.related_ip = [peer]
    return event


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
