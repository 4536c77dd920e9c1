"""Google Cloud Audit Logs: Admin Activity, Data Access, System Event and Policy Denied
entries as a Cloud Logging sink writes them (``daemon/normalize/gcp_audit.py``, after
Elastic's ``gcp.audit`` mapping).

A change is a successful Admin Activity entry: Google writes those for every
call that changes configuration or metadata, and Data Access entries for reads
and writes of data.  Its scope action is ``<service>:<methodName>``
(``compute:v1.compute.instances.stop``), its resource the entry's
``resourceName`` (``projects/prod-123/zones/europe-west1-b/instances/web-1``),
and a change record restricts its project with ``scope.gcp_projects``.  Its
principal is an e-mail address (a Google account or a service account), which
the identity map knows from a person's ``email`` (or ``aws``) entries.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from daemon.logtypes import Logsource, LogType, Resource, child
from daemon.model import AuditEvent
from daemon.normalize import gcp_audit

if TYPE_CHECKING:
    from daemon.identity import IdentityMap, Person


def is_change(doc: Mapping[str, Any]) -> bool:
    """A successful Admin Activity entry."""
    audit = child(child(doc, "gcp"), "audit")
    return (
        audit.get("log") == gcp_audit.ACTIVITY and child(doc, "event").get("outcome") == "success"
    )


def change_action(doc: Mapping[str, Any]) -> str | None:
    """``compute:v1.compute.instances.stop``: the service's short name and the method."""
    action = child(doc, "event").get("action")
    service = child(child(doc, "cloud"), "service").get("name")
    return f"{service}:{action}" if isinstance(action, str) and service else None


def resources(doc: Mapping[str, Any]) -> list[Resource]:
    """The entry's ``resourceName``: its last part as the id, the whole as the full name."""
    name = child(child(doc, "gcp"), "audit").get("resource_name")
    if not isinstance(name, str) or not name:
        return []
    return [Resource(name.rstrip("/").rsplit("/", 1)[-1], name)]


def actor(identities: IdentityMap, event: AuditEvent) -> Person | None:
    """The person whose e-mail address (or listed principal) made the call."""
    return identities.cloud(None, event.user_name)


def index_words(event: AuditEvent) -> list[Any]:
    """The resource name and a failed call's status message."""
    fields = event.fields
    return [
        fields.get("cloud.project.id"),
        fields.get("gcp.audit.resource_name"),
        fields.get("gcp.audit.status.message"),
    ]


def claims_file(name: str, head: bytes) -> bool:
    """Files of LogEntry JSON: they name their log (``logName``) and hold a ``protoPayload``."""
    return name.endswith((".json", ".json.gz")) and b'"protoPayload"' in head


LOG_TYPE = LogType(
    name="gcp_audit",
    decode=gcp_audit.decode,
    normalize=gcp_audit.normalize,
    actor=actor,
    datasets=(gcp_audit.DATASET,),
    lane="cloud",
    label="GCP",
    # SigmaHQ's gcp rules name Elastic's fields (gcp.audit.method_name), kept as they are.
    logsources={("gcp", "gcp.audit", None): Logsource((gcp_audit.DATASET,))},
    is_change=is_change,
    change_action=change_action,
    resources=resources,
    account="cloud.project.id",
    scope={"gcp_projects": "cloud.project.id"},
    index_words=index_words,
    claims_file=claims_file,
)
