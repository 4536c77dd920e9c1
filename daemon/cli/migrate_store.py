"""``auditcorr migrate-store``: copy the whole timeline from one store to another (the
copy and its check are ``daemon/migrate_store.py``), with progress and a verdict."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Final

from daemon.cli.base import EXIT_FAILED, EXIT_OK, Commands
from daemon.config import Config, load_config
from daemon.migrate_store import MigrationRefusedError, Progress, copy_store, finish, verify
from daemon.store import transfer
from daemon.store.base import Store

DEFAULT_BATCH: Final = 2000


def register(commands: Commands) -> None:
    """``migrate-store`` reads the two configs of its own (``--from``, ``--to``)."""
    sub = commands.add_config_free(
        "migrate-store",
        _migrate,
        "copy the whole timeline from one store to another (e.g. SQLite to PostgreSQL)",
    )
    sub.add_argument(
        "--from",
        dest="source",
        required=True,
        metavar="CONFIG",
        help="config of the store to copy (only read; stop its daemon first)",
    )
    sub.add_argument(
        "--to",
        dest="target",
        required=True,
        metavar="CONFIG",
        help="config of the store to copy into (must be empty)",
    )
    sub.add_argument(
        "--batch",
        type=int,
        default=DEFAULT_BATCH,
        metavar="N",
        help=f"events per target transaction (default {DEFAULT_BATCH})",
    )
    sub.add_argument(
        "--resume", action="store_true", help="continue an interrupted copy into the target"
    )


def _migrate(args: argparse.Namespace, _config: Config | None) -> int:
    from daemon import audit
    from daemon.store.open import open_store

    if args.batch < 1:
        raise ValueError("--batch must be at least 1")
    source_config = load_config(Path(args.source))
    target_config = load_config(Path(args.target))
    _warn_if_in_use(source_config.store_path if source_config.store.type == "sqlite" else None)
    source = open_store(source_config.store_settings(), readonly=True)
    try:
        target = open_store(target_config.store_settings())
        if target.location == source.location:
            target.close()
            raise ValueError(f"--from and --to are the same store ({source.location})")
        try:
            status = _run(source, target, args)
        finally:
            target.close()
    finally:
        source.close()
    if status == EXIT_OK:
        migrated = audit.cli_action("store_migrated", source=source.location, resume=args.resume)
        audit.record_from_cli(target_config, migrated)
    return status


def _run(source: Store, target: Store, args: argparse.Namespace) -> int:
    progress = Progress(source.table_count(transfer.EVENTS))
    print(f"migrate-store: {source.location} -> {target.location}", file=sys.stderr)
    try:
        copied = copy_store(source, target, batch=args.batch, resume=args.resume, progress=progress)
    except MigrationRefusedError as err:
        print(f"auditcorr: {err}", file=sys.stderr)
        return EXIT_FAILED
    progress.print()
    print(
        f"copied {copied} events in {time.monotonic() - progress.started:.1f}s"
        f" ({progress.rate():.0f} events/s)"
    )
    checks = verify(source, target)
    failed = [check for check in checks if not check.ok]
    samples = [check for check in checks if check.name.startswith("events of")]
    for check in checks:
        if check not in samples or not check.ok:
            print(f"  {'ok  ' if check.ok else 'DIFF'} {check.name}: {check.detail}")
    same = sum(check.ok for check in samples)
    print(
        f"  {'ok  ' if same == len(samples) else 'DIFF'} sampled pages and searches:"
        f" {same} of {len(samples)} identical"
    )
    if failed:
        print(
            f"auditcorr: {len(failed)} check(s) differ; was a daemon writing to the source?"
            " Stop it, empty the target and copy again",
            file=sys.stderr,
        )
        return EXIT_FAILED
    finish(target)
    print("verified: the target holds the same timeline")
    return EXIT_OK


def _warn_if_in_use(path: Path | None) -> None:
    """An SQLite store with a write-ahead log in use is likely open in a running daemon."""
    if path is None:
        return
    wal = path.with_name(path.name + "-wal")
    if wal.exists() and wal.stat().st_size > 0:
        print(
            f"auditcorr: warning: {path} looks in use (its write-ahead log is not empty);"
            " stop the daemon first, or events it writes during the copy are missed",
            file=sys.stderr,
        )
