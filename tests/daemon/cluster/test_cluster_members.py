"""Members' heartbeats and ``auditcorr cluster status``: the leader, each member's
sources with their lag, and a member silent for three heartbeats shown as gone."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import psycopg
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "store"))

from storesupport import fresh_dsn

from daemon.cli.main import main
from daemon.cluster import session
from daemon.cluster.members import write_heartbeat
from daemon.logtypes import normalize_record
from daemon.store.postgres import PostgresStore


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, str]]:
    """A cluster config on a fresh database that holds auditcorr's tables."""
    with fresh_dsn() as dsn:
        PostgresStore(dsn, retention_days=0, normalize=normalize_record).close()
        monkeypatch.setenv("AUDITCORR_TEST_DSN", dsn)
        path = tmp_path / "config.toml"
        path.write_text(
            f'[daemon]\nstate_dir = "{tmp_path}"\n[store]\ntype = "postgresql"\n'
            'dsn = "env:AUDITCORR_TEST_DSN"\n[cluster]\nenabled = true\nfailover_secs = 15\n'
        )
        yield path, dsn


async def test_status_names_the_leader_lag_and_members_gone_silent(
    config: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Two members beat, one of them leading; the other falls silent past three
    heartbeats (15 s at failover_secs 15) and is shown as gone, never as leader."""
    path, dsn = config
    newest = datetime.now(UTC) - timedelta(seconds=30)
    async with await session.connect(dsn) as db:
        await write_heartbeat(db, "dc1", 1, is_leader=True, newest={"rack": newest, "idle": None})
        await write_heartbeat(db, "dc2", 1, is_leader=True, newest={"rack": newest})
    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute("UPDATE members SET last_seen = last_seen - 16000000 WHERE member = 'dc2'")

    assert main(["cluster", "status", "--config", str(path), "--json"]) == 0
    report = orjson.loads(capsys.readouterr().out)
    assert report["leader"] == "dc1"
    states = {m["member"]: (m["state"], m["leader"]) for m in report["members"]}
    assert states == {"dc1": ("running", True), "dc2": ("gone", False)}
    sources = report["members"][0]["sources"]
    assert 29 <= sources["rack"]["lag_secs"] < 60
    assert sources["idle"]["lag_secs"] is None

    assert main(["cluster", "status", "--config", str(path)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("leader: dc1\n")
    assert re.search(r"^dc2 \(.*\): gone,", text, re.MULTILINE), text


def test_status_without_postgresql_says_there_is_no_cluster(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A SQLite config has no cluster to show: a clear message and exit status 1."""
    path = tmp_path / "config.toml"
    path.write_text(f'[daemon]\nstate_dir = "{tmp_path}"\n')
    assert main(["cluster", "status", "--config", str(path)]) == 1
    assert "no cluster" in capsys.readouterr().out
