"""The CLI refuses a store it cannot upgrade with one line, not a traceback."""

from __future__ import annotations

import contextlib
import sqlite3
from datetime import timedelta
from types import ModuleType

import pytest
from itsupport import ONE_TRAIL, Workspace, generate, write_tree

pytestmark = pytest.mark.integration


def test_store_from_a_newer_release_is_refused(workspace: Workspace, ctgen: ModuleType) -> None:
    """backfill on a store of a newer schema exits 1 naming both versions; the store is kept."""
    records = generate(ctgen, 20, seed=71, span=timedelta(minutes=5), **ONE_TRAIL)
    write_tree(ctgen, workspace.data, records)
    workspace.write_config()
    assert workspace.backfill().returncode == 0
    with contextlib.closing(sqlite3.connect(workspace.db)) as db:
        db.execute("UPDATE schema_version SET version = version + 1")
        db.commit()
        newer = db.execute("SELECT version FROM schema_version").fetchone()[0]

    result = workspace.backfill()
    assert result.returncode == 1, str(result)
    assert f"auditcorr: store schema version {newer} is newer than this auditcorr" in result.stderr
    assert "Traceback" not in result.stderr
    assert workspace.count() == len(records)
