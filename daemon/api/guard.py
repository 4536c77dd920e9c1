"""What every request and reply passes: the Host and Origin checks, security headers, access log.

A browser on the daemon's host can be made to send requests to the loopback
API under an attacker's DNS name (DNS rebinding); the ``Host`` check refuses
names the API is not known by, so such a page reads nothing.  The ``Origin``
check refuses state-changing requests a page of another site sends.
"""

from __future__ import annotations

import ipaddress
import time
from urllib.parse import urlsplit

import structlog
from aiohttp import web

from daemon.api.auth import Caller
from daemon.api.replies import problem
from daemon.config import ApiSection

log = structlog.get_logger()

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
        " object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Server": "auditcorr",
}
"""Sent with every reply; ``Server`` replaces aiohttp's banner, which names versions."""

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

WILDCARDS = frozenset({"0.0.0.0", "::"})  # noqa: S104 - names of the wildcard address, not a bind


def host_names(settings: ApiSection) -> frozenset[str]:
    """The DNS names a request's ``Host`` may carry (addresses are always accepted).

    An address in ``Host`` cannot be rebound, so only names need listing: the
    listen name, ``localhost`` when loopback clients can connect, and
    ``allowed_hosts``.
    """
    host = settings.address[0].lower()
    names = set(settings.allowed_hosts)
    if settings.on_loopback or host in WILDCARDS:
        names.add("localhost")
    if not _is_address(host) and host not in WILDCARDS:
        names.add(host)
    return frozenset(names)


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def host_of(header: str) -> str | None:
    """The host part of a ``Host`` header (or an origin's netloc), lower case; None if malformed."""
    try:
        parsed = urlsplit(f"//{header}")
        name = parsed.hostname
        parsed.port  # noqa: B018 - raises ValueError on a port that is no number
    except ValueError:
        return None
    return name.rstrip(".") if name else None


def host_allowed(header: str | None, names: frozenset[str]) -> bool:
    if not header:
        return False
    host = host_of(header)
    return host is not None and (_is_address(host) or host in names)


def check_request(request: web.Request, names: frozenset[str]) -> None:
    """Refuse a request for another host (421) or a cross-site state change (403)."""
    if not host_allowed(request.headers.get("Host"), names):
        raise problem(
            web.HTTPMisdirectedRequest,
            "this server does not answer for that host name; add it to [api] allowed_hosts",
        )
    origin = request.headers.get("Origin")
    if request.method not in SAFE_METHODS and origin is not None:
        own = f"{request.scheme}://{request.headers['Host']}".lower()
        if origin.lower() != own:
            raise problem(web.HTTPForbidden, f"cross-site request from {origin!r} refused")


async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: runs for every reply, errors and static files included."""
    response.headers.update(SECURITY_HEADERS)
    if request.secure:
        response.headers["Strict-Transport-Security"] = "max-age=31536000"


def log_request(request: web.Request, status: int, caller: Caller | None, started: float) -> None:
    """One line per request: who asked (token name and role) for what, and the answer."""
    log.info(
        "api_request",
        method=request.method,
        path=request.path,
        status=status,
        caller=caller.name if caller else None,
        role=caller.role if caller else None,
        peer=request.remote,
        duration_ms=round((time.monotonic() - started) * 1000, 1),
    )
