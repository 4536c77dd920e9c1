"""The S3 objects an SQS message announces, whatever wrapped the notification.

A queue that receives "a new CloudTrail file" can be fed four ways: S3 event
notifications sent to SQS directly, the same sent through SNS (the message is
a JSON string inside an SNS envelope), the SNS notification CloudTrail itself
sends per file (``s3Bucket`` / ``s3ObjectKey``), or EventBridge "Object
Created" events.  S3 sends ``s3:TestEvent`` when a notification is set up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

import orjson

from connectors.base import NormalizationError


@dataclass(frozen=True, slots=True)
class ObjectRef:
    bucket: str
    key: str
    size: int | None = None


def announced_objects(body: str) -> list[ObjectRef]:
    """The objects a message body names; [] for a test event.

    Raises NormalizationError for a body of another shape.
    """
    document = _json(body)
    if document.get("Type") == "Notification" and isinstance(document.get("Message"), str):
        document = _json(document["Message"])
    if document.get("Event") == "s3:TestEvent":
        return []
    if "Records" in document:
        return [_from_s3_record(record) for record in _list(document["Records"], "Records")]
    if "s3ObjectKey" in document:
        bucket = document.get("s3Bucket")
        if not isinstance(bucket, str):
            raise NormalizationError("CloudTrail notification without 's3Bucket'")
        keys = _list(document["s3ObjectKey"], "s3ObjectKey")
        return [ObjectRef(bucket, str(key)) for key in keys]
    detail = document.get("detail")
    if document.get("detail-type") == "Object Created" and isinstance(detail, dict):
        try:
            return [ObjectRef(detail["bucket"]["name"], detail["object"]["key"])]
        except (KeyError, TypeError) as err:
            raise NormalizationError(f"EventBridge Object Created without {err}") from err
    raise NormalizationError("not an S3, SNS, CloudTrail or EventBridge notification")


def _from_s3_record(record: Any) -> ObjectRef:
    try:
        s3 = record["s3"]
        size = s3["object"].get("size")
        # Keys in S3 event notifications are URL-encoded (spaces as '+').
        return ObjectRef(s3["bucket"]["name"], unquote_plus(s3["object"]["key"]), size)
    except (KeyError, TypeError, AttributeError) as err:
        raise NormalizationError(f"S3 event record without {err}") from err


def _json(text: str) -> dict[str, Any]:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as err:
        raise NormalizationError(f"message is not JSON: {err}") from err
    if not isinstance(value, dict):
        raise NormalizationError(f"message is a JSON {type(value).__name__}, not an object")
    return value


def _list(value: Any, name: str) -> list[Any]:
    if not isinstance(value, list):
        raise NormalizationError(f"'{name}' is not an array")
    return value
