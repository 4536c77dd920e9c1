"""Reading and listing S3 objects with errors that say what to fix.

An AccessDenied on GetObject has two different causes an operator fixes in
different places: the bucket policy / IAM policy (``s3:GetObject``) or, for
SSE-KMS objects, the KMS key policy (``kms:Decrypt``).  HeadObject needs no
KMS permission, so it tells the two apart and names the key.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from connectors.aws.access import error_code, kms_denied, translate
from connectors.base import AuthError, PermanentError

_DENIED = {"AccessDenied", "Forbidden", "403"}
_GONE = {"NoSuchKey", "404", "NotFound"}


class ObjectGoneError(PermanentError):
    """The object is not (or no longer) in the bucket."""


def read_object(client: Any, bucket: str, key: str, *, max_bytes: int) -> bytes:
    """The object's bytes (SSE-S3 and SSE-KMS decrypt on the server).

    Raises AuthError (denied: fix a policy), TransientError (throttled, 5xx,
    network: retry later) or PermanentError (gone, too large: skip it).
    """
    where = f"s3://{bucket}/{key}"
    try:
        answer = client.get_object(Bucket=bucket, Key=key)
        size = int(answer.get("ContentLength", 0))
        body = answer["Body"]
        try:
            if size > max_bytes:
                raise PermanentError(f"object of {size} bytes exceeds max_object_bytes")
            return bytes(body.read())
        finally:
            body.close()
    except ClientError as err:
        code = error_code(err)
        if code in _GONE:
            raise ObjectGoneError(f"{where}: object vanished before it was read") from err
        if code in _DENIED:
            raise _denied(client, bucket, key, err) from err
        raise translate(err, where) from err
    except BotoCoreError as err:
        raise translate(err, where) from err


def _denied(client: Any, bucket: str, key: str, err: ClientError) -> AuthError:
    where = f"s3://{bucket}/{key}"
    try:
        head = client.head_object(Bucket=bucket, Key=key)
    except (ClientError, BotoCoreError):
        head = {}
    if head.get("ServerSideEncryption") == "aws:kms" or "kms:" in str(err):
        return kms_denied(str(head.get("SSEKMSKeyId", "the bucket's KMS key")), where, err)
    return AuthError(
        f"{where}: S3 denied: the role needs s3:GetObject on arn:aws:s3:::{bucket}/*"
        f" ({error_code(err)}: {err.response.get('Error', {}).get('Message', '')})"
    )


def list_keys(
    client: Any, bucket: str, prefix: str, *, start_after: str | None = None
) -> Iterator[dict[str, Any]]:
    """Every object under ``prefix`` (key order), optionally after ``start_after``."""
    where = f"s3://{bucket}/{prefix}"
    args: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
    if start_after:
        args["StartAfter"] = start_after
    try:
        for page in client.get_paginator("list_objects_v2").paginate(**args):
            yield from page.get("Contents", [])
    except (ClientError, BotoCoreError) as err:
        raise _listing_error(err, bucket, where) from err


def list_folders(client: Any, bucket: str, prefix: str) -> list[str]:
    """The names of the ``/``-delimited folders right below ``prefix``."""
    where = f"s3://{bucket}/{prefix}"
    found: list[str] = []
    try:
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix, Delimiter="/"
        )
        for page in pages:
            folders = page.get("CommonPrefixes", [])
            found += [p["Prefix"][len(prefix) :].rstrip("/") for p in folders]
    except (ClientError, BotoCoreError) as err:
        raise _listing_error(err, bucket, where) from err
    return found


def _listing_error(err: Exception, bucket: str, where: str) -> Exception:
    if isinstance(err, ClientError):
        code = error_code(err)
        if code == "NoSuchBucket":
            return PermanentError(f"{where}: bucket {bucket!r} does not exist")
        if code in _DENIED:
            return AuthError(f"{where}: S3 denied: the role needs s3:ListBucket on {bucket}")
    return translate(err, where)
