"""CloudTrail digest files made in the tests as CloudTrail makes them, from AWS's documentation.

Nothing here comes from the product, so a misreading of the format in the
product cannot hide in both.  The sources are the CloudTrail User Guide pages
"CloudTrail digest file structure" and "Validating CloudTrail log file
integrity with the AWS CLI" (custom implementations):

- a digest per account, region and hour, at ``.../CloudTrail-Digest/REGION/
  YYYY/MM/DD/ACCOUNT_CloudTrail-Digest_REGION_TRAIL_HOMEREGION_ENDSTAMP.json.gz``,
  gzipped JSON listing each log file with the hex SHA-256 of its uncompressed
  contents;
- signed SHA256withRSA (PKCS#1 v1.5) over ``digestEndTime \\n digestS3Bucket/
  digestS3Object \\n hex(SHA-256 of the uncompressed digest) \\n
  previousDigestSignature``, the last being the string ``null`` for the first
  digest of a chain; the hex signature is in the object's metadata
  ``signature``, the algorithm in ``signature-algorithm``;
- each digest names the previous one of its account/region
  (``previousDigestS3Bucket``/``S3Object``, the hex SHA-256 of its uncompressed
  contents in ``previousDigestHashValue``, its signature in
  ``previousDigestSignature``); in the first digest of a chain they are null;
- ListPublicKeys gives each key as PKCS#1 DER with a fingerprint, which the
  digest names in ``digestPublicKeyFingerprint``; the fingerprint is taken as
  the hex MD5 of that DER (32 hex digits, as in AWS's sample digest).
"""

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
from lookupserver import PublicKey

SINCE = datetime(2026, 11, 20, tzinfo=UTC)
UNTIL = datetime(2026, 11, 22, tzinfo=UTC)
HOME_REGION = "us-east-1"
"""The region the test trail was created in, part of every digest's name."""


@dataclass(frozen=True)
class SigningKey:
    """A CloudTrail digest signing key and the period ListPublicKeys gives it for."""

    private: rsa.RSAPrivateKey
    valid_from: datetime = SINCE - timedelta(days=30)
    valid_until: datetime = UNTIL + timedelta(days=30)

    @classmethod
    def generate(cls, **period: datetime) -> SigningKey:
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=2048), **period)

    @property
    def der(self) -> bytes:
        """The public key as ListPublicKeys returns it: PKCS#1 RSAPublicKey, DER."""
        return self.private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.PKCS1
        )

    @property
    def fingerprint(self) -> str:
        return hashlib.md5(self.der).hexdigest()

    def listed(self) -> PublicKey:
        """This key as the ListPublicKeys stand-in serves it."""
        return PublicKey(self.der, self.valid_from, self.valid_until, self.fingerprint)

    def write_pem(self, path: Path) -> Path:
        path.write_bytes(
            self.private.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        return path

    def sign(self, digest: dict[str, Any], content: bytes) -> str:
        """The hex SHA256withRSA signature of ``digest``; ``content``: its uncompressed bytes."""
        previous = digest["previousDigestSignature"]
        text = (
            f"{digest['digestEndTime']}\n"
            f"{digest['digestS3Bucket']}/{digest['digestS3Object']}\n"
            f"{hashlib.sha256(content).hexdigest()}\n"
            f"{'null' if previous is None else previous}"
        )
        return self.private.sign(text.encode(), padding.PKCS1v15(), hashes.SHA256()).hex()


TRAIL_KEY = SigningKey.generate()
"""The key the test trail's digests are signed with."""


def write_public_key(path: Path) -> Path:
    """The trail key's public half as a PEM file, for offline verification."""
    return TRAIL_KEY.write_pem(path)


@dataclass
class Digests:
    """Digest keys per account/region, oldest first."""

    keys: dict[str, list[str]] = field(default_factory=dict)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class _LogKey:
    """What a log file's key says: where its digest goes and which hour it belongs to."""

    root: str
    """``[prefix/]AWSLogs/[o-ORG/]ACCOUNT``"""
    account: str
    region: str
    hour: datetime

    @classmethod
    def parse(cls, key: str) -> _LogKey:
        root, _, rest = key.partition("/CloudTrail/")
        region, _, rest = rest.partition("/")
        stamp = rest.rpartition("/")[2].split("_")[3]
        delivered = datetime.strptime(stamp, "%Y%m%dT%H%MZ").replace(tzinfo=UTC)
        return cls(root, root.rpartition("/")[2], region, delivered.replace(minute=0))


def write_digests(
    s3: Any,
    bucket: str,
    log_keys: list[str],
    *,
    trail: str = "org-trail",
    signer: SigningKey = TRAIL_KEY,
) -> Digests:
    """One digest per account/region and hour of delivery, chained and signed as AWS does.

    Each call starts new chains: the first digest of each account/region has
    null previous-digest fields, as after logging was turned on.
    """
    by_hour: dict[tuple[str, str, datetime], list[str]] = defaultdict(list)
    roots: dict[tuple[str, str], str] = {}
    for key in log_keys:
        parsed = _LogKey.parse(key)
        by_hour[(parsed.account, parsed.region, parsed.hour)].append(key)
        roots[(parsed.account, parsed.region)] = parsed.root
    made = Digests()
    previous: dict[tuple[str, str], tuple[str, bytes, str]] = {}
    for account, region, hour in sorted(by_hour, key=lambda k: (k[2], k[0], k[1])):
        end = hour + timedelta(hours=1)
        key = (
            f"{roots[(account, region)]}/CloudTrail-Digest/{region}/{end:%Y/%m/%d}/"
            f"{account}_CloudTrail-Digest_{region}_{trail}_{HOME_REGION}_{end:%Y%m%dT%H%M%SZ}.json.gz"
        )
        files = [_listed(s3, bucket, k, hour, end) for k in by_hour[(account, region, hour)]]
        before = previous.get((account, region))
        digest = {
            "awsAccountId": account,
            "digestStartTime": _iso(hour),
            "digestEndTime": _iso(end),
            "digestS3Bucket": bucket,
            "digestS3Object": key,
            "digestPublicKeyFingerprint": signer.fingerprint,
            "digestSignatureAlgorithm": "SHA256withRSA",
            "newestEventTime": _iso(end),
            "oldestEventTime": _iso(hour),
            "previousDigestS3Bucket": bucket if before else None,
            "previousDigestS3Object": before[0] if before else None,
            "previousDigestHashValue": hashlib.sha256(before[1]).hexdigest() if before else None,
            "previousDigestHashAlgorithm": "SHA-256" if before else None,
            "previousDigestSignature": before[2] if before else None,
            "logFiles": files,
        }
        content = orjson.dumps(digest)
        signature = signer.sign(digest, content)
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=gzip.compress(content),
            Metadata={"signature": signature, "signature-algorithm": "SHA256withRSA"},
        )
        previous[(account, region)] = (key, content, signature)
        made.keys.setdefault(f"{account}/{region}", []).append(key)
    return made


def _listed(s3: Any, bucket: str, key: str, hour: datetime, end: datetime) -> dict[str, Any]:
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return {
        "s3Bucket": bucket,
        "s3Object": key,
        "hashValue": hashlib.sha256(gzip.decompress(body)).hexdigest(),
        "hashAlgorithm": "SHA-256",
        "newestEventTime": _iso(end),
        "oldestEventTime": _iso(hour),
    }
