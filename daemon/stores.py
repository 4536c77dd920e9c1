"""Opening the store the config names, for every command and the daemon alike.

Below the daemon's entry point (``app.py``) and the CLI, so that the parts that
open a store of their own (the audit trail, the CLI commands, the store copy)
import nothing that starts the daemon.
"""

from __future__ import annotations

from daemon import filemodes
from daemon.config import Config
from daemon.logtypes import normalize_record
from daemon.store.base import Store
from daemon.store.sqlite import SqliteStore


def open_store(config: Config, *, readonly: bool = False) -> Store:
    """The one place that knows which store engine the config asks for; the store
    is handed the normalizers it makes ECS documents with on read."""
    section = config.store
    postgres = section.type == "postgresql" and section.dsn is not None
    if not readonly:
        filemodes.make_private(config.daemon.state_dir, None if postgres else config.store_path)
    if postgres and section.dsn is not None:
        # psycopg loads only when the config asks for PostgreSQL.
        from daemon.store.postgres import PostgresStore

        return PostgresStore(
            section.dsn.reveal(),
            retention_days=section.retention_days,
            readonly=readonly,
            member=config.member,
            normalize=normalize_record,
        )
    return SqliteStore(
        config.store_path,
        retention_days=section.retention_days,
        readonly=readonly,
        normalize=normalize_record,
    )
