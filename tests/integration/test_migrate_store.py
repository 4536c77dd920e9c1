"""``auditcorr migrate-store`` from an SQLite file to PostgreSQL, as an operator runs it."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import orjson
import psycopg
import pytest
from itsupport import (
    CliResult,
    Workspace,
    auditcorr,
    cli_env,
    generate,
    log_name,
    put_file,
    toml_value,
    write_changes_demo,
    write_tree,
)

sys.path.insert(0, str(Path(__file__).parents[1] / "daemon" / "store"))

from storesupport import fresh_dsn

pytestmark = pytest.mark.integration

STOP = "76684f96-6619-473e-81be-3b98445e93d6"
"""alice's StopInstances in the demo, which change records are judged against."""


@pytest.fixture
def dsn() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for the target store."""
    with fresh_dsn() as found:
        yield found


def target_config(workspace: Workspace, dsn: str, name: str = "postgresql.toml") -> Path:
    """The workspace's config with its store moved to PostgreSQL at ``dsn``."""
    text = workspace.config.read_text().replace('[store]\ntype = "sqlite"\n', "[store]\n")
    assert text.count("[store]\n") == 1
    pg = f'[store]\ntype = "postgresql"\ndsn = {toml_value(dsn)}\n'
    path = workspace.root / name
    path.write_text(text.replace("[store]\n", pg))
    return path


def migrate(workspace: Workspace, target: Path, *args: str) -> CliResult:
    return auditcorr(
        "migrate-store", "--from", str(workspace.config), "--to", str(target), *args,
        cwd=workspace.root,
    )  # fmt: skip


def test_demo_store_moves_to_postgresql_and_reads_the_same(workspace: Workspace, dsn: str) -> None:
    """The demo (trail, host syslog, change records, a quarantined file, delivered alerts)
    backfilled into SQLite and migrated: every reading command prints the same on both."""
    write_changes_demo(
        workspace,
        f"""
[sources.bastion]
type = "syslog_file"
path = {toml_value(workspace.data / "bastion.log")}
start = "beginning"

[outputs.ops]
type = "console"
endpoint = "stdout"
min_severity = "low"
""",
    )
    demo_syslog = Path(__file__).parents[2] / "examples" / "demo" / "hosts" / "bastion01" / "syslog"
    (workspace.data / "bastion.log").write_bytes(demo_syslog.read_bytes())
    put_file(workspace.data / "trail", log_name("broken"), b"not a gzip file")
    assert workspace.backfill().returncode == 0
    target = target_config(workspace, dsn)

    result = migrate(workspace, target, "--batch", "100")
    assert result.returncode == 0, str(result)
    assert "verified: the target holds the same timeline" in result.stdout
    assert "DIFF" not in result.stdout

    readings = [
        ("timeline", "--json", "--limit", "100000"),
        ("timeline", "--json", "-q", "bob"),
        ("timeline", "--user", "mallory", "--oldest-first"),
        ("alerts", "--json"),
        ("alerts", "--pending"),
        ("changes",),
        ("changes", "--history", "CHG0041207"),
        ("changes", "--covering", STOP),
        ("quarantine", "--raw"),
    ]
    for reading in readings:
        before = workspace.cli(*reading)
        after = workspace.cli(*reading, config=target)
        assert before.returncode == 0, str(before)
        assert after.returncode == 0, str(after)
        assert without_audit(before.stdout) == without_audit(after.stdout), reading
    (migrated,) = [
        doc
        for doc in map(
            orjson.loads, workspace.cli("timeline", "--json", config=target).stdout.splitlines()
        )
        if doc["event"]["action"] == "store_migrated"
    ]
    assert migrated["event"]["dataset"] == "auditcorr.audit"
    assert "1 in quarantine" in workspace.cli("quarantine").stdout

    again = migrate(workspace, target)
    assert again.returncode == 1
    assert "is not empty" in again.stderr


def without_audit(listing: str) -> str:
    """A JSON timeline listing without the daemon's own audit entries: the target alone
    has its migration's, and each store the quarantine reads made on it."""
    return "".join(
        line for line in listing.splitlines(keepends=True) if '"auditcorr.audit"' not in line
    )


def count_rows(dsn: str, sql: str) -> int:
    try:
        with psycopg.connect(dsn, autocommit=True) as db:
            row = db.execute(sql.encode()).fetchone()
    except psycopg.errors.UndefinedTable:
        return 0
    return int(row[0]) if row else 0


def test_interrupted_migration_resumes_with_every_event_once(
    workspace: Workspace, dsn: str, ctgen: ModuleType
) -> None:
    """A copy killed mid-way refuses to start over, and resumed with --resume holds every
    event once, with the compression dictionary its documents need."""
    records = generate(ctgen, 6000, seed=7, accounts=["111111111111"], regions=["us-east-1"])
    # Small files: enough batches for the store to train its compression dictionary.
    write_tree(ctgen, workspace.data, records, per_file=100)
    workspace.write_config()
    assert workspace.backfill("--no-deliver").returncode == 0
    target = target_config(workspace, dsn)

    argv = [sys.executable, "-m", "daemon.cli", "migrate-store", "--from", str(workspace.config),
            "--to", str(target), "--batch", "20"]  # fmt: skip
    copy = subprocess.Popen(
        argv, cwd=workspace.root, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 120
        while count_rows(dsn, "SELECT copied FROM store_migration") < 500:
            assert copy.poll() is None, "the copy ended before it could be interrupted"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        copy.send_signal(signal.SIGKILL)
    finally:
        copy.wait(timeout=30)
        if copy.stderr:
            copy.stderr.close()
    copied = count_rows(dsn, "SELECT count(*) FROM events")
    assert 0 < copied < len(records)

    refused = migrate(workspace, target)
    assert refused.returncode == 1
    assert "--resume" in refused.stderr

    resumed = migrate(workspace, target, "--resume", "--batch", "500")
    assert resumed.returncode == 0, str(resumed)
    with sqlite3.connect(workspace.db) as source:
        (rows,) = source.execute("SELECT count(*) FROM events").fetchone()  # alert entries too
    assert f"copied {rows - copied} events" in resumed.stdout
    assert count_rows(dsn, "SELECT count(*) FROM codecs") == 1
    assert count_rows(dsn, "SELECT count(*) FROM store_migration") == 0

    workspace.reader = target
    ids = Counter(doc["event"]["id"] for doc in workspace.events_read())
    assert set(ids) == {r["eventID"] for r in records}
    assert set(ids.values()) == {1}


def test_unreachable_target_and_broken_config_are_clear_errors(workspace: Workspace) -> None:
    """A target database that does not answer and a config with errors stop the command
    with a message naming them, before anything is copied."""
    workspace.write_config()
    assert workspace.backfill().returncode == 0
    dead = "host=127.0.0.1 port=1 user=postgres dbname=none connect_timeout=2"
    target = target_config(workspace, dead, "down.toml")
    down = migrate(workspace, target)
    assert down.returncode == 1
    assert "cannot connect to postgresql" in down.stderr

    broken = workspace.root / "broken.toml"
    broken.write_text("[store]\nkind = 1\n")
    wrong = migrate(workspace, broken)
    assert wrong.returncode == 2
    assert str(broken) in wrong.stderr
