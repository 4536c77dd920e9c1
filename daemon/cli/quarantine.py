"""``auditcorr quarantine``: what was quarantined and why."""

from __future__ import annotations

import argparse
from zoneinfo import ZoneInfo

from daemon.cli.base import EXIT_OK, Commands
from daemon.config import Config


def register(commands: Commands) -> None:
    quarantine = commands.add("quarantine", _quarantine, "list what was quarantined and why")
    quarantine.add_argument("--source", help="only this source id")
    quarantine.add_argument("--limit", type=int, default=50)
    quarantine.add_argument("--raw", action="store_true", help="print the kept raw bytes too")


def _quarantine(args: argparse.Namespace, config: Config) -> int:
    from daemon import audit
    from daemon.store.open import open_store

    store = open_store(config.store_settings(), readonly=True)
    try:
        entries = store.quarantine(source=args.source, limit=args.limit)
        total = store.quarantine_count()
    finally:
        store.close()
    read = audit.cli_action("quarantine_read", source=args.source, entries=len(entries))
    audit.record_from_cli(config, read)
    zone = ZoneInfo(config.daemon.timezone)
    for entry in entries:
        where = (
            entry.origin if entry.position is None else f"{entry.origin} record {entry.position}"
        )
        print(f"#{entry.id} {entry.at.astimezone(zone):%Y-%m-%d %H:%M:%S} [{entry.source}] {where}")
        print(f"    reason: {entry.reason}")
        print(f"    kept {len(entry.raw)} of {entry.raw_size} bytes")
        if args.raw:
            print("    " + entry.raw[:2000].decode("utf-8", errors="replace"))
    print(f"{len(entries)} shown, {total} in quarantine")
    return EXIT_OK
