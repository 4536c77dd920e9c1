"""``auditcorr doctor`` with every AWS source, on moto (and the fault proxy for denials)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from itsupport import Workspace
from lookupserver import LookupServer, record
from motoserver import REGION, FaultProxy, client, s3_error
from queues import new_queue
from test_cloudtrail_s3_cli import write_config
from trail import ACCOUNTS, REGIONS, day_key, put_records

from connectors.aws.checks import clock

pytestmark = pytest.mark.integration


def aws(endpoint: str, **settings: object) -> dict[str, object]:
    return {"endpoint_url": endpoint, "region": REGION, **settings}


def checklist(stdout: str) -> dict[str, str]:
    """``name: detail`` lines of one source, by check name; hints under their check."""
    found: dict[str, str] = {}
    last = ""
    for line in stdout.splitlines():
        if line.startswith(("✓ sources.", "✗ sources.")):
            source, _, rest = line[2:].partition(": ")
            check, _, detail = rest.partition(": ")
            last = f"{source}: {check}"
            found[last] = f"{line[0]} {detail}"
        elif line.startswith("    hint: ") and last:
            found[last] += f" | hint: {line.removeprefix('    hint: ')}"
    return found


def test_doctor_checks_every_aws_source(
    moto_endpoint: str, fault_proxy: FaultProxy, lookup_server: LookupServer, tmp_path: Path
) -> None:
    """Identity, clock, role, S3 list and read, KMS denied, queues, log group, LookupEvents."""
    s3, sqs = client("s3", moto_endpoint), client("sqs", moto_endpoint)
    plain, sealed = (f"trail-{uuid.uuid4().hex[:10]}" for _ in range(2))
    for bucket in (plain, sealed):
        s3.create_bucket(Bucket=bucket)
    key = day_key(ACCOUNTS[0], REGIONS[0], "20261120T1000Z", "a")
    put_records(s3, plain, key, [{"eventID": "e1", "eventTime": "2026-11-20T10:00:00Z"}])
    kms_key = client("kms", moto_endpoint).create_key()["KeyMetadata"]["KeyId"]
    s3.put_object(
        Bucket=sealed, Key=key, Body=b"{}", ServerSideEncryption="aws:kms", SSEKMSKeyId=kms_key
    )
    fault_proxy.fault = lambda method, path: (
        (403, s3_error("AccessDenied", "Access Denied"))
        if method == "GET" and path.split("?")[0].endswith(".json.gz")
        else None
    )
    group = f"cloudtrail-{uuid.uuid4().hex[:8]}"
    logs = client("logs", moto_endpoint)
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="111111111111_CloudTrail_us-east-1")
    lookup_server.add("123456789012", REGION, [record("h1", datetime.now(UTC))])
    queue = new_queue(sqs)
    role = "arn:aws:iam::123456789012:role/auditcorr-read"  # the queue's account
    workspace = Workspace(tmp_path / "ws")
    write_config(
        workspace,
        {
            "ct_plain": {"type": "cloudtrail_s3", "bucket": plain, **aws(moto_endpoint)},
            "ct_sealed": {"type": "cloudtrail_s3", "bucket": sealed, **aws(fault_proxy.endpoint)},
            "ct_queue": {
                "type": "cloudtrail_sqs",
                "queue_url": queue,
                **aws(moto_endpoint, role_arn=role),
            },
            "ct_gone": {
                "type": "cloudtrail_eventbridge",
                "queue_url": queue + "-gone",
                **aws(moto_endpoint),
            },
            "ct_logs": {"type": "cloudtrail_cloudwatch", "log_group": group, **aws(moto_endpoint)},
            "ct_history": {"type": "cloudtrail_lookup", **aws(lookup_server.endpoint)},
        },
    )
    result = workspace.cli("doctor")
    assert result.returncode == 1, str(result)
    found = checklist(result.stdout)
    for source in ("ct_plain", "ct_sealed", "ct_queue", "ct_gone", "ct_logs", "ct_history"):
        assert found[f"sources.{source}: credentials"].startswith("✓ arn:aws:"), result.stdout
        assert found[f"sources.{source}: clock against AWS"].startswith("✓ "), found
    assert found[f"sources.ct_plain: s3:ListBucket on {plain}/AWSLogs/"] == (
        f"✓ s3://{plain}/AWSLogs/: not empty"
    )
    assert found[f"sources.ct_plain: s3:GetObject on {plain}"].startswith(
        f"✓ read s3://{plain}/{key} ("
    )
    sealed_read = found[f"sources.ct_sealed: s3:GetObject on {sealed}"]
    assert sealed_read.startswith("✗ "), sealed_read
    assert f"KMS key denied: the role needs kms:Decrypt on {kms_key}" in sealed_read
    assert found[f"sources.ct_queue: sts:AssumeRole {role}"].startswith("✓ as arn:aws:sts::")
    name = queue.rpartition("/")[2]
    assert found[f"sources.ct_queue: sqs:GetQueueAttributes on {name}"] == (
        f"✓ {name}: 0 messages waiting"
    )
    gone = found[f"sources.ct_gone: sqs:GetQueueAttributes on {name}-gone"]
    assert gone.startswith("✗ "), gone
    assert "| hint: " in gone
    assert found[f"sources.ct_logs: logs:DescribeLogStreams on {group}"] == (
        f"✓ {group}: first stream 111111111111_CloudTrail_us-east-1"
    )
    assert found[f"sources.ct_history: cloudtrail:LookupEvents in {REGION}"].startswith(
        "✓ newest event "
    )
    failed = [name for name, line in found.items() if line.startswith("✗")]
    assert sorted(failed) == [
        f"sources.ct_gone: sqs:GetQueueAttributes on {name}-gone",
        f"sources.ct_sealed: s3:GetObject on {sealed}",
    ]


def test_refused_credentials_are_one_failed_check(fault_proxy: FaultProxy, tmp_path: Path) -> None:
    """STS refusing the keys gives one failed check with a hint, and no further calls."""

    def refuse_sts(method: str, path: str, headers: Mapping[str, str]) -> tuple[int, bytes] | None:
        if "/sts/aws4_request" in headers.get("Authorization", ""):
            return 403, (
                b"<ErrorResponse><Error><Type>Sender</Type><Code>InvalidClientTokenId</Code>"
                b"<Message>The security token included in the request is invalid.</Message>"
                b"</Error><RequestId>x</RequestId></ErrorResponse>"
            )
        return None

    fault_proxy.intercept = refuse_sts
    workspace = Workspace(tmp_path / "ws")
    source = {"type": "cloudtrail_s3", "bucket": "org-trail-logs", **aws(fault_proxy.endpoint)}
    write_config(workspace, {"ct_org": source})
    result = workspace.cli("doctor")
    assert result.returncode == 1, str(result)
    found = checklist(result.stdout)
    assert list(found) == ["sources.ct_org: credentials"]
    line = found["sources.ct_org: credentials"]
    assert line.startswith("✗ ")
    assert "InvalidClientTokenId" in line
    assert "| hint: give the daemon AWS credentials" in line
    assert [s for s in fault_proxy.seen if s[2] != 403] == []


def test_clock_skew_beyond_five_minutes_fails() -> None:
    """The Date of an AWS reply 7 minutes behind local time fails with a hint; 1 minute passes."""
    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)

    def reply(offset: timedelta) -> dict[str, object]:
        date = format_datetime(now - offset, usegmt=True)
        return {"ResponseMetadata": {"HTTPHeaders": {"date": date}}}

    late = clock(reply(timedelta(minutes=7)), now)
    assert not late.ok
    assert late.detail == "420s ahead of AWS"
    assert late.hint
    assert clock(reply(timedelta(minutes=-1)), now).detail == "60s behind AWS"
    assert clock(reply(timedelta(minutes=-1)), now).ok
