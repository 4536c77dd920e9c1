"""``auditcorr backfill`` and ``auditcorr run`` with a cloudtrail_s3 source on a moto server."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from itsupport import Daemon, Workspace, stored_ids, toml_value, wait_for
from motoserver import client
from trail import ACCOUNTS, REGIONS, day_key, put_records, upload_trail

pytestmark = pytest.mark.integration


def write_config(workspace: Workspace, sources: dict[str, dict[str, Any]]) -> None:
    lines = [
        "[daemon]",
        f"state_dir = {toml_value(workspace.state)}",
        "workers = 1",
        "[store]",
        "retention_days = 0",
    ]
    for name, settings in sources.items():
        lines.append(f"[sources.{name}]")
        lines += [f"{key} = {toml(value)}" for key, value in settings.items()]
    workspace.config.write_text("\n".join(lines) + "\n")


def toml(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    return toml_value(value)


@pytest.fixture
def bucket(moto_endpoint: str) -> str:
    name = f"org-trail-{uuid.uuid4().hex[:8]}"
    client("s3", moto_endpoint).create_bucket(Bucket=name)
    return name


def s3_source(endpoint: str, bucket: str) -> dict[str, Any]:
    return {
        "type": "cloudtrail_s3",
        "bucket": bucket,
        "endpoint_url": endpoint,
        "region": "us-east-1",
        "poll_interval_secs": 0.2,
    }


def test_backfill_then_run_stores_every_event_once(
    moto_endpoint: str, bucket: str, tmp_path: Path
) -> None:
    """Backfill loads the bucket (KMS objects too); run then picks up a new file; all once."""
    s3 = client("s3", moto_endpoint)
    key_id = client("kms", moto_endpoint).create_key()["KeyMetadata"]["KeyId"]
    uploaded = upload_trail(s3, bucket, tmp_path, 2000, kms_key=key_id)
    workspace = Workspace(tmp_path / "ws")
    write_config(workspace, {"ct_org": s3_source(moto_endpoint, bucket)})

    result = workspace.backfill()
    assert result.returncode == 0, str(result)
    assert result.summary["stored"] == 2000
    assert result.summary["files"] == len(uploaded.keys)

    again = workspace.backfill()
    assert again.returncode == 0, str(again)
    assert again.summary["files"] == 0, "checkpoints keep the second backfill from re-reading"

    daemon = Daemon(workspace, "daemon").start()
    try:
        daemon.wait_started()
        late = [{"eventID": f"late-{i}", "eventTime": "2026-11-21T00:10:00Z"} for i in range(5)]
        put_records(s3, bucket, day_key(ACCOUNTS[1], REGIONS[1], "20261121T0011Z", "late"), late)
        wait_for(
            "the late file's events",
            lambda: workspace.count() == 2005,
            timeout=60,
            context=daemon.tail,
        )
        assert daemon.stop() == 0
    finally:
        daemon.kill_group()
    ids = stored_ids(workspace.db)
    assert set(ids) == uploaded.ids | {f"late-{i}" for i in range(5)}
    assert set(ids.values()) == {1}


def test_backfill_reports_kms_denied_and_fails(
    moto_endpoint: str, bucket: str, tmp_path: Path
) -> None:
    """A role without kms:Decrypt makes backfill exit 1 with the key named in the log."""
    from motoserver import FaultProxy, s3_error

    s3 = client("s3", moto_endpoint)
    key_arn = client("kms", moto_endpoint).create_key()["KeyMetadata"]["Arn"]
    key = day_key(ACCOUNTS[0], REGIONS[0], "20261120T0100Z", "enc")
    s3.put_object(
        Bucket=bucket, Key=key, Body=b"{}", ServerSideEncryption="aws:kms", SSEKMSKeyId=key_arn
    )
    denied = s3_error("AccessDenied", "Access Denied")
    proxy = FaultProxy(
        moto_endpoint, lambda m, p: (403, denied) if m == "GET" and "_enc.json" in p else None
    )
    proxy.start()
    try:
        workspace = Workspace(tmp_path / "ws")
        write_config(workspace, {"ct_org": s3_source(proxy.endpoint, bucket)})
        result = workspace.backfill()
    finally:
        proxy.stop()
    assert result.returncode == 1, str(result)
    failures = [e for e in result.logs if e.get("event") == "source_failed"]
    assert failures
    assert f"KMS key denied: the role needs kms:Decrypt on {key_arn}" in failures[0]["error"]
