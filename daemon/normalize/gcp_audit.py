"""Google Cloud Audit Logs: the ``LogEntry`` records a Cloud Logging sink writes.

A sink to Cloud Storage writes files of LogEntry JSON, one entry per line
(``cloudaudit.googleapis.com/activity/YYYY/MM/DD/HH:MM:SS_HH:MM:SS_S0.json``); a
file may also be a JSON array of entries, and either may be gzip-compressed.
A line that is not JSON is one bad record (quarantined at its position); a
payload that is not gzip or JSON at all, or a truncated gzip stream, is a bad
payload (``jsonfile``).

The mapping follows Elastic's ``gcp.audit`` data stream:

* ``@timestamp`` from ``timestamp``, ``event.id`` from ``insertId``;
* ``event.action`` is ``protoPayload.methodName``, ``event.provider`` its
  ``serviceName`` and ``cloud.service.name`` the service's short name
  (``compute``);
* ``user.email`` (and ``user.name``) from ``authenticationInfo.principalEmail``;
* ``source.ip`` from ``requestMetadata.callerIp`` (left out when Google writes
  ``private`` or ``gce-internal-ip``), ``user_agent.original`` from
  ``callerSuppliedUserAgent``;
* ``event.outcome`` is ``success`` when ``status.code`` is absent or 0, else
  ``failure``;
* ``cloud.provider`` is ``gcp``, ``cloud.project.id`` the resource's
  ``project_id`` label (else the project of ``logName``);
* the rest under ``gcp.audit.*`` with Elastic's names (``method_name``,
  ``service_name``, ``resource_name``, ``status.code``, ...), ``log.logger`` is
  ``logName``, so Sigma rules written for ``gcp.audit`` find their fields.

Which audit log an entry belongs to (``activity``, ``data_access``,
``system_event``, ``policy``) comes from ``logName`` and goes into
``gcp.audit.log``: an Admin Activity entry changes configuration
(``event.type: change``), a Data Access entry reads or writes data
(``access``), a Policy Denied entry was refused (``denied``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import unquote

import orjson

from connectors.base import NormalizationError
from daemon.model import AuditEvent
from daemon.normalize import Limits, jsonfile
from daemon.normalize.fill import canonical_ip, related_user

DATASET: Final = "gcp.audit"
AUDIT_LOG: Final = "type.googleapis.com/google.cloud.audit.AuditLog"
ACTIVITY: Final = "activity"
"""``gcp.audit.log`` of Admin Activity entries: the configuration changes."""

_LOG_PREFIX: Final = "cloudaudit.googleapis.com/"
_PROJECT: Final = re.compile(r"^projects/([^/]+)/")
_FRACTION: Final = re.compile(r"(\.\d{6})\d+")
"""LogEntry times carry up to nanoseconds; Python keeps microseconds."""
_HIDDEN_CALLERS: Final = frozenset({"private", "gce-internal-ip"})
_TYPES: Final = {
    "activity": ["change"],
    "data_access": ["access"],
    "system_event": ["info"],
    "policy": ["denied"],
}


def decode(payload: bytes, limits: Limits) -> list[Any]:
    """The entries of one file: a JSON array, one entry, or one entry per line."""
    text = jsonfile.unpack(payload, limits)
    if text.lstrip()[:1] == b"[":
        return jsonfile.storable(jsonfile.loads(text))
    try:
        # One entry, perhaps pretty-printed; a file of lines fails right after its first.
        return jsonfile.storable([orjson.loads(text)])
    except orjson.JSONDecodeError:
        pass
    records: list[Any] = []
    for line in text.split(b"\n"):
        if not line.strip():
            continue
        try:
            records.append(orjson.loads(line))
        except orjson.JSONDecodeError as err:
            records.append(jsonfile.Unstorable(f"line is not JSON: {err}", line[:512]))
    return jsonfile.storable(records)


def normalize(record: Any) -> AuditEvent:
    """Map one audit LogEntry to ECS; one without an id, a time or an audit payload
    is rejected."""
    if isinstance(record, jsonfile.Unstorable):
        raise NormalizationError(record.reason, raw=record.raw)
    if not isinstance(record, dict):
        raise NormalizationError(f"entry is a JSON {jsonfile.kind(record)}, not an object")
    entry_id = record.get("insertId")
    if not isinstance(entry_id, str) or not entry_id:
        raise NormalizationError("entry without an insertId")
    payload = record.get("protoPayload")
    if not isinstance(payload, dict) or payload.get("@type", AUDIT_LOG) != AUDIT_LOG:
        raise NormalizationError("not an audit log entry: no AuditLog protoPayload")
    moment = _time(record.get("timestamp"))
    method = _text(payload.get("methodName"))
    service = _text(payload.get("serviceName"))
    resource_name = _text(payload.get("resourceName"))
    principal = _text(_obj(payload, "authenticationInfo").get("principalEmail"))
    request = _obj(payload, "requestMetadata")
    caller = _text(request.get("callerIp"))
    status = _obj(payload, "status")
    code = status.get("code")
    log_name = _text(record.get("logName")) or ""
    kind = unquote(log_name).rpartition(_LOG_PREFIX)[2] or None
    project = _text(_obj(_obj(record, "resource"), "labels").get("project_id"))
    if project is None and (found := _PROJECT.match(log_name)):
        project = found[1]
    short_service = service.removesuffix(".googleapis.com") if service else None

    event = AuditEvent(
        timestamp=moment,
        id=entry_id,
        dataset=DATASET,
        category=["configuration"],
        type=list(_TYPES.get(kind or "", ["info"])),
        action=method,
        outcome="success" if code in (None, 0) else "failure",
        provider=service,
        cloud_provider="gcp",
        cloud_service_name=short_service,
        original=record,
    )
    if principal:
        event.user_name = principal
        event.fields["user.email"] = principal
        related_user(event, principal)
    if caller and caller not in _HIDDEN_CALLERS:
        address = canonical_ip(caller)
        if address:
            event.source_ip = address
            event.related_ip.append(address)
    fields = event.fields
    _put(fields, "user_agent.original", _text(request.get("callerSuppliedUserAgent")))
    _put(fields, "cloud.project.id", project)
    _put(fields, "log.logger", log_name or None)
    _put(fields, "log.level", _text(record.get("severity")))
    _put(fields, "gcp.audit.log", kind)
    _put(fields, "gcp.audit.type", _text(payload.get("@type")))
    _put(fields, "gcp.audit.method_name", method)
    _put(fields, "gcp.audit.service_name", service)
    _put(fields, "gcp.audit.resource_name", resource_name)
    _put(fields, "gcp.audit.authentication_info.principal_email", principal)
    _put(fields, "gcp.audit.request_metadata.caller_ip", caller)
    if isinstance(code, int):
        fields["gcp.audit.status.code"] = code
    _put(fields, "gcp.audit.status.message", _text(status.get("message")))
    authorization = payload.get("authorizationInfo")
    if isinstance(authorization, list) and authorization:
        fields["gcp.audit.authorization_info"] = [
            {
                "permission": item.get("permission"),
                "granted": item.get("granted"),
                "resource": item.get("resource"),
            }
            for item in authorization
            if isinstance(item, dict)
        ]
    locations = _obj(payload, "resourceLocation").get("currentLocations")
    if isinstance(locations, list) and locations:
        fields["gcp.audit.resource_location.current_locations"] = locations
    event.message = _message(event)
    return event


def _message(event: AuditEvent) -> str:
    """``alice@example.com called compute:v1.compute.instances.stop on projects/... in
    prod-123``, with the status code of a failed call."""
    fields = event.fields
    who = event.user_name or "an unauthenticated caller"
    method = event.action or "an API method"
    what = f"{event.cloud_service_name}:{method}" if event.cloud_service_name else method
    resource = fields.get("gcp.audit.resource_name")
    project = fields.get("cloud.project.id")
    code = fields.get("gcp.audit.status.code")
    on = f" on {resource}" if resource else ""
    where = f" in {project}" if project else ""
    failed = f" (failed, code {code})" if event.outcome == "failure" else ""
    return f"{who} called {what}{on}{where}{failed}"


def _time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise NormalizationError("entry without a timestamp")
    try:
        moment = datetime.fromisoformat(_FRACTION.sub(r"\1", value))
    except ValueError as err:
        raise NormalizationError(f"timestamp {value!r} is not RFC 3339") from err
    if moment.tzinfo is None:
        raise NormalizationError(f"timestamp {value!r} has no time zone")
    return moment.astimezone(UTC)


def _put(fields: dict[str, Any], name: str, value: str | None) -> None:
    if value:
        fields[name] = value


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _obj(node: dict[str, Any], key: str) -> dict[str, Any]:
    found = node.get(key)
    return found if isinstance(found, dict) else {}
