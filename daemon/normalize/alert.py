"""Alerts on the timeline: each raising and each update of an alert is an event.

The stored record is the alert in its documented JSON form (``Alert.to_json``)
as it stood when raised or updated, so the timeline keeps what the channels
were told.  The event's id is ``<alert id>-<count>``: an update is a new entry
beside the earlier ones ("count 7" after "count 1"), and the same alert at the
same count (a replay) is the same event, stored once.  Its time is the alert's
last seen: where the update happened in event time.

No detection rule sees these events: no Sigma logsource selects the dataset
``auditcorr.alert``, so an alert never matches a rule and raises no further
alert, also when a store is rebuilt or an export is replayed.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from connectors.base import NormalizationError
from daemon.alert import SEVERITIES, Alert
from daemon.model import AuditEvent, format_timestamp
from daemon.normalize import Limits, json_records

DATASET = "auditcorr.alert"
_ADDRESS_CHARS = "0123456789abcdefABCDEF.:"
"""Every character an IPv4 or IPv6 address can hold, but for an IPv6 zone id after
``%`` (any name: such a value goes to the parse)."""
RAISED = "alert_raised"
UPDATED = "alert_updated"


def decode(payload: bytes, limits: Limits) -> list[Any]:
    """One alert (JSON form) or a list of them."""
    return json_records(payload, limits, "alerts")


def normalize(record: Any) -> AuditEvent:
    try:
        return event_of(Alert.from_json(record), record)
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise NormalizationError(f"not an alert in its JSON form: {err!r}") from err


def event_of(alert: Alert, record: Any) -> AuditEvent:
    """The event of ``alert`` whose JSON form is ``record``: where the correlator has the
    alert at hand, it need not be decoded again."""
    return AuditEvent(
        timestamp=alert.last_seen,
        id=f"{alert.id}-{alert.count}",
        dataset=DATASET,
        kind="alert",
        category=["intrusion_detection"],
        type=["info"],
        action=RAISED if alert.count == 1 else UPDATED,
        provider="auditcorr",
        message=alert.title,
        actor=alert.actors[0] if len(alert.actors) == 1 else None,
        related_user=list(alert.actors),
        related_ip=[value for value in alert.group.values() if _is_address(value)],
        labels={
            "alert_id": alert.id,
            "severity": alert.severity,
            "environment": alert.environment,
        },
        fields={
            "rule.id": alert.rule_id,
            "rule.name": alert.title,
            "event.severity": SEVERITIES.index(alert.severity),
            "event.start": format_timestamp(alert.first_seen),
            "event.end": format_timestamp(alert.last_seen),
            "event.reference": f"/api/v1/alerts/{alert.id}",
            "tags": list(alert.tags),
        },
        original=record,
    )


def _is_address(value: str) -> bool:
    """A group-by value that is an IP address (``source.ip``, ``sourceIPAddress``).

    Most values (user names, hosts, accounts) hold a character no address has: they
    are turned away before the parse, whose failure costs an exception."""
    if not value or (value.strip(_ADDRESS_CHARS) and "%" not in value):
        return False
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True
