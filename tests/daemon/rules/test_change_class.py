"""Which events are changes that an approved change record must cover."""

from __future__ import annotations

from typing import Any

import pytest

from daemon import logtypes
from daemon.normalize import cloudtrail


def ct(name: str, read_only: Any = False, **extra: Any) -> dict[str, Any]:
    record = {
        "eventVersion": "1.08",
        "eventTime": "2026-11-20T09:05:00Z",
        "eventID": f"id-{name}",
        "eventName": name,
        "eventSource": "ec2.amazonaws.com",
        "awsRegion": "ap-northeast-1",
        "sourceIPAddress": "198.51.100.7",
        "userIdentity": {"type": "IAMUser", "userName": "alice"},
        "recipientAccountId": "111111111111",
        "readOnly": read_only,
        **extra,
    }
    return cloudtrail.normalize(record).to_document()


def host(dataset: str, action: str, outcome: str | None = None) -> dict[str, Any]:
    event = {"dataset": dataset, "action": action}
    if outcome:
        event["outcome"] = outcome
    return {"event": event}


@pytest.mark.parametrize(
    "doc",
    [
        ct("StopInstances"),
        ct("PutBucketPolicy"),
        host("system.auth", "sudo", "success"),
        host("system.auth", "user_created"),
        host("system.auth", "group_modified"),
        host("system.syslog", "package_installed"),
        host("system.syslog", "service_stopped"),
        host("auditd.log", "add_user", "success"),
    ],
    ids=lambda doc: str(doc["event"].get("action") or doc["original"]["eventName"]),
)
def test_changes(doc: dict[str, Any]) -> None:
    assert logtypes.is_change(doc)


@pytest.mark.parametrize(
    "doc",
    [
        ct("DescribeInstances", read_only=True),
        ct("ConsoleLogin"),
        ct("AssumeRole"),
        ct("StopInstances", errorCode="Client.UnauthorizedOperation"),
        host("system.auth", "sudo", "failure"),
        host("system.auth", "ssh_login", "success"),
        host("system.syslog", "cron"),
        host("auditd.log", "user_auth", "success"),
    ],
    ids=lambda doc: str(doc["event"].get("action") or doc["original"]["eventName"]),
)
def test_not_changes(doc: dict[str, Any]) -> None:
    assert not logtypes.is_change(doc)
