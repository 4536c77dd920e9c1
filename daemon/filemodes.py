"""Private files whatever the umask: the state directory and the store are the daemon's alone.

The timeline holds who did what across the company and the quarantine keeps
raw records; a umask of 022 would leave them readable by every local user.
The daemon therefore sets a umask of 027 for what it creates from now on and
tightens what exists already (a group may be granted read access, nobody
else); modes that are already tighter are kept.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

UMASK = 0o027
DIR_MODE = 0o750
FILE_MODE = 0o640
STORE_SUFFIXES = ("", "-wal", "-shm", "-journal")
"""The SQLite file and the files SQLite keeps beside it."""


def make_private(state_dir: Path, store_path: Path | None) -> None:
    """Set the umask and tighten the state directory and the store's files.

    ``store_path``: the SQLite file (None for PostgreSQL).  Its folder is left
    alone unless it is the state directory: it may be shared.
    """
    os.umask(UMASK)
    state_dir.mkdir(parents=True, exist_ok=True)
    tighten(state_dir, DIR_MODE)
    for path in store_files(store_path) if store_path is not None else ():
        tighten(path, FILE_MODE)


def store_files(store_path: Path) -> Iterator[Path]:
    """The store, its WAL, shared memory and journal, and its backups, where they exist."""
    for suffix in STORE_SUFFIXES:
        path = store_path.with_name(store_path.name + suffix)
        if path.exists():
            yield path
    yield from sorted(store_path.parent.glob(f"{store_path.name}.*.bak"))


def tighten(path: Path, allowed: int) -> None:
    """Remove from ``path``'s mode every bit ``allowed`` does not hold."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & ~allowed:
        path.chmod(mode & allowed)


def loose(path: Path, allowed: int) -> int | None:
    """``path``'s mode when it grants more than ``allowed``, else None."""
    mode = stat.S_IMODE(path.stat().st_mode)
    return mode if mode & ~allowed else None
