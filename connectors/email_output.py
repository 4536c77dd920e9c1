"""Output ``email``: alerts by SMTP (aiosmtplib) with STARTTLS or implicit TLS and auth.

``smtp://host:587`` upgrades with STARTTLS (required unless ``starttls`` is
false, for a relay on localhost); ``smtps://host:465`` speaks TLS from the
first byte.  A connection per message: alerts are rare, and a relay
restarting between two is then harmless.
"""

from __future__ import annotations

import ssl
from typing import Literal
from zoneinfo import ZoneInfo

import aiosmtplib
from pydantic import field_validator

from connectors.base import AuthError, Notification, Output, PermanentError, TransientError
from connectors.config import ExistingFile
from connectors.endpoint import LoginConfig
from connectors.messages.mail import email_message

PORTS = {"smtp": 587, "smtps": 465}


class EmailConfig(LoginConfig):
    ports = PORTS
    type: Literal["email"] = "email"
    endpoint: str
    """``smtp://host:587`` (STARTTLS) or ``smtps://host:465`` (implicit TLS)."""
    sender: str
    """The ``From`` address."""
    recipients: list[str]
    starttls: bool = True
    """For ``smtp://``: refuse to send unless the server upgrades to TLS."""
    ca_file: ExistingFile | None = None
    alert_url: str | None = None
    """Link to the alert in the web timeline, with ``{id}``."""

    @field_validator("recipients")
    @classmethod
    def _recipients(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one address")
        return value


class EmailOutput(Output):
    config_model = EmailConfig
    config: EmailConfig

    async def send(self, notification: Notification) -> None:
        config = self.config
        target = config.target
        message = email_message(
            notification,
            ZoneInfo(self.context.timezone),
            sender=config.sender,
            recipients=config.recipients,
            link=config.alert_url,
        )
        implicit = target.scheme == "smtps"
        context = ssl.create_default_context(cafile=str(config.ca_file) if config.ca_file else None)
        try:
            await aiosmtplib.send(
                message,
                hostname=target.host,
                port=target.port,
                username=config.username,
                password=config.password.reveal() if config.password else None,
                use_tls=implicit,
                start_tls=None if implicit else (True if config.starttls else None),
                tls_context=context,
                timeout=config.timeout_secs,
            )
        except aiosmtplib.SMTPAuthenticationError as err:
            raise AuthError(f"SMTP: {err}") from err
        except aiosmtplib.SMTPResponseException as err:
            if 500 <= err.code < 600:
                raise PermanentError(f"SMTP {err.code}: {err.message}") from err
            raise TransientError(f"SMTP {err.code}: {err.message}") from err
        except (aiosmtplib.SMTPException, OSError) as err:
            raise TransientError(f"SMTP: {err}") from err
