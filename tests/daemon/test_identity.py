"""The identity map: people behind CloudTrail principals and on-prem accounts."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from connectors.base import RawBatch
from daemon.config import ConfigFileError, load_config
from daemon.identity import IdentityMap
from daemon.logtypes import normalize_record
from daemon.model import AuditEvent
from daemon.normalize import Limits, cloudtrail
from daemon.process import Job, init_worker, process
from daemon.store.base import EventQuery
from daemon.store.sqlite import SqliteStore

CONFIG = """
[daemon]
[[identity.people]]
id = "alice"
name = "Alice Smith"
email = ["alice@example.com"]
unix = ["asmith", { name = "root", hosts = ["lab-*"] }]
groups = ["ops"]

[[identity.people]]
id = "bob"
aws = ["arn:aws:iam::111111111111:user/bob", "bob-ci"]
unix = ["bob"]

[[identity.people]]
id = "carol"
aws = ["carol.w@example.org", "arn:aws:sts::222222222222:assumed-role/Deployer/*"]
"""


@pytest.fixture
def people(tmp_path: Path) -> IdentityMap:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG)
    return load_config(path).identity.identity_map()


def ct(identity: dict[str, Any], **extra: Any) -> AuditEvent:
    record = {
        "eventVersion": "1.08",
        "eventID": "e1",
        "eventTime": "2026-11-20T09:05:30Z",
        "eventSource": "ec2.amazonaws.com",
        "eventName": "StopInstances",
        "awsRegion": "ap-northeast-1",
        "recipientAccountId": "111111111111",
        "userIdentity": identity,
        **extra,
    }
    return cloudtrail.normalize(record)


def assumed(role: str, session: str, account: str = "111111111111") -> dict[str, Any]:
    return {
        "type": "AssumedRole",
        "principalId": f"AROAEXAMPLE:{session}",
        "arn": f"arn:aws:sts::{account}:assumed-role/{role}/{session}",
        "accountId": account,
    }


def unix(user: str, host: str) -> AuditEvent:
    return AuditEvent(
        timestamp=datetime(2026, 11, 20, tzinfo=UTC),
        id="s1",
        dataset="system.auth",
        action="sudo",
        user_name=user,
        host_name=host,
    )


def test_identity_center_session_resolves_by_email_without_config(people: IdentityMap) -> None:
    """AWSReservedSSO_*/alice@example.com is alice: her e-mail is enough."""
    event = ct(assumed("AWSReservedSSO_AdministratorAccess_ec8669a867783324", "alice@example.com"))
    assert people.actor_of(event) == "alice"


def test_role_session_named_after_a_known_account(people: IdentityMap) -> None:
    """A session called asmith (alice's unix account) or bob (his IAM user) is theirs."""
    assert people.actor_of(ct(assumed("BreakGlass", "asmith"))) == "alice"
    assert people.actor_of(ct(assumed("prod-deploy", "bob"))) == "bob"


def test_configured_principals(people: IdentityMap) -> None:
    """IAM user ARNs, listed session names, e-mails and ARN globs."""
    iam_bob = {"type": "IAMUser", "arn": "arn:aws:iam::111111111111:user/bob", "userName": "bob"}
    assert people.actor_of(ct(iam_bob)) == "bob"
    assert people.actor_of(ct(assumed("ci-runner", "bob-ci"))) == "bob"
    assert people.actor_of(ct(assumed("Deployer", "job-42", "222222222222"))) == "carol"
    assert people.actor_of(ct(assumed("Admin", "carol.w@example.org"))) == "carol"


def test_unknown_principals_stay_unresolved(people: IdentityMap) -> None:
    """mallory is nobody in the map: no actor, her user name stays on the event."""
    mallory = {"type": "IAMUser", "arn": "arn:aws:iam::111111111111:user/mallory"}
    assert people.actor_of(ct(mallory)) is None
    # An IAM user is not matched by a unix account of the same name.
    asmith = {"type": "IAMUser", "arn": "arn:aws:iam::111111111111:user/asmith"}
    assert people.actor_of(ct(asmith)) is None


def test_unix_accounts_per_host_glob(people: IdentityMap) -> None:
    """root is alice only on lab hosts; asmith is alice everywhere."""
    assert people.actor_of(unix("asmith", "web01")) == "alice"
    assert people.actor_of(unix("root", "lab-3")) == "alice"
    assert people.actor_of(unix("root", "web01")) is None
    assert people.actor_of(unix("nobody", "web01")) is None


def test_lookup_finds_a_person_by_any_name(people: IdentityMap) -> None:
    """whois: id, display name, account, e-mail or ARN all lead to the person."""
    for name in ("alice", "Alice Smith", "asmith", "alice@example.com"):
        assert [p.id for p in people.lookup(name)] == ["alice"]
    assert [p.id for p in people.lookup("arn:aws:iam::111111111111:user/bob")] == ["bob"]
    assert people.lookup("mallory") == []


def test_duplicate_person_ids_are_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG + '\n[[identity.people]]\nid = "alice"\n')
    with pytest.raises(ConfigFileError, match="person id 'alice' appears twice"):
        load_config(path)


def test_unknown_keys_in_a_unix_account_are_errors(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        textwrap.dedent(
            """
            [[identity.people]]
            id = "dave"
            unix = [{ name = "dave", host = ["x"] }]
            """
        )
    )
    with pytest.raises(ConfigFileError, match=r"identity\.people\.0\.unix"):
        load_config(path)


@pytest.fixture
def store(tmp_path: Path, people: IdentityMap) -> Iterator[SqliteStore]:
    path = tmp_path / "timeline.db"
    opened = SqliteStore(path, retention_days=0, normalize=normalize_record)
    init_worker(opened.dictionaries(), None, people)
    yield opened
    opened.close()
    init_worker(opened.dictionaries())


def test_events_get_their_actor_at_ingest(store: SqliteStore) -> None:
    """The worker sets actor; it is kept in the store and found by --actor."""
    records = [
        {
            "eventVersion": "1.08",
            "eventID": f"e{n}",
            "eventTime": f"2026-11-20T09:0{n}:00Z",
            "eventSource": "ec2.amazonaws.com",
            "eventName": "StopInstances",
            "userIdentity": identity,
        }
        for n, identity in enumerate(
            [assumed("AWSReservedSSO_Admin_1", "alice@example.com"), assumed("X", "mallory")]
        )
    ]
    batch = RawBatch("cloudtrail", "file.json", orjson.dumps({"Records": records}))
    store.write([process(Job("ct", batch, store.codec, Limits()))])
    found = store.search(EventQuery(actor="alice"))
    assert [d["event"]["id"] for d in found] == ["e0"]
    docs = store.search(EventQuery(order="oldest"))
    assert [d.get("actor") for d in docs] == ["alice", None]
    assert docs[1]["user"]["name"] == "mallory"
