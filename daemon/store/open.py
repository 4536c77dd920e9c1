"""Opening the store a config names, for every command and the daemon alike.

The store knows no config: the caller hands over plain values (``StoreSettings``,
made by ``Config.store_settings()``), the normalizer the documents are made with
on read included.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from daemon import filemodes
from daemon.store.units import Normalize

if TYPE_CHECKING:
    from daemon.store.base import Store


@dataclass(frozen=True, slots=True)
class StoreSettings:
    """Which store to open: the PostgreSQL database when ``dsn`` is given, else the
    SQLite file at ``path``."""

    path: Path
    dsn: str | None
    retention_days: int
    state_dir: Path
    member: str
    """This daemon's name in a cluster: who holds its outbox leases (PostgreSQL only)."""
    normalize: Normalize


def open_store(settings: StoreSettings, *, readonly: bool = False) -> Store:
    """The one place that knows which store engine to open."""
    if not readonly:
        filemodes.make_private(settings.state_dir, None if settings.dsn else settings.path)
    # Each engine loads when opened (psycopg only for PostgreSQL), so reading a config
    # (which makes these settings) stays quick.
    if settings.dsn is not None:
        from daemon.store.postgres import PostgresStore

        return PostgresStore(
            settings.dsn,
            retention_days=settings.retention_days,
            readonly=readonly,
            member=settings.member,
            normalize=settings.normalize,
        )
    from daemon.store.sqlite import SqliteStore

    return SqliteStore(
        settings.path,
        retention_days=settings.retention_days,
        readonly=readonly,
        normalize=settings.normalize,
    )
