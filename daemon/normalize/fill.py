"""Setters of the ECS fields every program normalizer fills the same way.

Shared by ``programs`` (accounts, services, packages) and ``auth`` (logins,
PAM, su, sudo), so a user or an address lands in ``related.*`` whichever
program named it.
"""

from __future__ import annotations

import functools
import ipaddress

from daemon.model import AuditEvent


def set_action(
    event: AuditEvent,
    action: str,
    category: list[str],
    types: list[str],
    outcome: str | None = None,
) -> None:
    """Copies the lists: forms share theirs, and an event's document holds its own."""
    event.action = action
    event.category = list(category)
    event.type = list(types)
    event.outcome = outcome


def user(event: AuditEvent, name: str | None) -> None:
    if name:
        event.user_name = name
        related_user(event, name)


def related_user(event: AuditEvent, name: str) -> None:
    if name not in event.related_user:
        event.related_user.append(name)


def target(event: AuditEvent, name: str | None) -> None:
    if name:
        event.user_target_name = name
        related_user(event, name)


def effective(event: AuditEvent, name: str | None) -> None:
    """The account a command or shell runs as (sudo's ``USER=``, su's target)."""
    if name:
        event.fields["user.effective.name"] = name
        related_user(event, name)


@functools.lru_cache(maxsize=4096)
def canonical_ip(address: str) -> str | None:
    """The address in canonical form (matches CloudTrail's ``source.ip``), or None."""
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


def source(event: AuditEvent, address: str | None, port: str | None = None) -> None:
    """``source.ip`` for an address, ``source.address`` for a host name."""
    if not address:
        return
    ip = canonical_ip(address)
    if ip is None:
        event.source_address = address
    else:
        event.source_ip = ip
        if ip not in event.related_ip:
            event.related_ip.append(ip)
    if port:
        event.fields["source.port"] = int(port)
