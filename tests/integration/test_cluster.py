"""Three ``auditcorr run`` daemons on one PostgreSQL store and one SQS queue, as one.

Each daemon reads its own host's files from the demo story and shares the
demo's CloudTrail files through the queue.  Together they store every event
once, one of them correlates, the story's alerts are raised once each, and
when the leader is killed mid-stream another member takes over.  A member
whose database goes away for a while keeps receiving and catches up.
"""

from __future__ import annotations

import socket
import sys
import time
import uuid
from collections import ChainMap, Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from itsupport import EXAMPLES, Daemon, Workspace, toml_value, wait_for
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from syslogsupport import ports
from tcpproxy import TcpProxy

sys.path.insert(0, str(Path(__file__).parents[1] / "connectors" / "aws"))
sys.path.insert(0, str(Path(__file__).parents[1] / "daemon" / "store"))

from motoserver import client, fake_aws_credentials, moto_endpoint
from queues import new_queue, queue_depth, s3_notification, send_all
from storesupport import fresh_dsn
from test_cloudtrail_s3_cli import write_config
from test_demo_story import STORY_ALERTS, UNAPPROVED_RULE

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(600)]

__all__ = ["fake_aws_credentials", "moto_endpoint"]

DEMO = EXAMPLES / "demo"
FAILOVER_SECS = 6
HOSTS: dict[str, dict[str, dict[str, Any]]] = {
    "bastion": {
        "bastion01": {
            "type": "syslog_file",
            "path": DEMO / "hosts/bastion01/syslog",
            "start": "beginning",
        }
    },
    "web": {
        "web01": {"type": "syslog_file", "path": DEMO / "hosts/web01/syslog", "start": "beginning"},
        "web01_dpkg": {
            "type": "syslog_file",
            "path": DEMO / "hosts/web01/dpkg.log",
            "host": "web01",
            "start": "beginning",
        },
    },
    "db": {
        "db01": {"type": "syslog_file", "path": DEMO / "hosts/db01/syslog", "start": "beginning"},
        "db01_audit": {
            "type": "auditd_file",
            "path": DEMO / "hosts/db01/audit.log",
            "host": "db01",
            "start": "beginning",
        },
    },
}
"""Each member's own on-prem sources: the demo hosts' files, one host per member."""


@pytest.fixture
def dsn(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh database, its DSN in ``AUDITCORR_TEST_DSN`` as a deployment would pass it."""
    with fresh_dsn() as found:
        monkeypatch.setenv("AUDITCORR_TEST_DSN", found)
        yield found


def _member_config(workspace: Workspace, member: str, sources: dict[str, Any]) -> None:
    """A member's config: the one-daemon config on the shared store, with ``[cluster]``."""
    write_config(workspace, sources)
    cluster = "\n".join(
        [
            "[rules]",
            # Members read in no particular order: two days of lateness keep the
            # story's windows open whichever member's file comes first.
            'allowed_lateness = "2d"',
            "[cluster]",
            "enabled = true",
            f"member = {toml_value(member)}",
            f"failover_secs = {FAILOVER_SECS}",
            "[store]",
            'type = "postgresql"',
            'dsn = "env:AUDITCORR_TEST_DSN"',
            "",
        ]
    )
    text = workspace.config.read_text()
    workspace.config.write_text(text.replace("[store]\n", cluster, 1))


def _upload_demo_trail(s3: Any, bucket: str) -> list[str]:
    keys = []
    for path in sorted((DEMO / "AWSLogs").rglob("*.json.gz")):
        key = path.relative_to(DEMO).as_posix()
        s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
        keys.append(key)
    return keys


def _reference(tmp_path: Path) -> Workspace:
    """The same files backfilled by one daemon into SQLite: the events to expect."""
    workspace = Workspace(tmp_path / "reference")
    trail = {"type": "cloudtrail_files", "path": DEMO / "AWSLogs"}
    write_config(workspace, {"trail": trail, **dict(ChainMap(*HOSTS.values()))})
    result = workspace.backfill()
    assert result.returncode == 0, str(result)
    return workspace


def _leader(workspace: Workspace) -> str | None:
    result = workspace.cli("cluster", "status", "--json")
    assert result.returncode == 0, str(result)
    found: str | None = orjson.loads(result.stdout)["leader"]
    return found


def _caught_up(dsn: str) -> bool:
    """The correlator has taken every feed row into account."""
    with psycopg.connect(dsn) as db:
        row = db.execute(
            "SELECT (SELECT coalesce(max(seq), 0) FROM ingest_feed),"
            " (SELECT coalesce(max(position), 0) FROM cluster_state)"
        ).fetchone()
    return row is not None and row[0] == row[1]


def _alert_keys(workspace: Workspace) -> Counter[tuple[str, tuple[str, ...]]]:
    result = workspace.cli("alerts", "--json")
    assert result.returncode == 0, str(result)
    found = [orjson.loads(line) for line in result.stdout.splitlines()]
    return Counter(
        (a["rule"]["id"], tuple(a["group"].values()))
        for a in found
        if a["rule"]["id"] != UNAPPROVED_RULE
    )


def test_three_daemons_work_as_one_and_survive_losing_the_leader(
    moto_endpoint: str, dsn: str, tmp_path: Path
) -> None:
    """Three members, one queue: every event once, the story's alerts once each, a new
    leader within failover_secs of the old one's SIGKILL, and ``cluster status`` shows it."""
    reference = _reference(tmp_path)
    expected = Counter(doc["event"]["id"] for doc in reference.events_read())
    s3, sqs = client("s3", moto_endpoint), client("sqs", moto_endpoint)
    bucket = f"trail-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    keys = _upload_demo_trail(s3, bucket)
    queue = new_queue(sqs)
    shared = {
        "type": "cloudtrail_sqs",
        "queue_url": queue,
        "endpoint_url": moto_endpoint,
        "region": "us-east-1",
        "wait_time_secs": 1,
        "max_messages": 1,
        # A killed member's message comes back to the others this soon.
        "visibility_timeout_secs": 4,
    }
    workspaces = {name: Workspace(tmp_path / name) for name in HOSTS}
    for name, workspace in workspaces.items():
        _member_config(workspace, name, {"ct_queue": shared, **HOSTS[name]})
    daemons = {name: Daemon(workspace, name) for name, workspace in workspaces.items()}
    viewer = workspaces["bastion"]
    try:
        for daemon in daemons.values():
            daemon.start()
        for daemon in daemons.values():
            daemon.wait_started(timeout=120)

        def context() -> str:
            progress = (
                f"queue depth {queue_depth(sqs, queue)}, {len(viewer.events_read())} of"
                f" {sum(expected.values())} events, correlator caught up: {_caught_up(dsn)}\n"
            )
            return progress + "\n".join(d.tail() for d in daemons.values())

        leader = wait_for("a leader", lambda: _leader(viewer), timeout=60, context=context)
        half = len(keys) // 2
        send_all(sqs, queue, [s3_notification(bucket, key) for key in keys[:half]])
        wait_for(
            "the first half read and correlated",
            lambda: queue_depth(sqs, queue) == 0 and _caught_up(dsn),
            timeout=180,
            context=context,
        )

        daemons[leader].kill_group()
        killed = time.monotonic()
        send_all(sqs, queue, [s3_notification(bucket, key) for key in keys[half:]])
        successor = wait_for(
            "another member to lead",
            lambda: next(
                (n for n, d in daemons.items() if n != leader and d.events("leadership_gained")),
                None,
            ),
            timeout=60,
            interval=0.2,
            context=context,
        )
        assert time.monotonic() - killed < FAILOVER_SECS + 3, "failover took too long"
        daemons[leader] = Daemon(workspaces[leader], leader).start()
        wait_for(
            "every event stored and correlated",
            lambda: (
                queue_depth(sqs, queue) == 0
                and len(viewer.events_read()) >= sum(expected.values())
                and _caught_up(dsn)
            ),
            timeout=120,
            interval=1.0,
            context=context,
        )
        status = viewer.cli("cluster", "status", "--json")
        assert status.returncode == 0, str(status)
        report = orjson.loads(status.stdout)
        assert report["leader"] == successor
        assert {m["member"] for m in report["members"]} == set(HOSTS)
        assert all(m["sources"] for m in report["members"])
        for daemon in daemons.values():
            assert daemon.stop(timeout=30) == 0
    finally:
        for daemon in daemons.values():
            daemon.kill_group()

    stored = Counter(doc["event"]["id"] for doc in viewer.events_read())
    assert stored == expected
    alerts = _alert_keys(viewer)
    assert set(alerts) >= STORY_ALERTS
    assert all(alerts[key] == 1 for key in STORY_ALERTS), alerts
    assert alerts == _alert_keys(reference)


OUTAGE_SECS = 10


def _syslog_lines(tag: str, count: int) -> bytes:
    """``count`` RFC 5424 lines, each naming itself ``{tag}-{n}``, stamped now."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return b"".join(
        f"<38>1 {now} app01 probe - - - message {tag}-{n}\n".encode() for n in range(count)
    )


def test_member_rides_out_a_database_outage(dsn: str, tmp_path: Path) -> None:
    """The database cut for OUTAGE_SECS: the member keeps receiving, stores every
    message once when the database is back, and leads again."""
    params = conninfo_to_dict(dsn)
    proxy = TcpProxy((str(params["host"]), int(params["port"]))).start()
    proxied = make_conninfo(dsn, host="127.0.0.1", port=str(proxy.port))
    workspace = Workspace(tmp_path / "solo")
    _member_config(
        workspace, "solo", {"tcp_in": {"type": "syslog_tcp", "listen": "tcp:127.0.0.1:0"}}
    )
    daemon = Daemon(workspace, "solo", {"AUDITCORR_TEST_DSN": proxied})
    sent: list[str] = []

    def send(conn: socket.socket, tag: str, count: int) -> None:
        conn.sendall(_syslog_lines(tag, count))
        sent.extend(f"{tag}-{n}" for n in range(count))

    def stored() -> Counter[str]:
        return Counter(doc["message"].rpartition(" ")[2] for doc in workspace.events_read())

    try:
        daemon.start().wait_started(timeout=60)
        wait_for("the member to lead", lambda: _leader(workspace) == "solo", timeout=30)
        with socket.create_connection(("127.0.0.1", ports(daemon, 1)["tcp_in"])) as conn:
            send(conn, "before", 20)
            wait_for("the first messages", lambda: len(stored()) == 20, timeout=30)
            proxy.cut()
            cut_at = time.monotonic()
            send(conn, "during", 30)
            wait_for(
                "a failed store write",
                lambda: daemon.events("store_write_failed"),
                timeout=OUTAGE_SECS,
                context=daemon.tail,
            )
            time.sleep(max(0.0, OUTAGE_SECS - (time.monotonic() - cut_at)))
            assert daemon.alive(), daemon.tail()
            assert daemon.events("leadership_lost"), daemon.tail()
            gained = len(daemon.events("leadership_gained"))
            proxy.restore()
            send(conn, "after", 20)
            wait_for(
                "every message stored",
                lambda: len(stored()) == len(sent),
                timeout=60,
                interval=0.5,
                context=daemon.tail,
            )
        wait_for(
            "leadership regained and the correlator caught up",
            lambda: (
                len(daemon.events("leadership_gained")) > gained
                and _leader(workspace) == "solo"
                and _caught_up(dsn)
            ),
            timeout=30,
            interval=0.5,
            context=daemon.tail,
        )
        assert stored() == Counter(sent)
        # The outbox's own connection is back too: its rounds stopped failing.
        failed = len(daemon.events("outbox_round_failed"))
        time.sleep(3)
        assert len(daemon.events("outbox_round_failed")) == failed, daemon.tail()
        assert daemon.stop(timeout=30) == 0
    finally:
        daemon.kill_group()
        proxy.close()
