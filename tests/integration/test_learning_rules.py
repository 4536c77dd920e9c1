"""Rules that learn what is usual, run as an operator runs them: a backfill gives them
their history, a later backfill (another process) continues from what was learned."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from itsupport import Workspace, auditcorr, log_name, put_file, records_file

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def session(user: str, at: datetime) -> dict[str, Any]:
    """A Session Manager session opened by an IAM user."""
    return {
        "eventVersion": "1.08",
        "eventTime": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventID": f"session-{user}-{at:%Y%m%d%H%M}",
        "eventName": "StartSession",
        "eventSource": "ssm.amazonaws.com",
        "eventType": "AwsApiCall",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "198.51.100.20",
        "recipientAccountId": "111111111111",
        "readOnly": False,
        "requestParameters": {"target": "i-0abc"},
        "userIdentity": {
            "type": "IAMUser",
            "userName": user,
            "arn": f"arn:aws:iam::111111111111:user/{user}",
            "accountId": "111111111111",
        },
    }


def first_access(workspace: Workspace) -> list[str]:
    result = workspace.cli("alerts", "--json", "--rule", "first_interactive_access")
    assert result.returncode == 0, str(result)
    return [orjson.loads(line)["group"]["principal"] for line in result.stdout.splitlines()]


def test_a_backfill_teaches_and_a_later_one_judges_with_what_was_learned(
    workspace: Workspace,
) -> None:
    """15 days of alice's sessions backfilled: quiet while learning, then bob's first session
    alerts and alice's does not; `rules list` says the rule learned; a second backfill
    (a new process, the state read from the store) alerts for carol only."""
    workspace.write_config({"trail": {"path": workspace.data}})
    history = [session("alice", T0 - timedelta(days=days)) for days in range(15, 0, -1)]
    put_file(workspace.data, log_name("history"), records_file(history))
    put_file(
        workspace.data,
        log_name("today"),
        records_file([session("alice", T0), session("bob", T0 + timedelta(minutes=5))]),
    )
    assert workspace.backfill().returncode == 0
    assert first_access(workspace) == ["bob"]

    listed = auditcorr(
        "rules", "list", "--json", "--config", str(workspace.config), cwd=workspace.root
    )
    assert listed.returncode == 0, str(listed)
    rows = [orjson.loads(line) for line in listed.stdout.splitlines()]
    [rule] = [row for row in rows if row["id"] == "first_interactive_access"]
    assert rule["learning"]["state"] == "learned"
    assert rule["learning"]["terms"] == 2

    later = [session("alice", T0 + timedelta(hours=2)), session("carol", T0 + timedelta(hours=2))]
    put_file(workspace.data, log_name("later"), records_file(later))
    assert workspace.backfill().returncode == 0
    assert sorted(first_access(workspace)) == ["bob", "carol"]
