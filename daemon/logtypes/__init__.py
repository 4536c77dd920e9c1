"""Log types as units: the one registry the daemon asks about a family of logs.

A log type is one module under ``daemon/logtypes/`` declaring a
:class:`LogType`: how a payload is decoded and a record normalized to ECS,
the Sigma logsources it answers, which of its events are changes and what
they touch, how its principals meet the identity map, its lane and label on
the timeline page, the words its events add to the search index, and which
files ``auditcorr rules test`` reads as its own.  The rules, the change
coverage, the identity map, the API and the offline runner ask this module
and name no log type themselves (an import-linter contract keeps them off the
log-type modules).

``REGISTRY`` maps the ``log_type`` a source tags its records with to the
module; modules load when first asked for, the decoding workers only load the
ones their sources use.  Questions about an ECS document (is it a change, who
is behind it) go to the log type that declares the document's
``event.dataset``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from functools import cache
from typing import TYPE_CHECKING, Any

from daemon.model import AuditEvent
from daemon.normalize import Limits

if TYPE_CHECKING:
    from daemon.identity import IdentityMap, Person
    from daemon.store.units import BookEntry

REGISTRY: dict[str, str] = {
    "alert": "daemon.logtypes.alert",
    "audit": "daemon.logtypes.audit",
    "auditd": "daemon.logtypes.auditd",
    "change": "daemon.logtypes.change",
    "cloudtrail": "daemon.logtypes.cloudtrail",
    "ecs": "daemon.logtypes.ecs",
    "gcp_audit": "daemon.logtypes.gcp_audit",
    "journald": "daemon.logtypes.journald",
    "syslog": "daemon.logtypes.syslog",
}
"""``log_type`` name -> the module whose ``LOG_TYPE`` declares it."""

LogsourceKey = tuple[str | None, str | None, str | None]
"""A Sigma logsource: (product, service, category), lower case."""


@dataclass(frozen=True, slots=True)
class Resource:
    """A resource an event acts on, as a change record's ``scope.resources`` names it."""

    id: str
    arn: str | None = None
    """The provider's full name for it (an AWS ARN, a GCP resource name)."""

    def matches(self, pattern: str) -> bool:
        return any(
            fnmatchcase(name.lower(), pattern.lower()) for name in (self.id, self.arn) if name
        )


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
path.  No field name of an original record is among them (CloudTrail's
``userIdentity``, ``eventName``, auditd's ``exe`` are not), so one lookup per
field is enough."""


@dataclass(frozen=True, slots=True)
class Logsource:
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
    (change classification for the ``change`` category)."""

    def paths(self, name: str) -> list[tuple[str, ...]]:
        """The document path of a rule's field name (a list: getters accept several).

        Names not mapped are ECS paths when they start with an ECS root, so a rule
        may always name ECS fields (``source.ip``); any other name is looked up in
        the original record or under the prefix (``auditd.log``)."""
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


Document = Mapping[str, Any]
"""An ECS document as the store and the rules read it."""


def child(node: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """The object under ``key`` of a document or of one of its objects; empty when the
    event does not have it (or has something else there)."""
    found = node.get(key)
    # ``type(...) is dict`` first: an ABC check costs ten times as much, on every event.
    return found if type(found) is dict or isinstance(found, Mapping) else {}


def _no_change(doc: Document) -> bool:
    return False


def _action(doc: Document) -> str | None:
    action = (doc.get("event") or {}).get("action")
    return action if isinstance(action, str) else None


def _no_resources(doc: Document) -> list[Resource]:
    return []


def _account_on_host(identities: IdentityMap, event: AuditEvent) -> Person | None:
    return identities.unix(event.user_name, event.host_name)


def _no_words(event: AuditEvent) -> list[Any]:
    return []


def _no_file(name: str, head: bytes) -> bool:
    return False


def _as_read(name: str, mtime_ns: int, payload: bytes) -> bytes:
    return payload


@dataclass(frozen=True, slots=True)
class LogType:
    """Everything the daemon knows about one family of logs."""

    name: str
    decode: Callable[[bytes, Limits], list[Any]]
    """One payload (a whole file or object) into records; ``NormalizationError``
    when the payload as a whole is unusable."""
    normalize: Callable[[Any], AuditEvent]
    """One record to ECS; ``NormalizationError`` for one bad record."""
    datasets: tuple[str, ...] = ()
    """The ``event.dataset`` values of its events: document questions find it by these."""
    actor: Callable[[IdentityMap, AuditEvent], Person | None] = _account_on_host
    """The person behind an event through the identity map; by default the owner of
    its account (``user.name``) on its host."""
    lane: str = "onprem"
    """Its lane on the timeline page (one of ``daemon.api.lanes.LANES``)."""
    label: str | None = None
    """The badge of its events on the page (``AWS``); None: the host or source."""
    logsources: Mapping[LogsourceKey, Logsource] = field(default_factory=dict)
    """The Sigma logsources its events answer."""
    is_change: Callable[[Document], bool] = _no_change
    """The event changes something an approved change record should cover."""
    change_action: Callable[[Document], str | None] = _action
    """The event as a change record's ``scope.actions`` names it (``ec2:StopInstances``)."""
    action_kinds: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Scope action kinds of its own (``package`` of ``package:nginx``) -> the
    ``event.action`` values that make them; other kinds name the action itself
    (``ec2:StopInstances`` is ``StopInstances``)."""
    resources: Callable[[Document], list[Resource]] = _no_resources
    """What the event acts on, for ``scope.resources``."""
    account: str | None = None
    """The ECS path of the cloud account or project its events name (``cloud.account.id``)."""
    scope: Mapping[str, str] = field(default_factory=dict)
    """Change-record scope axis -> the ECS path of the value it restricts
    (``aws_accounts`` -> ``cloud.account.id``).  A record restricting a cloud axis
    its events do not tell does not cover them."""
    index_words: Callable[[AuditEvent], list[Any]] = _no_words
    """Identifiers people search for that the common fields do not hold (resource
    names, error codes): added to the index text."""
    claims_file: Callable[[str, bytes], bool] = _no_file
    """``rules test``: a file (its lower-case name and first bytes) holds its records."""
    file_payload: Callable[[str, int, bytes], bytes] = _as_read
    """``rules test``: the payload a file's bytes make (its name and modification
    time given), as a source would hand it to ``decode``."""
    selector: Callable[[Mapping[str, Any]], Callable[[Any], str | None] | None] | None = None
    """The check a source's selection settings make on each decoded record: the
    setting that drops it, or None to keep it."""
    raw_fields: Mapping[str, Callable[[Any], str | None]] = field(default_factory=dict)
    """Filter fields read off a decoded record, exactly as ``normalize`` sets them,
    so that ``keep``/``drop`` can be decided before normalizing."""
    book_entry: Callable[[Any], BookEntry | None] | None = None
    """The change record a decoded record carries, for the store's change book."""


@cache
def get(name: str) -> LogType:
    """The log type a source tags its records with (asked once per record on the read
    path, so its module is looked up once)."""
    try:
        path = REGISTRY[name]
    except KeyError:
        raise ValueError(f"no log type {name!r}") from None
    declared: LogType = importlib.import_module(path).LOG_TYPE
    return declared


def every() -> list[LogType]:
    """Every registered log type, in registry order."""
    return [get(name) for name in REGISTRY]


@cache
def _by_dataset() -> dict[str, LogType]:
    found: dict[str, LogType] = {}
    for log_type in every():
        for dataset in log_type.datasets:
            found.setdefault(dataset, log_type)
    return found


def of_dataset(dataset: Any) -> LogType | None:
    """The log type whose events carry ``event.dataset`` = ``dataset``."""
    return _by_dataset().get(dataset) if isinstance(dataset, str) else None


def of_document(doc: Document) -> LogType | None:
    event = child(doc, "event")
    return of_dataset(event.get("dataset")) if event else None


def normalize_record(log_type: str, record: Any) -> AuditEvent:
    """One record through its log type's normalizer: what a store is handed to make
    ECS documents on read."""
    return get(log_type).normalize(record)


def index_words(event: AuditEvent) -> list[Any]:
    """The words of an event's own log type for the index text."""
    found = of_dataset(event.dataset)
    return found.index_words(event) if found is not None else []


def is_change(doc: Document) -> bool:
    """The event (an ECS document) changes something an approval should cover."""
    found = of_document(doc)
    return found is not None and found.is_change(doc)


def change_datasets() -> tuple[str, ...]:
    """The datasets of every log type that has change events."""
    return tuple(
        dict.fromkeys(
            dataset
            for log_type in every()
            if log_type.is_change is not _no_change
            for dataset in log_type.datasets
        )
    )


def logsources() -> dict[LogsourceKey, Logsource]:
    """Every Sigma logsource a log type answers."""
    found: dict[LogsourceKey, Logsource] = {}
    for log_type in every():
        found.update(log_type.logsources)
    return found


def action_kinds() -> dict[str, tuple[str, ...]]:
    """Every log type's scope action kinds (see ``LogType.action_kinds``)."""
    found: dict[str, tuple[str, ...]] = {}
    for log_type in every():
        found.update(log_type.action_kinds)
    return found


def scope_axes() -> dict[str, str]:
    """Every cloud scope axis of a change record -> the ECS path it restricts."""
    found: dict[str, str] = {}
    for log_type in every():
        found.update(log_type.scope)
    return found


def of_file(name: str, head: bytes) -> LogType:
    """The log type of an event file for ``rules test``: the first to claim it."""
    for log_type in every():
        if log_type.claims_file(name.lower(), head):
            return log_type
    raise ValueError(f"{name}: no log type reads this file")
