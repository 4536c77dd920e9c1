"""CloudTrail log file integrity: digest signatures, the digest chain, per-file hashes.

Every hour CloudTrail writes, per account and region, a digest file listing
the log files it delivered with the SHA-256 of each (uncompressed), signed
with SHA256withRSA.  The signature is in the object's ``x-amz-meta-signature``
metadata (hex), the algorithm in ``x-amz-meta-signature-algorithm``, over this
string, as AWS documents it::

    digestEndTime \\n digestS3Bucket/digestS3Object \\n
    hex(SHA-256(uncompressed digest file)) \\n previousDigestSignature

Each digest names the previous one and repeats its signature, so the digests
form a chain: a deleted digest shows as a gap.  The public key is the one of
CloudTrail's ListPublicKeys whose fingerprint the digest names; files of PEM
public keys can stand in for offline checks, their fingerprint being the MD5
of the key's PKCS#1 DER form.

Digests and log files are read as CloudTrail writes them, one gzip member
each, with the verdicts of the AWS CLI's ``validate-logs`` (the tests hold the
two side by side): a digest is its first gzip member (what the signature
covers); a log file with anything after its gzip member, or not gzipped, is
modified.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from botocore.exceptions import BotoCoreError, ClientError
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from connectors.aws.access import error_code, translate
from connectors.aws.s3objects import list_keys
from connectors.base import PermanentError
from connectors.cloudtrail.keys import is_log_file, parse_stamp, stamp_of

MAX_DIGEST_BYTES = 64 * 1024 * 1024
ALGORITHM = "SHA256withRSA"
_DIGEST_STAMP = re.compile(r"_(\d{8}T\d{6}Z)\.json\.gz$")

STATUSES = ("valid", "modified", "deleted", "missing_digest", "digest_invalid", "chain_gap")
"""What a check says about a file: a log file (valid, modified, deleted, not listed in
any digest) or a digest (its signature or place does not verify, or the chain before
it is broken)."""


@dataclass(frozen=True, slots=True)
class FileResult:
    status: str
    path: str
    """``s3://bucket/key`` of the log file or digest."""
    account: str
    region: str
    at: datetime
    """When: the digest's end time, or the log file's delivery stamp."""
    detail: str = ""
    digest: str | None = None

    @property
    def failed(self) -> bool:
        return self.status != "valid"


def fingerprint(key: rsa.RSAPublicKey) -> str:
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    return hashlib.md5(der).hexdigest()  # noqa: S324 - a name for the key, as AWS uses


class PublicKeys:
    """CloudTrail's public keys by fingerprint: from ListPublicKeys, or from PEM files."""

    def __init__(self, cloudtrail: Any | None, files: Iterable[Path] = ()) -> None:
        self._cloudtrail = cloudtrail
        self._keys: dict[str, rsa.RSAPublicKey] = {}
        for path in files:
            key = serialization.load_pem_public_key(path.read_bytes())
            if not isinstance(key, rsa.RSAPublicKey):
                raise PermanentError(f"{path}: not an RSA public key")
            self._keys[fingerprint(key)] = key
        self._offline = bool(self._keys)

    def get(self, wanted: str, when: datetime) -> rsa.RSAPublicKey | None:
        if wanted not in self._keys and not self._offline and self._cloudtrail is not None:
            self._fetch(self._cloudtrail, when)
        return self._keys.get(wanted)

    def _fetch(self, cloudtrail: Any, when: datetime) -> None:
        try:
            pages = cloudtrail.get_paginator("list_public_keys").paginate(
                StartTime=when - timedelta(days=1), EndTime=when + timedelta(hours=1)
            )
            for page in pages:
                for entry in page.get("PublicKeyList", []):
                    key = serialization.load_der_public_key(bytes(entry["Value"]))
                    if isinstance(key, rsa.RSAPublicKey):
                        self._keys[str(entry["Fingerprint"])] = key
        except (ClientError, BotoCoreError) as err:
            raise translate(err, "cloudtrail:ListPublicKeys") from err


def signing_string(digest: dict[str, Any], content: bytes) -> bytes:
    previous = digest.get("previousDigestSignature") or "null"
    return (
        f"{digest['digestEndTime']}\n{digest['digestS3Bucket']}/{digest['digestS3Object']}\n"
        f"{hashlib.sha256(content).hexdigest()}\n{previous}"
    ).encode()


@dataclass
class ChainState:
    """The last digest verified in one account/region: where the next one must point."""

    key: str | None = None
    signature: str | None = None
    end: str | None = None


@dataclass
class DigestCheck:
    """What one check of an account/region's digests found."""

    results: list[FileResult]
    chain: ChainState
    """Where the next check goes on."""
    digests: int = 0
    """Digests read (valid or not)."""
    listed: list[str] = field(default_factory=list)
    """Keys of the log files the valid digests list."""
    verified: list[str] = field(default_factory=list)
    """Keys of the digests whose signature and place verified."""


@dataclass
class DigestChecker:
    """Verifies one bucket's digests and the log files they list (blocking: run in a thread)."""

    s3: Any
    bucket: str
    keys: PublicKeys

    def check(
        self,
        *,
        account: str,
        region: str,
        logs_folder: str,
        since: datetime,
        until: datetime,
        chain: ChainState | None = None,
    ) -> DigestCheck:
        """Results for the digests of one account/region that end in ``[since, until]``."""
        chain = chain or ChainState()
        digests_folder = logs_folder.replace("/CloudTrail/", "/CloudTrail-Digest/", 1)
        results: list[FileResult] = []
        listed: set[str] = set()
        digests = 0
        verified: list[str] = []
        ends: list[datetime] = []
        starts: list[datetime] = []
        for key in self._keys_in_days(digests_folder, since, until):
            found = self._digest(key)
            if found is None:
                continue
            digest, content, metadata = found
            end = _time(digest.get("digestEndTime")) or _stamp_time(key)
            if end is None or not since <= end <= until:
                continue
            digests += 1
            where = f"s3://{self.bucket}/{key}"
            signature = metadata.get("signature", "")
            failure = self._verify_digest(key, digest, content, metadata, end)
            if failure:
                results.append(FileResult("digest_invalid", where, account, region, end, failure))
                continue
            gap = self._chain_gap(digest, chain)
            if gap:
                results.append(FileResult("chain_gap", where, account, region, end, gap, key))
            chain = ChainState(key, signature, digest["digestEndTime"])
            verified.append(key)
            ends.append(end)
            starts.append(_time(digest.get("digestStartTime")) or end - timedelta(hours=1))
            for entry in digest.get("logFiles", []):
                listed.add(str(entry.get("s3Object")))
                results.append(self._log_file(entry, account, region, end, key))
        if ends:
            results += self._unlisted(
                folder=logs_folder,
                listed=listed,
                start=min(starts),
                end=max(ends),
                account=account,
                region=region,
            )
        return DigestCheck(results, chain, digests, sorted(listed), verified)

    def _keys_in_days(self, folder: str, since: datetime, until: datetime) -> list[str]:
        """Keys in the day folders from ``since`` to the day after ``until``, in one listing:
        keys sort by day, so empty days cost nothing (a long quiet stretch is not a call
        per day)."""
        first = f"{folder}{since:%Y/%m/%d}"
        end = f"{folder}{until.date() + timedelta(days=2):%Y/%m/%d}/"
        keys: list[str] = []
        for entry in list_keys(self.s3, self.bucket, folder, start_after=first):
            key = str(entry["Key"])
            if key >= end:
                break
            keys.append(key)
        return keys

    def _digest(self, key: str) -> tuple[dict[str, Any], bytes, dict[str, str]] | None:
        """The digest as JSON (empty when unreadable), its signed bytes, its object metadata."""
        try:
            answer = self.s3.get_object(Bucket=self.bucket, Key=key)
            data = answer["Body"].read(MAX_DIGEST_BYTES + 1)
        except ClientError as err:
            if error_code(err) in {"NoSuchKey", "404"}:
                return None
            raise translate(err, f"s3://{self.bucket}/{key}") from err
        unpacked = _gunzip(data)
        content = unpacked[0] if unpacked else b""
        try:
            digest = orjson.loads(content)
        except orjson.JSONDecodeError:
            digest = {}
        metadata = {str(k): str(v) for k, v in answer.get("Metadata", {}).items()}
        return (digest if isinstance(digest, dict) else {}), content, metadata

    def _verify_digest(
        self,
        key: str,
        digest: dict[str, Any],
        content: bytes,
        metadata: dict[str, str],
        end: datetime,
    ) -> str:
        """Why the digest cannot be trusted, or '' when its signature verifies."""
        if not digest:
            return "not a digest: no gzip-compressed JSON object"
        if digest.get("digestS3Bucket") != self.bucket or digest.get("digestS3Object") != key:
            return "digest names another location than where it is stored"
        if digest.get("digestSignatureAlgorithm", ALGORITHM) != ALGORITHM:
            return f"unknown signature algorithm {digest.get('digestSignatureAlgorithm')!r}"
        signature = metadata.get("signature")
        if not signature:
            return "no x-amz-meta-signature on the digest object"
        if metadata.get("signature-algorithm") != ALGORITHM:
            found = metadata.get("signature-algorithm")
            return f"x-amz-meta-signature-algorithm is {found!r}, not {ALGORITHM}"
        public = self.keys.get(str(digest.get("digestPublicKeyFingerprint")), end)
        if public is None:
            return f"no public key with fingerprint {digest.get('digestPublicKeyFingerprint')}"
        try:
            public.verify(
                bytes.fromhex(signature),
                signing_string(digest, content),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except (InvalidSignature, ValueError):
            return "signature does not verify: the digest was modified"
        return ""

    def _chain_gap(self, digest: dict[str, Any], chain: ChainState) -> str:
        previous_key = digest.get("previousDigestS3Object")
        previous_signature = digest.get("previousDigestSignature")
        if not previous_key:
            return ""
        if chain.key == previous_key:
            if chain.signature != previous_signature:
                return f"previous digest {previous_key} has another signature than this one names"
            return ""
        try:
            head = self.s3.head_object(
                Bucket=digest.get("previousDigestS3Bucket"), Key=previous_key
            )
        except ClientError as err:
            if error_code(err) in {"NoSuchKey", "404", "NotFound"}:
                return f"previous digest {previous_key} is missing"
            raise translate(err, f"s3://{self.bucket}/{previous_key}") from err
        if head.get("Metadata", {}).get("signature") != previous_signature:
            return f"previous digest {previous_key} has another signature than this one names"
        return ""

    def _log_file(
        self, entry: dict[str, Any], account: str, region: str, end: datetime, digest: str
    ) -> FileResult:
        bucket, key = str(entry.get("s3Bucket")), str(entry.get("s3Object"))
        where = f"s3://{bucket}/{key}"
        try:
            answer = self.s3.get_object(Bucket=bucket, Key=key)
            data = answer["Body"].read()
        except ClientError as err:
            if error_code(err) in {"NoSuchKey", "404"}:
                return FileResult(
                    "deleted", where, account, region, end, "listed, not in S3", digest
                )
            raise translate(err, where) from err
        unpacked = _gunzip(data)
        if unpacked is None:
            detail = "not a gzip file as CloudTrail delivers"
            return FileResult("modified", where, account, region, end, detail, digest)
        if unpacked[1]:
            detail = f"{len(unpacked[1])} bytes after the end of its gzip stream"
            return FileResult("modified", where, account, region, end, detail, digest)
        actual = hashlib.sha256(unpacked[0]).hexdigest()
        if actual != entry.get("hashValue"):
            detail = f"SHA-256 {actual} differs from {entry.get('hashValue')}"
            return FileResult("modified", where, account, region, end, detail, digest)
        return FileResult("valid", where, account, region, end, "", digest)

    def _unlisted(
        self,
        *,
        folder: str,
        listed: set[str],
        start: datetime,
        end: datetime,
        account: str,
        region: str,
    ) -> list[FileResult]:
        """Log files delivered in the digests' period that no digest lists."""
        found = []
        for key in self._keys_in_days(folder, start, end):
            stamp = stamp_of(key.rpartition("/")[2])
            if not is_log_file(key) or key in listed or stamp is None:
                continue
            delivered = parse_stamp(stamp)
            if start <= delivered < end - timedelta(minutes=1):
                where = f"s3://{self.bucket}/{key}"
                detail = "delivered in a digest's period, listed in no digest"
                found.append(
                    FileResult("missing_digest", where, account, region, delivered, detail)
                )
        return found


def _gunzip(data: bytes) -> tuple[bytes, bytes] | None:
    """The first gzip member's contents and the bytes after it; None if there is no whole member."""
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
    try:
        content = inflater.decompress(data)
    except zlib.error:
        return None
    return (content, inflater.unused_data) if inflater.eof else None


def _stamp_time(key: str) -> datetime | None:
    """The end time in a digest's name, for a digest whose contents cannot be read."""
    found = _DIGEST_STAMP.search(key)
    return datetime.strptime(found[1], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC) if found else None


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def integrity_event(result: FileResult) -> dict[str, Any]:
    """A failed check as an ECS document for the timeline (log type ``ecs``)."""
    ident = hashlib.sha256(f"{result.status}|{result.path}|{result.digest}".encode()).hexdigest()
    return {
        "@timestamp": result.at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "event": {
            "id": f"integrity-{ident[:32]}",
            "kind": "alert",
            "category": ["file"],
            "type": ["change"] if result.status == "modified" else ["deletion", "info"],
            "action": f"cloudtrail-{result.status.replace('_', '-')}",
            "outcome": "failure",
            "provider": "cloudtrail.amazonaws.com",
            "dataset": "aws.cloudtrail.integrity",
        },
        "cloud": {"provider": "aws", "account": {"id": result.account}, "region": result.region},
        "message": f"CloudTrail integrity: {result.status}: {result.path}: {result.detail}",
        "labels": {"integrity_status": result.status, "digest": result.digest or ""},
    }
