"""Shared HTTP delivery for the webhook and chat outputs: one session, status codes to errors.

An output subclass only builds its request body; this module owns the
session, TLS (with an optional CA file) and what each answer means for the
daemon's retry loop.
"""

from __future__ import annotations

import abc
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, Self
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import aiohttp
import orjson
from pydantic import Field

from connectors import reach
from connectors.base import (
    AuthError,
    Check,
    Notification,
    Output,
    PermanentError,
    ThrottledError,
    TransientError,
)
from connectors.config import ExistingFile, OutputConfig, SecretStr

USER_AGENT = "auditcorr"
MAX_ERROR_TEXT = 200


class HttpOutputConfig(OutputConfig):
    endpoint: SecretStr  # type: ignore[assignment]  # a webhook URL carries its token: a secret
    """``https://…`` (``env:NAME`` or ``file:/path`` keep the token out of the file)."""
    ca_file: ExistingFile | None = None
    """Trust this CA bundle instead of the system's (a private CA on-prem)."""
    headers: dict[str, str] = Field(default_factory=dict)
    """Added to every request (e.g. an ``Authorization`` the receiver wants)."""
    alert_url: str | None = None
    """Link to the alert in the web timeline, with ``{id}``."""


def retry_after_secs(value: str | None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max((moment - datetime.now(UTC)).total_seconds(), 0.0)


def check_status(status: int, retry_after: str | None, text: str) -> None:
    """Raise the error class that says what the daemon does next; return on 2xx."""
    if 200 <= status < 300:
        return
    detail = f"HTTP {status}: {text[:MAX_ERROR_TEXT]}".rstrip(": ")
    if status in (429, 503):
        raise ThrottledError(detail, retry_after_secs=retry_after_secs(retry_after))
    if status in (401, 403):
        raise AuthError(detail)
    if status == 408 or status >= 500:
        raise TransientError(detail)
    raise PermanentError(detail)


class HttpOutput(Output):
    """POSTs one request per notification to ``endpoint``."""

    config: HttpOutputConfig
    _session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        context = reach.tls_context(self.config.ca_file)
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=context, limit=self.config.concurrency),
            headers={"User-Agent": USER_AGENT, **self.config.headers},
        )
        return self

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

    @abc.abstractmethod
    def request(self, notification: Notification) -> tuple[bytes, dict[str, str]]:
        """The JSON body and the headers of one notification."""

    async def checks(self) -> list[Check]:
        """DNS, TCP connect and, for https, the TLS handshake with ``ca_file``; no request."""
        # The URL's path and query often carry the token: only host and port are named.
        parts = urlsplit(self.config.endpoint.reveal())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return [Check("endpoint", False, "not an http(s) URL", "use https://host/path")]
        tls = reach.tls_context(self.config.ca_file) if parts.scheme == "https" else None
        port = parts.port or (443 if tls else 80)
        return await reach.connect(parts.hostname, port, tls)

    async def send(self, notification: Notification) -> None:
        assert self._session is not None, "send() outside 'async with'"
        body, headers = self.request(notification)
        try:
            async with self._session.post(
                self.config.endpoint.reveal(),
                data=body,
                headers={"Content-Type": "application/json", **headers},
            ) as response:
                text = await response.text(errors="replace")
                check_status(response.status, response.headers.get("Retry-After"), text)
        except aiohttp.ClientError as err:
            raise TransientError(f"{type(err).__name__}: {err}") from err


class ChatOutput(HttpOutput):
    """An incoming-webhook chat: the body is what ``render`` makes of the notification."""

    render: ClassVar[staticmethod[[Notification, ZoneInfo, str | None], dict[str, Any]]]
    """Builds the body: one of ``connectors.messages.chat``."""

    def request(self, notification: Notification) -> tuple[bytes, dict[str, str]]:
        zone = ZoneInfo(self.context.timezone)
        body = orjson.dumps(type(self).render(notification, zone, self.config.alert_url))
        return body, {"Idempotency-Key": notification.key}
