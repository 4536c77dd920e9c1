"""``auditcorr export``: the timeline, or what the filters select, written to a file by
the export writer (``daemon/export.py``)."""

from __future__ import annotations

import argparse
import sys

from daemon.cli.base import EXIT_OK, Commands
from daemon.cli.timeline import event_query, filter_arguments
from daemon.config import Config


def register(commands: Commands) -> None:
    export = commands.add(
        "export", _export, "write the timeline (or what the filters select) to a file, oldest first"
    )
    export.add_argument("--format", required=True, choices=["ndjson", "csv", "ecs-bulk"])
    filter_arguments(export)
    export.add_argument("-o", "--output", help="file to write (default: standard output)")
    export.add_argument(
        "--index",
        default="auditcorr-events",
        help="ecs-bulk: the index or data stream to load into (default: auditcorr-events)",
    )


def _export(args: argparse.Namespace, config: Config) -> int:
    from daemon.export import export
    from daemon.store.open import open_store

    query = event_query(args, config)
    store = open_store(config.store_settings(), readonly=True)
    try:
        if args.output:
            with open(args.output, "wb") as out:
                count = export(
                    store, query, args.format, out, index=args.index, progress=sys.stderr.isatty()
                )
        else:
            count = export(
                store, query, args.format, sys.stdout.buffer, index=args.index, progress=False
            )
    finally:
        store.close()
    print(f"export: {count} events", file=sys.stderr)
    return EXIT_OK
