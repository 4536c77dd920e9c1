"""Output ``webhook``: the alert document as a JSON POST, optionally signed.

The signature lets a receiver check origin and refuse replays: the header
``X-Auditcorr-Signature: sha256=<hex>`` is HMAC-SHA256 with the shared secret
over ``<timestamp>.<body>``, where ``<timestamp>`` is the Unix time in
``X-Auditcorr-Timestamp``.  ``Idempotency-Key`` carries the alert id.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Literal

import orjson

from connectors.base import Notification
from connectors.config import SecretStr
from connectors.http import HttpOutput, HttpOutputConfig
from connectors.messages.document import document


class WebhookConfig(HttpOutputConfig):
    type: Literal["webhook"] = "webhook"
    secret: SecretStr | None = None
    """Key of the HMAC-SHA256 signature; no signature header without it."""


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


class WebhookOutput(HttpOutput):
    config_model = WebhookConfig
    config: WebhookConfig

    def request(self, notification: Notification) -> tuple[bytes, dict[str, str]]:
        body = orjson.dumps(document(notification))
        headers = {"Idempotency-Key": notification.key, "X-Auditcorr-Kind": notification.kind}
        if self.config.secret is not None:
            timestamp = str(int(time.time()))
            headers["X-Auditcorr-Timestamp"] = timestamp
            headers["X-Auditcorr-Signature"] = signature(
                self.config.secret.reveal(), timestamp, body
            )
        return body, headers
