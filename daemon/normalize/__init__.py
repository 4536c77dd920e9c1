"""The normalizers of the log types: raw payloads in, ``AuditEvent`` out.

Each log type (``daemon/logtypes/``) declares its ``decode`` and ``normalize``
from a module here; this package holds what they share.  ``decode`` raises
``NormalizationError`` when a payload as a whole is unusable (truncated gzip,
not JSON, wrong shape, over a size limit), ``normalize`` for one bad record,
which the caller quarantines before it goes on.

An event whose program the normalizer knows but whose message it does not
carries the label ``UNRECOGNIZED``; the pipeline counts those per
``process.name`` for ``/metrics``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from connectors.base import NormalizationError

UNRECOGNIZED = "unrecognized"
"""The label of an event whose message no form of its program matched."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Size limits that apply to every input, whatever its transport."""

    max_payload_bytes: int = 512 * 1024 * 1024
    """Largest decompressed file or object accepted."""
    max_record_bytes: int = 1024 * 1024
    """Largest single record (serialized) accepted."""
    timezone: str = "UTC"
    """``[daemon].timezone``: the zone of times written without one (change records)."""


def json_records(payload: bytes, limits: Limits, what: str) -> list[Any]:
    """A payload holding one JSON record or a list of them, ``what`` naming them in
    the error."""
    if len(payload) > limits.max_payload_bytes:
        raise NormalizationError(f"payload size exceeds {limits.max_payload_bytes} bytes")
    try:
        parsed = orjson.loads(payload)
    except orjson.JSONDecodeError as err:
        raise NormalizationError(f"{what} are not JSON: {err}") from err
    return parsed if isinstance(parsed, list) else [parsed]
