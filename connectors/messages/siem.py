"""SIEM messages: RFC 5424 syslog lines carrying an alert as structured data or as CEF."""

from __future__ import annotations

import socket
from datetime import datetime
from typing import Any, Literal

from connectors.messages.facts import Facts

SD_ID = "alert@32473"
"""Structured-data id; 32473 is the enterprise number RFC 5612 reserves for examples."""
SEVERITY_CODES = {"critical": 2, "high": 3, "medium": 4, "low": 5, "informational": 6}
"""Syslog severity per alert severity: crit, err, warning, notice, info."""
CEF_SEVERITY = {"critical": 10, "high": 8, "medium": 5, "low": 3, "informational": 1}
BOM = "\ufeff"


def _sd_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _cef_header(value: str) -> str:
    return value.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _cef_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("=", "\\=").replace("\r", "\\r").replace("\n", "\\n")


def structured_data(alert: dict[str, Any], item: Facts) -> str:
    pairs = {
        "id": item.id,
        "rule": item.rule,
        "severity": item.severity,
        "environment": alert.get("environment", ""),
        "count": str(item.count),
        "who": item.who,
        "where": item.where,
        "first_seen": alert["first_seen"],
        "last_seen": alert["last_seen"],
        "tags": ",".join(alert.get("tags", [])),
    }
    body = " ".join(f'{key}="{_sd_value(value)}"' for key, value in pairs.items())
    return f"[{SD_ID} {body}]"


def cef(alert: dict[str, Any], item: Facts, version: str) -> str:
    """ArcSight CEF: header fields, then key=value extensions (times as epoch milliseconds)."""
    header = "|".join(
        _cef_header(part)
        for part in (
            "CEF:0",
            "auditcorr",
            "auditcorr",
            version,
            item.rule,
            item.title,
            str(CEF_SEVERITY.get(item.severity, 1)),
        )
    )
    seen = datetime.fromisoformat(alert["last_seen"])
    extensions = {
        "rt": str(int(seen.timestamp() * 1000)),
        "suser": item.who,
        "dvchost": item.where,
        "cnt": str(item.count),
        "externalId": item.id,
        "cs1Label": "tags",
        "cs1": ",".join(alert.get("tags", [])),
        "msg": item.what,
    }
    return header + "|" + " ".join(f"{key}={_cef_value(v)}" for key, v in extensions.items())


def rfc5424(
    alert: dict[str, Any],
    item: Facts,
    *,
    facility: int,
    form: Literal["rfc5424", "cef"],
    app_name: str,
    version: str,
    hostname: str | None = None,
) -> bytes:
    """One syslog message: header, structured data (rfc5424 form) and the UTF-8 message."""
    priority = facility * 8 + SEVERITY_CODES.get(item.severity, 6)
    stamp = datetime.fromisoformat(alert["last_seen"]).isoformat().replace("+00:00", "Z")
    host = (hostname or socket.gethostname())[:255]
    if form == "cef":
        head = f"<{priority}>1 {stamp} {host} {app_name} - alert -"
        return f"{head} {cef(alert, item, version)}".encode()
    head = f"<{priority}>1 {stamp} {host} {app_name} - alert {structured_data(alert, item)}"
    message = f"[{item.severity.upper()}] {item.title}: {item.who} @ {item.where}"
    return f"{head} {BOM}{message}".encode()
