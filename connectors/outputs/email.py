"""Output ``email``: alerts by SMTP (aiosmtplib) with STARTTLS or implicit TLS and auth.

``smtp://host:587`` upgrades with STARTTLS (required unless ``starttls`` is
false, for a relay on localhost); ``smtps://host:465`` speaks TLS from the
first byte.  A connection per message: alerts are rare, and a relay
restarting between two is then harmless.
"""

from __future__ import annotations

import ssl
from typing import Any, Literal
from zoneinfo import ZoneInfo

import aiosmtplib
from pydantic import field_validator

from connectors import reach
from connectors.base import (
    AuthError,
    Check,
    Notification,
    Output,
    PermanentError,
    TransientError,
)
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

    def _connection(self) -> dict[str, Any]:
        """How to reach and log in to the server (aiosmtplib keywords)."""
        config = self.config
        target = config.target
        implicit = target.scheme == "smtps"
        return {
            "hostname": target.host,
            "port": target.port,
            "username": config.username,
            "password": config.password.reveal() if config.password else None,
            "use_tls": implicit,
            "start_tls": None if implicit else (True if config.starttls else None),
            "tls_context": reach.tls_context(config.ca_file),
            "timeout": config.timeout_secs,
        }

    async def checks(self) -> list[Check]:
        """Connect, EHLO, STARTTLS and log in as configured, then QUIT: no mail is sent."""
        target = self.config.target
        resolved = await reach.resolve(target.host, target.port)
        if not resolved.ok:
            return [resolved]
        settings = self._connection()
        username, password = settings.pop("username"), settings.pop("password")
        name = f"SMTP session with {target.host}:{target.port}"
        steps = ["EHLO"]
        client = aiosmtplib.SMTP(**settings)
        try:
            await client.connect()
            if client.is_ehlo_or_helo_needed:
                await client.ehlo()
            if client.get_transport_info("ssl_object") is not None:
                steps.append("TLS")
            if username is not None:
                await client.login(username, password)
                steps.append(f"login as {username}")
            await client.quit()
        except aiosmtplib.SMTPAuthenticationError as err:
            hint = "check 'username' and 'password'"
            return [resolved, Check(name, False, f"login refused: {err}", hint)]
        except aiosmtplib.SMTPConnectError as err:
            cause = err.__cause__ or err
            failed = reach.unreachable(f"{target.host}:{target.port}", cause)
            return [resolved, Check(name, False, str(err), failed.hint)]
        except (aiosmtplib.SMTPException, OSError) as err:
            cause = err.__cause__ or err
            if isinstance(cause, ssl.SSLError):
                return [resolved, Check(name, False, str(cause), reach.tls_hint(cause))]
            hint = "the server answered unexpectedly; check the scheme and 'starttls'"
            return [resolved, Check(name, False, str(err), hint)]
        finally:
            client.close()
        return [resolved, Check(name, True, ", ".join(steps) + " ok; no mail sent")]

    async def send(self, notification: Notification) -> None:
        config = self.config
        message = email_message(
            notification,
            ZoneInfo(self.context.timezone),
            sender=config.sender,
            recipients=config.recipients,
            link=config.alert_url,
        )
        try:
            await aiosmtplib.send(message, **self._connection())
        except aiosmtplib.SMTPAuthenticationError as err:
            raise AuthError(f"SMTP: {err}") from err
        except aiosmtplib.SMTPRecipientsRefused as err:
            raise _every_recipient_refused(err) from err
        except aiosmtplib.SMTPResponseException as err:
            if 500 <= err.code < 600:
                raise PermanentError(f"SMTP {err.code}: {err.message}") from err
            raise TransientError(f"SMTP {err.code}: {err.message}") from err
        except (aiosmtplib.SMTPException, OSError) as err:
            raise TransientError(f"SMTP: {err}") from err


def _every_recipient_refused(err: aiosmtplib.SMTPRecipientsRefused) -> Exception:
    """aiosmtplib raises this only when no recipient was taken: final (5xx) when every
    refusal is, else worth a retry.  A mail some recipients took counts as sent."""
    reasons = "; ".join(f"{each.recipient}: {each.code} {each.message}" for each in err.recipients)
    text = f"SMTP refused every recipient: {reasons}"
    if all(500 <= each.code < 600 for each in err.recipients):
        return PermanentError(text)
    return TransientError(text)
