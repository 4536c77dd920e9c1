"""CloudTrail digest files made in the tests, in AWS's documented format, signed with a test key."""

from __future__ import annotations

import gzip
import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from connectors.cloudtrail_digests import fingerprint, signing_string
from connectors.cloudtrail_keys import parse_key, parse_stamp, stamp_of

_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_key() -> rsa.RSAPrivateKey:
    return _KEY


def write_public_key(path: Path) -> Path:
    path.write_bytes(
        _KEY.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path


def public_der() -> bytes:
    """The key as ListPublicKeys returns it: PKCS#1 DER."""
    return _KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.PKCS1
    )


@dataclass
class Digests:
    """Digest keys per account/region, oldest first."""

    keys: dict[str, list[str]] = field(default_factory=dict)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def write_digests(
    s3: Any, bucket: str, log_keys: list[str], *, trail: str = "org-trail"
) -> Digests:
    """One digest per account/region and hour of delivery, chained and signed as AWS does."""
    by_hour: dict[tuple[str, str, datetime], list[str]] = defaultdict(list)
    prefixes: dict[str, str] = {}
    for key in log_keys:
        parsed = parse_key(key)
        stamp = stamp_of(key.rpartition("/")[2])
        assert parsed
        assert stamp
        hour = parse_stamp(stamp).replace(minute=0)
        by_hour[(parsed.account, parsed.region, hour)].append(key)
        prefixes[parsed.stream] = key.split("/CloudTrail/")[0]
    made = Digests()
    previous: dict[str, tuple[str | None, str | None]] = {}
    for account, region, hour in sorted(by_hour, key=lambda k: k[2]):
        stream = f"{account}/{region}"
        end = hour + timedelta(hours=1)
        key = (
            f"{prefixes[stream]}/CloudTrail-Digest/{region}/{end:%Y/%m/%d}/{account}_CloudTrail-Digest_"
            f"{region}_{trail}_{region}_{end:%Y%m%dT%H%M%SZ}.json.gz"
        )
        files = []
        for log_key in by_hour[(account, region, hour)]:
            body = s3.get_object(Bucket=bucket, Key=log_key)["Body"].read()
            files.append(
                {
                    "s3Bucket": bucket,
                    "s3Object": log_key,
                    "hashValue": hashlib.sha256(gzip.decompress(body)).hexdigest(),
                    "hashAlgorithm": "SHA-256",
                    "newestEventTime": _iso(end),
                    "oldestEventTime": _iso(hour),
                }
            )
        prev_key, prev_signature = previous.get(stream, (None, None))
        digest = {
            "awsAccountId": account,
            "digestStartTime": _iso(hour),
            "digestEndTime": _iso(end),
            "digestS3Bucket": bucket,
            "digestS3Object": key,
            "digestPublicKeyFingerprint": fingerprint(_KEY.public_key()),
            "digestSignatureAlgorithm": "SHA256withRSA",
            "newestEventTime": _iso(end),
            "oldestEventTime": _iso(hour),
            "previousDigestS3Bucket": bucket if prev_key else None,
            "previousDigestS3Object": prev_key,
            "previousDigestHashValue": None,
            "previousDigestHashAlgorithm": "SHA-256" if prev_key else None,
            "previousDigestSignature": prev_signature,
            "logFiles": files,
        }
        content = orjson.dumps(digest)
        signature = _KEY.sign(signing_string(digest, content), padding.PKCS1v15(), hashes.SHA256())
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=gzip.compress(content),
            Metadata={"signature": signature.hex(), "signature-algorithm": "SHA256withRSA"},
        )
        previous[stream] = (key, signature.hex())
        made.keys.setdefault(stream, []).append(key)
    return made


SINCE = datetime(2026, 11, 20, tzinfo=UTC)
UNTIL = datetime(2026, 11, 22, tzinfo=UTC)
