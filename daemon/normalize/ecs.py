"""Events that arrive already in ECS form (exports of another auditcorr, other tools).

A payload is one ECS document, a JSON array of them, or JSON lines.
"""

from __future__ import annotations

from typing import Any

import orjson

from connectors.base import NormalizationError
from daemon.model import AuditEvent
from daemon.normalize import Limits


def decode(payload: bytes, limits: Limits) -> list[Any]:
    if len(payload) > limits.max_payload_bytes:
        raise NormalizationError(f"payload size exceeds {limits.max_payload_bytes} bytes")
    try:
        parsed = orjson.loads(payload)
    except orjson.JSONDecodeError:
        try:
            return [orjson.loads(line) for line in payload.splitlines() if line.strip()]
        except orjson.JSONDecodeError as err:
            raise NormalizationError(f"neither JSON nor JSON lines: {err}") from err
    return parsed if isinstance(parsed, list) else [parsed]


def normalize(record: Any) -> AuditEvent:
    if not isinstance(record, dict):
        raise NormalizationError(f"an ECS document is a JSON object, not {type(record).__name__}")
    try:
        return AuditEvent.from_document(record)
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise NormalizationError(f"not an ECS event document: {type(err).__name__}: {err}") from err
