"""Parsing ``endpoint`` URLs of the non-HTTP outputs: ``scheme://host:port``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self
from urllib.parse import urlsplit

from pydantic import field_validator, model_validator

from connectors.config import OutputConfig, SecretStr


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


class EndpointConfig(OutputConfig):
    """An output whose ``endpoint`` is ``scheme://host:port`` with the schemes of ``ports``."""

    ports: ClassVar[dict[str, int]]
    """Allowed schemes and their default ports."""

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        parse_endpoint(value, cls.ports)
        return value

    @property
    def target(self) -> Endpoint:
        return parse_endpoint(self.endpoint, self.ports)


class LoginConfig(EndpointConfig):
    """An endpoint that may ask for a user name and password."""

    username: str | None = None
    """With ``password``: both or neither."""
    password: SecretStr | None = None

    @model_validator(mode="after")
    def _credentials(self) -> Self:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password: both or neither")
        return self
