"""Digest verification on moto: valid, modified, deleted, missing digest, chain gap, forged;
public keys from PEM files or from ListPublicKeys (the stand-in in lookupserver.py)."""

from __future__ import annotations

import gzip
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from digests import SINCE, TRAIL_KEY, UNTIL, SigningKey, write_digests, write_public_key
from lookupserver import LookupServer
from motoserver import client
from trail import ACCOUNTS, put_records, upload_trail

from connectors.cloudtrail.digests import ChainState, DigestChecker, FileResult, PublicKeys
from connectors.cloudtrail.keys import parse_key


@pytest.fixture
def signed_trail(moto_endpoint: str, tmp_path: Path) -> tuple[Any, str, Any, Any]:
    s3 = client("s3", moto_endpoint)
    bucket = f"trail-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    uploaded = upload_trail(
        s3, bucket, tmp_path, 80, span=timedelta(hours=2, minutes=10), accounts=ACCOUNTS[:2]
    )
    made = write_digests(s3, bucket, uploaded.keys)
    return s3, bucket, uploaded, made


def stream_of(key: str) -> str:
    parsed = parse_key(key)
    assert parsed is not None
    return parsed.stream


def check_all(s3: Any, bucket: str, keys: PublicKeys, log_keys: list[str]) -> list[FileResult]:
    checker = DigestChecker(s3, bucket, keys)
    results: list[FileResult] = []
    folders = {k.split("/2026/")[0] + "/": parse_key(k) for k in log_keys}
    for folder, parsed in folders.items():
        assert parsed is not None
        found = checker.check(
            account=parsed.account,
            region=parsed.region,
            logs_folder=folder,
            since=SINCE,
            until=UNTIL,
            chain=ChainState(),
        )
        results += found.results
    return results


def test_untouched_trail_verifies_with_the_signing_key_only(
    signed_trail: Any, tmp_path: Path
) -> None:
    """An untouched trail is valid throughout; against another key no digest verifies."""
    s3, bucket, uploaded, _ = signed_trail
    keys = PublicKeys(None, [write_public_key(tmp_path / "key.pem")])
    results = check_all(s3, bucket, keys, uploaded.keys)
    assert {r.status for r in results} == {"valid"}
    assert len(results) == len(uploaded.keys)

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    path = tmp_path / "other.pem"
    path.write_bytes(
        other.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    results = check_all(s3, bucket, PublicKeys(None, [path]), uploaded.keys)
    assert {r.status for r in results} == {"digest_invalid"}
    assert any(r.detail.startswith("no public key with fingerprint") for r in results)


def test_tampering_is_found(signed_trail: Any, tmp_path: Path) -> None:
    """A modified, a deleted and an unlisted log file, a deleted and a forged digest."""
    s3, bucket, uploaded, made = signed_trail
    modified, deleted = uploaded.keys[3], uploaded.keys[7]
    put_records(s3, bucket, modified, [{"eventID": "forged", "eventTime": "2026-11-20T23:00:00Z"}])
    s3.delete_object(Bucket=bucket, Key=deleted)
    unlisted = uploaded.keys[10].replace(".json.gz", "X.json.gz")
    put_records(s3, bucket, unlisted, [])
    touched = {stream_of(k) for k in (modified, deleted, unlisted)}
    stream, chain = next((s, k) for s, k in made.keys.items() if len(k) >= 3 and s not in touched)
    s3.delete_object(Bucket=bucket, Key=chain[1])
    forged = next(k[0] for s, k in made.keys.items() if s != stream and s not in touched)
    head = s3.head_object(Bucket=bucket, Key=forged)
    content = orjson.loads(gzip.decompress(s3.get_object(Bucket=bucket, Key=forged)["Body"].read()))
    content["logFiles"] = content["logFiles"][1:]
    s3.put_object(
        Bucket=bucket,
        Key=forged,
        Body=gzip.compress(orjson.dumps(content)),
        Metadata=head["Metadata"],
    )

    keys = PublicKeys(None, [write_public_key(tmp_path / "key.pem")])
    results = check_all(s3, bucket, keys, uploaded.keys)
    failed = {(r.status, r.path.removeprefix(f"s3://{bucket}/")) for r in results if r.failed}
    assert ("modified", modified) in failed
    assert ("deleted", deleted) in failed
    assert ("missing_digest", unlisted) in failed
    assert ("chain_gap", chain[2]) in failed
    assert ("digest_invalid", forged) in failed
    statuses = {r.status for r in results}
    assert statuses == {
        "valid",
        "modified",
        "deleted",
        "missing_digest",
        "chain_gap",
        "digest_invalid",
    }


@pytest.mark.integration
def test_verify_digests_command_reports_and_puts_failures_on_the_timeline(
    signed_trail: Any, moto_endpoint: str, tmp_path: Path
) -> None:
    """auditcorr verify-digests prints each failure, exits 1, and stores integrity events."""
    from itsupport import Workspace
    from test_cloudtrail_s3_cli import s3_source, write_config

    s3, bucket, uploaded, _ = signed_trail
    s3.delete_object(Bucket=bucket, Key=uploaded.keys[5])
    workspace = Workspace(tmp_path / "ws")
    source = s3_source(moto_endpoint, bucket)
    source["digest_public_keys"] = [str(write_public_key(tmp_path / "key.pem"))]
    write_config(workspace, {"ct_org": source})
    args = ["--source", "ct_org", "--since", SINCE.isoformat(), "--until", UNTIL.isoformat()]
    result = workspace.cli("verify-digests", *args)
    assert result.returncode == 1, str(result)
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"deleted         s3://{bucket}/{uploaded.keys[5]}")
    assert lines[-1] == f"digests: deleted=1 valid={len(uploaded.keys) - 1}"
    (event,) = workspace.timeline("--dataset", "aws.cloudtrail.integrity")
    assert event["event"]["action"] == "cloudtrail-deleted"
    assert event["labels"]["integrity_status"] == "deleted"
    again = workspace.cli("verify-digests", *args)
    assert again.returncode == 1
    assert len(workspace.timeline("--dataset", "aws.cloudtrail.integrity")) == 1, "stored once"


async def test_continuous_check_in_the_s3_source(
    signed_trail: Any, moto_endpoint: str, tmp_path: Path
) -> None:
    """verify_digests on cloudtrail_s3: failures emitted once; chain resumes at its checkpoint."""
    from trail import Collector, run_source

    from connectors.base import SourceContext
    from connectors.sources.cloudtrail_s3 import CloudtrailS3Config, CloudtrailS3Source

    s3, bucket, uploaded, _ = signed_trail
    s3.delete_object(Bucket=bucket, Key=uploaded.keys[2])
    config = CloudtrailS3Config.model_validate(
        {
            "type": "cloudtrail_s3",
            "bucket": bucket,
            "endpoint_url": moto_endpoint,
            "verify_digests": True,
            "start": SINCE,
            "digest_public_keys": [str(write_public_key(tmp_path / "key.pem"))],
        }
    )
    first = Collector()
    await run_source(CloudtrailS3Source(config, SourceContext("ct", {}, "backfill")), first)
    integrity = [b for b in first.batches if b.log_type == "ecs"]
    events = [e for b in integrity for e in orjson.loads(b.payload)]
    assert [e["labels"]["integrity_status"] for e in events] == ["deleted"]
    assert uploaded.keys[2] in events[0]["message"]
    checkpoints = first.checkpoints()
    assert {k for k in checkpoints if k.startswith("digest:")} == {
        f"digest:{stream_of(k)}" for k in uploaded.keys
    }
    second = Collector()
    await run_source(
        CloudtrailS3Source(config, SourceContext("ct", checkpoints, "backfill")), second
    )
    assert second.batches == []


@pytest.mark.integration
def test_verify_digests_command_takes_the_keys_from_list_public_keys(
    signed_trail: Any, lookup_server: LookupServer, tmp_path: Path
) -> None:
    """Without key files the check asks ListPublicKeys, for a period around each digest."""
    from itsupport import Workspace
    from test_cloudtrail_s3_cli import s3_source, write_config

    _, bucket, uploaded, made = signed_trail
    lookup_server.public_keys.append(TRAIL_KEY.listed())
    workspace = Workspace(tmp_path / "ws")
    write_config(workspace, {"ct_org": s3_source(lookup_server.endpoint, bucket)})
    args = ["--source", "ct_org", "--since", SINCE.isoformat(), "--until", UNTIL.isoformat()]
    result = workspace.cli("verify-digests", *args)
    assert result.returncode == 0, str(result)
    assert result.stdout.splitlines()[-1] == f"digests: valid={len(uploaded.keys)}"
    ends = [
        datetime.strptime(k[-24:-8], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
        for keys in made.keys.values()
        for k in keys
    ]
    assert lookup_server.key_calls, "ListPublicKeys was asked"
    for call in lookup_server.key_calls:
        assert any(call["StartTime"] <= end <= call["EndTime"] for end in ends), call


@pytest.mark.integration
def test_doctor_checks_list_public_keys(lookup_server: LookupServer, tmp_path: Path) -> None:
    """doctor's ListPublicKeys check passes with the permission and fails, with a hint, without."""
    from itsupport import Workspace
    from test_aws_doctor import checklist
    from test_cloudtrail_s3_cli import s3_source, write_config

    now = datetime.now(UTC)
    current = SigningKey.generate(
        valid_from=now - timedelta(days=3), valid_until=now + timedelta(days=30)
    )
    lookup_server.public_keys.append(current.listed())
    workspace = Workspace(tmp_path / "ws")
    source = {**s3_source(lookup_server.endpoint, "org-trail-logs"), "verify_digests": True}
    write_config(workspace, {"ct_org": source})
    check = "sources.ct_org: cloudtrail:ListPublicKeys"

    passed = checklist(workspace.cli("doctor").stdout)
    assert passed[check] == "✓ 1 public keys", passed

    lookup_server.keys_denied = True
    failed = checklist(workspace.cli("doctor").stdout)[check]
    assert failed.startswith("✗ "), failed
    assert "AccessDenied" in failed
    assert failed.endswith(
        '| hint: the role needs cloudtrail:ListPublicKeys (Resource "*") to verify digests'
    )
