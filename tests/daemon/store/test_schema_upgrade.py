"""SQLite only: opening a store file of an older schema backs it up, then migrates it."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from connectors.base import RawBatch
from daemon.logtypes import normalize_record
from daemon.normalize import Limits
from daemon.process import Job, init_worker, process
from daemon.store import schema
from daemon.store.base import EventQuery
from daemon.store.sqlite import SqliteStore

SAMPLES = Path(__file__).parent / "samples" / "cloudtrail_timeline.json"
ADDED = "CREATE TABLE upgrade_probe (id INTEGER PRIMARY KEY)"
_LIMIT = 64 * 1024
"""Largest file a child may write: above SQLite's shared-memory file, below the store."""


def _fill(path: Path) -> int:
    """A store at the current schema holding the sample events; returns how many."""
    store = SqliteStore(path, retention_days=0, normalize=normalize_record)
    init_worker(store.dictionaries())
    try:
        batch = RawBatch("cloudtrail", "samples", SAMPLES.read_bytes())
        store.write([process(Job("ct", batch, store.codec, Limits()))])
        return store.count()
    finally:
        store.close()


def _version(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return schema.version_of(db)


def _tables(path: Path) -> set[str]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return {name for (name,) in db.execute("SELECT name FROM sqlite_master")}


@pytest.fixture
def newer_release(monkeypatch: pytest.MonkeyPatch) -> int:
    """This auditcorr plus one more migration: the version a store is upgraded to."""
    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, ADDED])
    return len(schema.MIGRATIONS)


def _older_store(path: Path) -> int:
    """A store written by the release before ``newer_release``; returns its event count."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:-1])
        return _fill(path)


def test_upgrade_backs_up_the_older_store_first(tmp_path: Path, newer_release: int) -> None:
    """The backup holds the old schema and every event; the store is migrated after it."""
    path = tmp_path / "timeline.db"
    stored = _older_store(path)
    old = _version(path)
    assert stored > 0
    assert old == newer_release - 1
    SqliteStore(path, retention_days=0, normalize=normalize_record).close()
    assert _version(path) == newer_release
    assert "upgrade_probe" in _tables(path)
    backups = list(tmp_path.glob(f"timeline.db.schema{old}-*.bak"))
    assert len(backups) == 1, list(tmp_path.iterdir())
    assert _version(backups[0]) == old
    assert "upgrade_probe" not in _tables(backups[0])
    copy = SqliteStore(backups[0], retention_days=0, readonly=True, normalize=normalize_record)
    try:
        assert copy.count() == stored
        assert len(copy.search(EventQuery(limit=1000))) == stored
    finally:
        copy.close()


def test_no_backup_without_a_pending_migration(tmp_path: Path) -> None:
    """A new store and a store already at the latest schema are opened without a copy."""
    path = tmp_path / "timeline.db"
    _fill(path)
    SqliteStore(path, retention_days=0, normalize=normalize_record).close()
    assert not list(tmp_path.glob("*.bak"))


_OPEN_UPGRADED = """
import sys
from daemon.store import schema
from daemon.store.sqlite import SqliteStore
schema.MIGRATIONS.append(sys.argv[2])
try:
    SqliteStore(__import__("pathlib").Path(sys.argv[1]), retention_days=0)
except RuntimeError as err:
    print(err)
    sys.exit(3)
"""


def _small_files() -> None:
    """In the child: no file may grow past _LIMIT bytes, as on a full disk (EFBIG, no signal)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (_LIMIT, _LIMIT))


def test_failed_backup_leaves_the_store_unmigrated(tmp_path: Path, newer_release: int) -> None:
    """When the copy cannot be written the store keeps its schema and the error names both files."""
    path = tmp_path / "timeline.db"
    _older_store(path)
    assert path.stat().st_size > _LIMIT
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    child = subprocess.run(
        [sys.executable, "-c", _OPEN_UPGRADED, str(path), ADDED],
        capture_output=True,
        text=True,
        env=env,
        preexec_fn=_small_files,
        check=False,
        timeout=60,
    )
    assert child.returncode == 3, child.stderr
    assert "cannot back up" in child.stdout
    assert str(path) in child.stdout
    assert _version(path) == newer_release - 1
    assert not list(tmp_path.glob("*.bak"))
