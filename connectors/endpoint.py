"""Parsing ``endpoint`` URLs of the non-HTTP outputs: ``scheme://host:port``."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True, slots=True)
class Endpoint:
    scheme: str
    host: str
    port: int


def parse_endpoint(value: str, ports: dict[str, int]) -> Endpoint:
    """``value`` split into scheme, host and port; ``ports`` maps each allowed scheme to its
    default port.  Raises ValueError naming the allowed forms."""
    forms = ", ".join(f"{scheme}://host:{port}" for scheme, port in ports.items())
    parts = urlsplit(value)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in ports or not parts.hostname or port == -1:
        raise ValueError(f"expected {forms}")
    return Endpoint(parts.scheme, parts.hostname, port or ports[parts.scheme])
