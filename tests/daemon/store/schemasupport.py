"""Turning a store back into one made before a given migration, as an older
auditcorr left it, to test that opening it brings the schema forward."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from daemon.store.schema import MIGRATIONS


def rewind_before(path: Path, table: str) -> None:
    """Undo the migration that creates ``table`` and every later one."""
    version = next(
        n for n, script in enumerate(MIGRATIONS, 1) if f"CREATE TABLE {table} " in script
    )
    with sqlite3.connect(path) as db:
        for script in MIGRATIONS[version - 1 :]:
            for kind, made in re.findall(r"CREATE (TABLE|VIEW) (\w+)", script):
                db.execute(f"DROP {kind} {made}")
        db.execute("UPDATE schema_version SET version = ?", (version - 1,))
