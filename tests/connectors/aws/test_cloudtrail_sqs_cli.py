"""Daemons as users run them, on SQS queues of a moto server."""

from __future__ import annotations

import signal
import threading
import uuid
from collections.abc import Mapping
from pathlib import Path

import pytest
from itsupport import Daemon, Workspace, count_events, stored_ids, wait_for
from motoserver import FaultProxy, client
from queues import eventbridge_event, new_queue, queue_depth, s3_notification, send_all
from test_cloudtrail_s3_cli import s3_source, write_config
from trail import ACCOUNTS, REGIONS, day_key, put_records, upload_trail

pytestmark = pytest.mark.integration


def test_two_daemons_on_one_queue_store_every_event_once(
    moto_endpoint: str, tmp_path: Path
) -> None:
    """Two daemons share one queue: together they store every event, neither stores one twice."""
    s3, sqs = client("s3", moto_endpoint), client("sqs", moto_endpoint)
    bucket = f"trail-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    uploaded = upload_trail(s3, bucket, tmp_path, 1200, per_file=20)
    queue = new_queue(sqs)
    settings = {
        "type": "cloudtrail_sqs",
        "queue_url": queue,
        "endpoint_url": moto_endpoint,
        "region": "us-east-1",
        "wait_time_secs": 1,
        "max_messages": 2,
    }
    workspaces = [Workspace(tmp_path / f"host{n}") for n in (1, 2)]
    daemons = []
    try:
        for n, workspace in enumerate(workspaces):
            write_config(workspace, {"ct_queue": settings})
            daemons.append(Daemon(workspace, f"daemon{n}").start())
        for daemon in daemons:
            daemon.wait_started()
        send_all(sqs, queue, [s3_notification(bucket, key) for key in uploaded.keys])
        wait_for(
            "every event stored",
            lambda: (
                sum(w.count() for w in workspaces) >= len(uploaded.ids)
                and queue_depth(sqs, queue) == 0
            ),
            timeout=90,
            context=lambda: daemons[0].tail() + daemons[1].tail(),
        )
        for daemon in daemons:
            assert daemon.stop() == 0
    finally:
        for daemon in daemons:
            daemon.kill_group()
    per_host = [stored_ids(w.db) for w in workspaces]
    assert all(per_host), "both daemons took part"
    assert set(per_host[0]) | set(per_host[1]) == uploaded.ids
    assert all(set(ids.values()) == {1} for ids in per_host)
    assert sum(len(ids) for ids in per_host) == len(uploaded.ids), "no object read by both"


def test_eventbridge_event_later_from_s3_is_stored_once(moto_endpoint: str, tmp_path: Path) -> None:
    """An event seen first through EventBridge and then in the S3 file is stored once."""
    s3, sqs = client("s3", moto_endpoint), client("sqs", moto_endpoint)
    bucket = f"trail-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    queue = new_queue(sqs)
    records = [
        {
            "eventVersion": "1.09",
            "eventID": str(uuid.uuid4()),
            "eventTime": "2026-11-20T10:00:00Z",
            "eventSource": "iam.amazonaws.com",
            "eventName": "CreateUser",
            "awsRegion": "us-east-1",
            "recipientAccountId": ACCOUNTS[0],
            "userIdentity": {"type": "IAMUser", "userName": "alice", "accountId": ACCOUNTS[0]},
        }
        for _ in range(10)
    ]
    workspace = Workspace(tmp_path / "ws")
    write_config(
        workspace,
        {
            "ct_realtime": {
                "type": "cloudtrail_eventbridge",
                "queue_url": queue,
                "endpoint_url": moto_endpoint,
                "wait_time_secs": 1,
            },
            "ct_org": s3_source(moto_endpoint, bucket),
        },
    )
    daemon = Daemon(workspace, "daemon").start()
    try:
        daemon.wait_started()
        send_all(sqs, queue, [eventbridge_event(r) for r in records])
        wait_for(
            "the EventBridge events",
            lambda: workspace.count() == 10,
            timeout=60,
            context=daemon.tail,
        )
        put_records(s3, bucket, day_key(ACCOUNTS[0], REGIONS[0], "20261120T1005Z", "eb"), records)
        wait_for(
            "the S3 copy to be read",
            lambda: count_events(workspace.db, "checkpoints") == 1,
            timeout=60,
            context=daemon.tail,
        )
        assert daemon.stop() == 0
    finally:
        daemon.kill_group()
    (stopped,) = daemon.events("daemon_stopped")
    assert stopped["duplicates"] == 10
    ids = stored_ids(workspace.db)
    assert set(ids) == {r["eventID"] for r in records}
    assert set(ids.values()) == {1}


def test_killed_between_commit_and_delete_stores_every_event_once(
    moto_endpoint: str, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    """SIGKILL while the first message's delete is on its way (objects read, events
    committed, messages not deleted): after a restart every event is stored exactly once."""
    s3, sqs = client("s3", moto_endpoint), client("sqs", moto_endpoint)
    bucket = f"trail-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    uploaded = upload_trail(s3, bucket, tmp_path, 600, per_file=20)
    queue = new_queue(sqs)
    delete_seen, killed = threading.Event(), threading.Event()

    def hold_deletes(
        method: str, path: str, headers: Mapping[str, str]
    ) -> tuple[int, bytes] | None:
        if "DeleteMessage" not in headers.get("X-Amz-Target", "") or killed.is_set():
            return None
        delete_seen.set()
        killed.wait(60)
        return 500, b""  # never reaches the killed daemon, nor moto

    fault_proxy.intercept = hold_deletes
    workspace = Workspace(tmp_path / "ws")
    settings = {
        "type": "cloudtrail_sqs",
        "queue_url": queue,
        "endpoint_url": fault_proxy.endpoint,
        "region": "us-east-1",
        "wait_time_secs": 1,
        "visibility_timeout_secs": 2,
        "max_messages": 2,
    }
    write_config(workspace, {"ct_queue": settings})
    send_all(sqs, queue, [s3_notification(bucket, key) for key in uploaded.keys])
    first = Daemon(workspace, "first").start()
    try:
        assert delete_seen.wait(60), first.tail()
        first.kill_group()
    finally:
        killed.set()
        first.kill_group()
    assert first.proc is not None
    assert first.proc.returncode == -signal.SIGKILL
    before = workspace.count()
    assert 0 < before < len(uploaded.ids), "killed after some commits, before the end"

    second = Daemon(workspace, "second").start()
    try:
        wait_for(
            "every event stored and the queue empty",
            lambda: workspace.count() >= len(uploaded.ids) and queue_depth(sqs, queue) == 0,
            timeout=90,
            context=second.tail,
        )
        assert second.stop() == 0
    finally:
        second.kill_group()
    ids = stored_ids(workspace.db)
    assert set(ids) == uploaded.ids
    assert set(ids.values()) == {1}
    (stopped,) = second.events("daemon_stopped")
    assert stopped["duplicates"] >= 20, "the committed, undeleted message came back"
