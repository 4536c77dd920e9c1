"""Which events a Sigma ``logsource`` selects, and where its field names live.

SigmaHQ rules name fields the way the source logs them (CloudTrail's
``eventName``, auditd's ``exe``); the timeline holds ECS documents that keep
the original record under ``original``.  A :class:`Source` says, for one
logsource, which ``event.dataset`` values it covers, what else an event must
be (``process.name`` = ``sshd``), and how a rule's field name becomes a
path into the document.  Field names not mapped are taken as ECS paths, so a
rule may always name ECS fields (``source.ip``) directly; any other name is
looked up in the original record (CloudTrail) or under the source's prefix
(``auditd.log``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from daemon.rules.change import is_change_class

ECS_ROOTS = frozenset(
    {
        "@timestamp",
        "actor",
        "auditd",
        "cloud",
        "destination",
        "ecs",
        "error",
        "event",
        "file",
        "group",
        "host",
        "labels",
        "log",
        "message",
        "network",
        "original",
        "package",
        "process",
        "related",
        "service",
        "source",
        "system",
        "tags",
        "tls",
        "url",
        "user",
        "user_agent",
    }
)
"""Top-level names of the ECS document: a rule field starting with one is an ECS
path.  No CloudTrail or auditd field name is among them (``userIdentity``,
``eventName``, ``exe`` are not), so one lookup per field is enough."""


@dataclass(frozen=True, slots=True)
class Source:
    """What one Sigma logsource means on the timeline."""

    datasets: tuple[str, ...]
    where: dict[str, str] = field(default_factory=dict)
    """Further ECS fields the event must equal (lower-cased compare)."""
    original_first: bool = False
    """Field names that are not ECS paths are the original record's."""
    fields: dict[str, str] = field(default_factory=dict)
    """Sigma field name -> ECS path."""
    prefix: str | None = None
    """Unmapped names that are not ECS paths live under this object."""
    index_field: str | None = None
    """The field whose literal values index rules (``eventName``)."""
    native: Callable[[dict[str, Any]], bool] | None = None
    """A check in Python the event must pass too, for what Sigma cannot say
    (``is_change_class`` for the ``change`` category)."""

    def paths(self, name: str) -> list[tuple[str, ...]]:
        """The document path of a rule's field name (a list: getters accept several)."""
        mapped = self.fields.get(name)
        if mapped is not None:
            return [tuple(mapped.split("."))]
        parts = tuple(name.split("."))
        if parts[0] in ECS_ROOTS:
            return [parts]
        if self.original_first:
            return [("original", *parts)]
        if self.prefix is not None:
            return [(*self.prefix.split("."), *parts)]
        return [parts]


_CLOUDTRAIL = Source(("aws.cloudtrail",), original_first=True, index_field="eventName")
_AUTH = ("system.auth",)
_SYSLOG_ALL = ("system.auth", "system.syslog")
_AUDITD = Source(
    ("auditd.log",),
    fields={"type": "auditd.log.record_type"},
    prefix="auditd.log",
)
_PROCESS_FIELDS = {
    "Image": "process.executable",
    "CommandLine": "process.command_line",
    "CurrentDirectory": "process.working_directory",
    "ParentImage": "process.parent.executable",
    "ParentCommandLine": "process.parent.command_line",
    "User": "user.name",
    "LogonId": "user.audit.id",
}

SOURCES: dict[tuple[str | None, str | None, str | None], Source] = {
    ("aws", "cloudtrail", None): _CLOUDTRAIL,
    ("linux", None, None): Source(_SYSLOG_ALL),
    ("linux", "auth", None): Source(_AUTH),
    ("linux", "sshd", None): Source(_AUTH, where={"process.name": "sshd"}),
    ("linux", "sudo", None): Source(_AUTH, where={"process.name": "sudo"}),
    ("linux", "su", None): Source(_AUTH, where={"process.name": "su"}),
    ("linux", "syslog", None): Source(("system.syslog",)),
    ("linux", "cron", None): Source(("system.syslog",), where={"process.name": "cron"}),
    ("linux", "auditd", None): _AUDITD,
    ("linux", None, "process_creation"): Source(
        ("auditd.log",), where={"event.action": "execve"}, fields=_PROCESS_FIELDS
    ),
    ("auditcorr", None, "change"): Source(
        ("aws.cloudtrail", "system.auth", "system.syslog", "auditd.log"),
        native=is_change_class,
    ),
}
"""(product, service, category) -> source.  ``linux`` alone is the builtin
syslog rules (auth and syslog); ``process_creation`` on linux is auditd's
assembled EXECVE events; ``category: change`` of ``product: auditcorr`` is
every change-class event (``change.is_change_class``) of the cloud and the hosts."""


class UnsupportedLogsourceError(LookupError):
    pass


def source_for(product: str | None, service: str | None, category: str | None) -> Source:
    key = (
        product.lower() if product else None,
        service.lower() if service else None,
        category.lower() if category else None,
    )
    found = SOURCES.get(key)
    if found is None:
        described = ", ".join(
            f"{name}: {value}"
            for name, value in zip(("product", "service", "category"), key, strict=True)
            if value
        )
        raise UnsupportedLogsourceError(f"logsource {{{described}}} is not collected by auditcorr")
    return found
