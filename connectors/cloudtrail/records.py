"""CloudTrail records that arrive one by one as JSON text (CloudWatch Logs, LookupEvents).

Such APIs hand out each record as a string; the source joins the valid ones
into one ``{"Records": [...]}`` payload for the CloudTrail normalizer and
quarantines the others one by one, naming where each came from.
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson

from connectors.base import Checkpoint, RawBatch

NOT_A_RECORD = "not a CloudTrail record (JSON object)"


def record_batches(
    origin: str, messages: Iterable[tuple[str, str]], checkpoints: list[Checkpoint], *, what: str
) -> list[RawBatch]:
    """``(id, text)`` pairs as one payload with ``checkpoints``; texts that are not
    JSON objects apart, as ``origin#id`` with the reason "``what`` is not ..."."""
    records: list[bytes] = []
    bad: list[RawBatch] = []
    for ident, text in messages:
        try:
            valid = isinstance(orjson.loads(text), dict)
        except orjson.JSONDecodeError:
            valid = False
        if valid:
            records.append(text.encode())
        else:
            bad.append(
                RawBatch(
                    "cloudtrail",
                    f"{origin}#{ident}",
                    text.encode(),
                    error=f"{what} is {NOT_A_RECORD}",
                )
            )
    payload = b'{"Records":[' + b",".join(records) + b"]}"
    return [*bad, RawBatch("cloudtrail", origin, payload, checkpoints)]
