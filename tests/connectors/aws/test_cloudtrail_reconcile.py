"""Reconciliation: a file the listing skipped is fetched because a digest lists it (on moto),
and a listed file missing from the bucket is looked for a week, then given up loudly."""

from __future__ import annotations

import gzip
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from digests import SINCE, write_digests, write_public_key
from motoserver import client
from structlog.testing import capture_logs
from trail import Collector, run_source, upload_trail

from connectors.base import SourceContext
from connectors.cloudtrail.keys import parse_key
from connectors.cloudtrail.reconcile import RETRY_FOR, Reconciliation
from connectors.sources.cloudtrail_s3 import CloudtrailS3Config, CloudtrailS3Source


def s3_source(config: CloudtrailS3Config, checkpoints: dict[str, Any]) -> CloudtrailS3Source:
    return CloudtrailS3Source(config, SourceContext("ct", checkpoints, "backfill"))


def event_ids(emitted: Collector) -> Counter[str]:
    """The CloudTrail events emitted (not the integrity events of the digest check)."""
    return Collector([b for b in emitted.batches if b.log_type == "cloudtrail"]).event_ids()


def stream_of(key: str) -> str:
    parsed = parse_key(key)
    assert parsed is not None
    return parsed.stream


async def test_a_file_delivered_past_the_lookback_is_fetched(
    moto_endpoint: str, tmp_path: Path
) -> None:
    """Missed by the listing (late past the lookback), listed by a digest: fetched, counted;
    a listed file deleted from the bucket stays counted as missing."""
    s3 = client("s3", moto_endpoint)
    bucket = f"trail-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    uploaded = upload_trail(s3, bucket, tmp_path, 80, span=timedelta(hours=2, minutes=10))
    late, deleted = uploaded.keys[0], uploaded.keys[1]
    held = {key: s3.get_object(Bucket=bucket, Key=key)["Body"].read() for key in (late, deleted)}
    config = CloudtrailS3Config.model_validate(
        {
            "type": "cloudtrail_s3",
            "bucket": bucket,
            "endpoint_url": moto_endpoint,
            "start": SINCE,
            "lookback_secs": 600,
            "verify_digests": True,
            "digest_public_keys": [str(write_public_key(tmp_path / "key.pem"))],
        }
    )
    for key in held:
        s3.delete_object(Bucket=bucket, Key=key)
    first = Collector()
    await run_source(s3_source(config, {}), first)
    seen = event_ids(first)
    assert len(seen) < 80
    assert max(seen.values()) == 1

    # The late file arrives; CloudTrail's digests (written now) list both.
    s3.put_object(Bucket=bucket, Key=late, Body=held[late])
    s3.put_object(Bucket=bucket, Key=deleted, Body=held[deleted])
    digests = write_digests(s3, bucket, uploaded.keys)
    s3.delete_object(Bucket=bucket, Key=deleted)
    second = Collector()
    source = s3_source(config, first.checkpoints())
    await run_source(source, second)

    fetched = [b.origin for b in second.batches if b.log_type == "cloudtrail"]
    assert fetched == [f"s3://{bucket}/{late}"]
    together = event_ids(first) + event_ids(second)
    assert max(together.values()) == 1
    assert len(together) == 80 - len(orjson.loads(gzip.decompress(held[deleted]))["Records"])
    counts = {
        key.removeprefix("digest:"): value["reconciliation"]
        for key, value in second.checkpoints().items()
        if key.startswith("digest:")
    }
    assert set(counts) == {stream_of(k) for k in uploaded.keys}
    for stream, found in counts.items():
        assert found["digests"] == len(digests.keys[stream])
        assert found["listed"] == len([k for k in uploaded.keys if stream_of(k) == stream])
        assert found["fetched"] == (stream == stream_of(late))
        assert [m["key"] for m in found["missing"]] == (
            [deleted] if stream == stream_of(deleted) else []
        )
        assert found["given_up"] == 0
    published = {
        (m.name, f"{m.labels['account']}/{m.labels['region']}"): m.value for m in source.metrics()
    }
    assert published["cloudtrail_files_fetched_total", stream_of(late)] == 1
    assert published["cloudtrail_files_missing", stream_of(deleted)] == 1
    assert sum(published[k] for k in published if k[0] == "cloudtrail_files_listed_total") == len(
        uploaded.keys
    )

    # A week after it was first found missing, the deleted file is given up, loudly.
    saved = {**first.checkpoints(), **second.checkpoints()}
    gone = f"digest:{stream_of(deleted)}"
    (entry,) = saved[gone]["reconciliation"]["missing"]
    entry["since"] = (datetime.fromisoformat(entry["since"]) - RETRY_FOR).isoformat()
    third = Collector()
    later = s3_source(config, saved)
    with capture_logs() as logs:
        await run_source(later, third)
    assert event_ids(third) == {}, "nothing fetched twice"
    (given_up,) = [e for e in logs if e["event"] == "missing_files_given_up"]
    assert (given_up["log_level"], given_up["keys"]) == ("warning", [deleted])
    after = third.checkpoints()[gone]["reconciliation"]
    assert (after["missing"], after["given_up"]) == ([], 1)
    published = {
        (m.name, f"{m.labels['account']}/{m.labels['region']}"): m.value for m in later.metrics()
    }
    assert published["cloudtrail_files_given_up_total", stream_of(deleted)] == 1
    assert published["cloudtrail_files_missing", stream_of(deleted)] == 0


@pytest.mark.integration
def test_backfill_fetches_the_missed_file_and_sources_shows_the_counts(
    moto_endpoint: str, tmp_path: Path
) -> None:
    """Through ``auditcorr backfill``: the late file's events stored once; ``auditcorr sources``
    prints the checkpoints with the reconciliation counts, as text and JSON."""
    from itsupport import Workspace
    from test_cloudtrail_s3_cli import s3_source as s3_settings
    from test_cloudtrail_s3_cli import write_config

    s3 = client("s3", moto_endpoint)
    bucket = f"trail-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    uploaded = upload_trail(s3, bucket, tmp_path, 80, span=timedelta(hours=2, minutes=10))
    late = uploaded.keys[0]
    body = s3.get_object(Bucket=bucket, Key=late)["Body"].read()
    late_events = len(orjson.loads(gzip.decompress(body))["Records"])
    s3.delete_object(Bucket=bucket, Key=late)
    workspace = Workspace(tmp_path / "ws")
    settings = s3_settings(moto_endpoint, bucket) | {
        "start": SINCE.isoformat(),
        "lookback_secs": 600,
        "verify_digests": True,
        "digest_public_keys": [str(write_public_key(tmp_path / "key.pem"))],
    }
    write_config(workspace, {"ct_org": settings})
    first = workspace.backfill()
    assert first.returncode == 0, str(first)
    assert first.summary["stored"] == 80 - late_events

    s3.put_object(Bucket=bucket, Key=late, Body=body)
    write_digests(s3, bucket, uploaded.keys)
    second = workspace.backfill()
    assert second.returncode == 0, str(second)
    assert second.summary["stored"] == late_events
    assert workspace.count() == 80

    shown = workspace.cli("sources", "--json")
    assert shown.returncode == 0, str(shown)
    (source,) = orjson.loads(shown.stdout)["sources"]
    assert (source["id"], source["type"]) == ("ct_org", "cloudtrail_s3")
    by_key = {c["key"]: c for c in source["checkpoints"]}
    stream = stream_of(late)
    assert by_key[f"digest:{stream}"]["value"]["reconciliation"]["fetched"] == 1
    assert by_key[stream]["value"]["high"]
    assert all(0 <= c["age_secs"] < 120 for c in source["checkpoints"])
    text = workspace.cli("sources")
    assert text.returncode == 0, str(text)
    lines = text.stdout.splitlines()
    assert lines[0] == f"ct_org (cloudtrail_s3): {len(by_key)} checkpoints"
    (line,) = [line for line in lines if line.startswith(f"  digest:{stream}  ")]
    assert "reconciliation=(digests=" in line
    assert "fetched=1 missing=[0] given_up=0)" in line
    assert line.endswith(" ago)")


KEY = (
    "AWSLogs/o-test1234ab/111111111111/CloudTrail/us-east-1/2020/01/02/"
    "111111111111_CloudTrail_us-east-1_20200102T0300Z_abcdefghijklmnop.json.gz"
)
FOUND = datetime(2026, 12, 31, 23, 59, 30, tzinfo=UTC)


def test_a_missing_file_is_looked_for_a_week_from_when_it_was_first_found_missing() -> None:
    """However old its delivery, a missing file is fetched until RETRY_FOR after it was first
    found missing (listing it again does not restart that), then given up and counted."""
    counts = Reconciliation()
    counts.add_listed(1, [KEY], [KEY], FOUND)
    counts.add_listed(1, [KEY], [KEY], FOUND + timedelta(days=3))
    last = FOUND + RETRY_FOR - timedelta(seconds=1)
    assert counts.to_fetch(last) == ([KEY], [])
    assert counts.to_fetch(last + timedelta(seconds=1)) == ([], [KEY])
    assert (counts.missing, counts.given_up, counts.listed) == ({}, 1, 2)
    assert counts.to_fetch(last + timedelta(days=30)) == ([], []), "given up once"
    published = {m.name: m.value for m in counts.metrics("111111111111", "us-east-1")}
    assert published["cloudtrail_files_given_up_total"] == 1
    assert published["cloudtrail_files_missing"] == 0


def test_the_checkpoint_keeps_when_each_file_was_first_found_missing() -> None:
    """The JSON a digest checkpoint holds gives back the same counts and times."""
    counts = Reconciliation(digests=3, listed=17, fetched=1, given_up=2)
    counts.add_listed(1, [KEY], [KEY], FOUND)
    saved = orjson.loads(orjson.dumps(counts.as_json()))
    assert saved["missing"] == [{"key": KEY, "since": "2026-12-31T23:59:30Z"}]
    assert Reconciliation.from_json(saved, FOUND + timedelta(days=5)) == counts


def test_an_old_checkpoint_with_a_plain_list_counts_its_keys_missing_from_load() -> None:
    """A checkpoint written before the times were kept loads; its keys get a week from then."""
    loaded = Reconciliation.from_json(
        {"digests": 3, "listed": 17, "fetched": 1, "missing": [KEY]}, FOUND
    )
    assert loaded == Reconciliation(3, 17, 1, {KEY: FOUND}, 0)
    assert loaded.to_fetch(FOUND + RETRY_FOR - timedelta(minutes=1)).fetch == [KEY]
