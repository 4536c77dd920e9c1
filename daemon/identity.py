"""Who is who on both sides: the identity map.

``[[identity.people]]`` ties a person to on-prem accounts (optionally per
host glob) and to cloud principals (IAM user ARNs, role-session names,
Identity Center e-mails or user names).  Resolution also understands, without
being told, an Identity Center session (``AWSReservedSSO_*/<email>``) and a
role session named after one of a person's known accounts.

Plain data with no pydantic, so the map pickles cheaply into the decoding
worker processes, which set ``actor`` on every event at ingest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from daemon import logtypes
from daemon.model import AuditEvent


@dataclass(frozen=True, slots=True)
class UnixAccount:
    name: str
    hosts: tuple[str, ...] = ()
    """Host name globs where the account is this person's; empty: every host."""

    def applies(self, host: str | None) -> bool:
        if not self.hosts:
            return True
        return host is not None and any(fnmatchcase(host.lower(), g.lower()) for g in self.hosts)


@dataclass(frozen=True, slots=True)
class Person:
    id: str
    name: str | None = None
    emails: tuple[str, ...] = ()
    unix: tuple[UnixAccount, ...] = ()
    aws: tuple[str, ...] = ()
    """IAM user or role ARNs (globs allowed), role-session names, Identity
    Center e-mails or user names."""
    groups: tuple[str, ...] = ()

    @property
    def aws_arns(self) -> tuple[str, ...]:
        return tuple(a for a in self.aws if a.startswith("arn:"))

    @property
    def aws_names(self) -> tuple[str, ...]:
        return tuple(a.lower() for a in self.aws if not a.startswith("arn:"))

    @property
    def known_accounts(self) -> set[str]:
        """Names a role session may be named after: the id, every account
        valid on all hosts, IAM user names of the ARNs, e-mail local parts."""
        names = {self.id.lower()}
        names.update(u.name.lower() for u in self.unix if not u.hosts)
        for arn in self.aws_arns:
            _, marker, tail = arn.partition(":user/")
            if marker and "*" not in tail:
                names.add(tail.rsplit("/", 1)[-1].lower())
        names.update(e.partition("@")[0].lower() for e in self.all_emails)
        return names

    @property
    def all_emails(self) -> set[str]:
        return {e.lower() for e in (*self.emails, *self.aws) if "@" in e and ":" not in e}


@dataclass(frozen=True)
class IdentityMap:
    """The people of ``[[identity.people]]`` and how to find them."""

    people: tuple[Person, ...] = ()
    _index: _Index = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Resolution runs for every ingested event: look names up, do not scan people.
        object.__setattr__(self, "_index", _Index.of(self.people))

    def person(self, person_id: str) -> Person | None:
        return self._index.by_id.get(person_id)

    def groups_of(self, person_id: str) -> tuple[str, ...]:
        found = self._index.by_id.get(person_id)
        return found.groups if found else ()

    # -- resolution ------------------------------------------------------------

    def actor_of(self, event: AuditEvent) -> str | None:
        """The person id behind an event, or None when nobody in the map matches:
        the event's log type says which of its principals the map knows."""
        log_type = logtypes.of_dataset(event.dataset)
        if log_type is None:
            person = self.unix(event.user_name, event.host_name)
        else:
            person = log_type.actor(self, event)
        return person.id if person else None

    def actor_of_document(self, doc: Mapping[str, Any]) -> str | None:
        """As :meth:`actor_of`, for an ECS document (the ``actor`` set at ingest wins)."""
        actor = doc.get("actor")
        if isinstance(actor, str):
            return actor
        rebuilt = dict(doc)
        rebuilt["event"] = {"id": "", "dataset": "", **(doc.get("event") or {})}
        return self.actor_of(AuditEvent.from_document(rebuilt))

    def unix(self, account: str | None, host: str | None) -> Person | None:
        """The person an on-prem account on ``host`` belongs to."""
        if not account:
            return None
        for person, unix in self._index.unix.get(account.lower(), ()):
            if unix.applies(host):
                return person
        return None

    def cloud(self, arn: str | None, user_name: str | None) -> Person | None:
        """The person behind a cloud principal: its ARN (or other full name) and its
        user name or e-mail address."""
        index = self._index
        if arn:
            found = index.arns.get(arn)
            if found is not None:
                return found
            for pattern, person in index.arn_globs:
                if fnmatchcase(arn, pattern):
                    return person
        if not user_name:
            return None
        wanted = user_name.lower()
        found = index.aws_names.get(wanted)
        if found is None and "@" in wanted:
            # Identity Center sessions (AWSReservedSSO_*/<email>) and user names.
            found = index.emails.get(wanted)
        if found is None and _is_session(arn):
            # A role session named after one of the person's accounts.
            found = index.accounts.get(wanted)
        return found

    def lookup(self, name: str) -> list[Person]:
        """Everyone a name can mean: id, display name, e-mail, account or principal."""
        index = self._index
        found = list(index.names.get(name.lower(), ()))
        found += [p for p in (index.arns.get(name),) if p is not None and p not in found]
        found += [p for g, p in index.arn_globs if fnmatchcase(name, g) and p not in found]
        return found


@dataclass(frozen=True, slots=True)
class _Index:
    """Names to people; where two people claim a name, the first in the config wins."""

    by_id: dict[str, Person]
    unix: dict[str, list[tuple[Person, UnixAccount]]]
    arns: dict[str, Person]
    arn_globs: list[tuple[str, Person]]
    aws_names: dict[str, Person]
    emails: dict[str, Person]
    accounts: dict[str, Person]
    names: dict[str, list[Person]]
    """Every name a person goes by, for :meth:`IdentityMap.lookup`."""

    @classmethod
    def of(cls, people: Iterable[Person]) -> _Index:
        index = cls({}, {}, {}, [], {}, {}, {}, {})
        for person in people:
            names = {person.id, *(u.name for u in person.unix), *person.aws_names}
            names |= person.all_emails | person.known_accounts
            if person.name:
                names.add(person.name)
            for name in names:
                index.names.setdefault(name.lower(), []).append(person)
            index.by_id.setdefault(person.id, person)
            for unix in person.unix:
                index.unix.setdefault(unix.name.lower(), []).append((person, unix))
            for arn in person.aws_arns:
                if any(c in arn for c in "*?["):
                    index.arn_globs.append((arn, person))
                else:
                    index.arns.setdefault(arn, person)
            for name in person.aws_names:
                index.aws_names.setdefault(name, person)
            for email in person.all_emails:
                index.emails.setdefault(email, person)
            for account in person.known_accounts:
                index.accounts.setdefault(account, person)
        return index


def _is_session(arn: str | None) -> bool:
    """A role or federation session, whose name its caller chose."""
    return arn is not None and (":assumed-role/" in arn or ":federated-user/" in arn)


def build(people: Iterable[Mapping[str, Any]]) -> IdentityMap:
    """The map from validated ``[[identity.people]]`` entries (as dicts)."""
    built = []
    for entry in people:
        unix = []
        for account in entry.get("unix", []):
            if isinstance(account, str):
                unix.append(UnixAccount(account))
            else:
                unix.append(UnixAccount(account["name"], tuple(account.get("hosts", []))))
        built.append(
            Person(
                id=entry["id"],
                name=entry.get("name"),
                emails=tuple(entry.get("email", [])),
                unix=tuple(unix),
                aws=tuple(entry.get("aws", [])),
                groups=tuple(entry.get("groups", [])),
            )
        )
    return IdentityMap(tuple(built))
