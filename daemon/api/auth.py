"""Who may call the API: bearer tokens by role; without a token, loopback clients read.

Tokens are random strings kept in the config only as SHA-256 hashes: they are
high-entropy secrets, so a fast hash is enough and a leaked config reveals none.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from aiohttp import web

from daemon.api.replies import problem
from daemon.config import ApiToken

Role = Literal["reader", "changes", "admin"]

GRANTS: dict[str, frozenset[str]] = {
    "reader": frozenset({"reader"}),
    "changes": frozenset({"reader", "changes"}),
    "admin": frozenset({"reader", "changes", "admin"}),
}
"""What each token role may do: ``changes`` also reads, ``admin`` does everything."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def new_token() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Caller:
    name: str
    """The token's name (the access log and audit entries show it)."""
    role: str
    grants: frozenset[str]


LOOPBACK = Caller("loopback", "reader", GRANTS["reader"])
ANONYMOUS = Caller("anonymous", "none", frozenset())
"""No token, not on loopback: may call only the open routes (health, the page itself)."""

CALLER = web.RequestKey("caller", Caller)


def authenticator(tokens: list[ApiToken]) -> Callable[[web.Request], Caller]:
    """The caller of a request: its token's holder, a loopback reader, or anonymous."""
    known = [(token.hash, Caller(token.name, token.role, GRANTS[token.role])) for token in tokens]

    def identify(request: web.Request) -> Caller:
        header = request.headers.get("Authorization")
        if header is not None:
            scheme, _, presented = header.partition(" ")
            if scheme.lower() != "bearer" or not presented.strip():
                raise problem(web.HTTPUnauthorized, "expected 'Authorization: Bearer TOKEN'")
            digest = hash_token(presented.strip())
            # compare_digest against every entry: the time taken does not say which matched.
            found = [caller for hashed, caller in known if hmac.compare_digest(hashed, digest)]
            if not found:
                raise problem(web.HTTPUnauthorized, "unknown token")
            return found[0]
        return LOOPBACK if is_loopback(request) else ANONYMOUS

    return identify


def is_loopback(request: web.Request) -> bool:
    peer = request.transport.get_extra_info("peername") if request.transport else None
    if not peer:
        return False
    try:
        return ipaddress.ip_address(peer[0]).is_loopback
    except ValueError:  # a Unix socket path
        return False


def needs(role: Role) -> Callable[[Handler], Handler]:
    """Route decorator: the caller must hold ``role``."""

    def wrap(handler: Handler) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            caller = request[CALLER]
            if caller is ANONYMOUS:
                raise problem(
                    web.HTTPUnauthorized,
                    "a token is needed from this address (only loopback reads without one)",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            if role not in caller.grants:
                raise problem(web.HTTPForbidden, f"this needs a token with the {role!r} role")
            return await handler(request)

        guarded.__name__ = handler.__name__
        guarded.__doc__ = handler.__doc__
        return guarded

    return wrap
