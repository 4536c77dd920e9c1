"""``auditcorr backfill``: what the sources hold now read into the timeline, then exit."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from zoneinfo import ZoneInfo

from daemon.cli.base import EXIT_CONFIG, Commands
from daemon.config import Config
from daemon.timeparse import parse_moment


def register(commands: Commands) -> None:
    backfill = commands.add(
        "backfill", _backfill, "read what the sources hold now into the timeline, then exit"
    )
    backfill.add_argument("--source", help="only this source id")
    backfill.add_argument("--since", help="ISO 8601 time or age like 7d")
    backfill.add_argument("--until", help="ISO 8601 time or age like 1h")
    backfill.add_argument("--log-format", choices=["auto", "json", "console"])
    backfill.add_argument(
        "--no-deliver", action="store_true", help="leave queued alerts for the daemon to send"
    )
    backfill.add_argument(
        "--deliver-timeout",
        type=float,
        default=60.0,
        metavar="SECS",
        help="wait this long for queued alerts to be delivered (default 60)",
    )


def _backfill(args: argparse.Namespace, config: Config) -> int:
    from daemon.app import outcome_of_backfill, run_backfill

    if args.source is not None and args.source not in config.sources:
        known = ", ".join(sorted(config.sources)) or "none"
        print(
            f"auditcorr: no source {args.source!r} in {config.path} (known: {known})",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    zone = ZoneInfo(config.daemon.timezone)
    since = parse_moment(args.since, zone=zone) if args.since else None
    until = parse_moment(args.until, zone=zone) if args.until else None
    started = time.monotonic()
    stats = asyncio.run(
        run_backfill(
            config, only=args.source, since=since, until=until, progress=sys.stderr.isatty()
        )
    )
    seconds = time.monotonic() - started
    undelivered = ""
    if config.outputs and not args.no_deliver:
        from daemon.app import deliver_queued

        left = asyncio.run(deliver_queued(config, args.deliver_timeout))
        undelivered = f" undelivered={left}"
        if left:
            print(
                f"auditcorr: {left} alert deliveries still pending;"
                " see 'auditcorr alerts --pending'",
                file=sys.stderr,
            )
    status, reason = outcome_of_backfill(stats)
    rate = stats.stored / seconds if seconds > 0 else 0.0
    print(
        f"backfill: files={stats.payloads} records={stats.records} stored={stats.stored}"
        f" duplicates={stats.duplicates} dropped={stats.dropped} quarantined={stats.quarantined}"
        f" failed_files={stats.failed_payloads} out_of_range={stats.out_of_range}"
        f" expired={stats.expired}"
        f" seconds={seconds:.1f} events_per_sec={rate:.0f}{undelivered}"
    )
    if status:
        print(f"auditcorr: {reason}", file=sys.stderr)
    return status
