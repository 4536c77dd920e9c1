"""``auditcorr verify-digests``: a cloudtrail_s3 source's digest files and the log files
they list, checked over a time range by ``daemon/digests.py``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from zoneinfo import ZoneInfo

from daemon.cli.base import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, Commands
from daemon.config import Config
from daemon.timeparse import parse_moment


def register(commands: Commands) -> None:
    digests = commands.add(
        "verify-digests",
        _verify_digests,
        "verify CloudTrail digest files and the log files they list (a cloudtrail_s3 source)",
    )
    digests.add_argument("--source", required=True, help="the cloudtrail_s3 source id")
    digests.add_argument("--since", required=True, help="ISO 8601 time or age like 7d")
    digests.add_argument("--until", help="ISO 8601 time or age like 1h (default: now)")
    digests.add_argument("--log-format", choices=["auto", "json", "console"])


def _verify_digests(args: argparse.Namespace, config: Config) -> int:
    from daemon.digests import report, verify_digests

    if args.source not in config.sources:
        print(f"auditcorr: no source {args.source!r} in {config.path}", file=sys.stderr)
        return EXIT_CONFIG
    zone = ZoneInfo(config.daemon.timezone)
    since = parse_moment(args.since, zone=zone)
    until = parse_moment(args.until, zone=zone) if args.until else None
    stats, results = asyncio.run(verify_digests(config, args.source, since=since, until=until))
    for line in report(results):
        print(line)
    if stats.failed_sources:
        print("auditcorr: the check could not run; see the log", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_FAILED if any(r.failed for r in results) else EXIT_OK
