"""``auditcorr timeline``: search the timeline; its filters are ``export``'s too."""

from __future__ import annotations

import argparse
import sys
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from daemon.cli.base import EXIT_OK, Commands
from daemon.cli.printing import print_events
from daemon.config import Config
from daemon.store.base import EventQuery
from daemon.timeparse import parse_moment


def register(commands: Commands) -> None:
    timeline = commands.add("timeline", _timeline, "search the timeline")
    filter_arguments(timeline)
    timeline.add_argument("--limit", type=int, default=50)
    timeline.add_argument("--oldest-first", action="store_true")
    timeline.add_argument("--json", action="store_true", help="one ECS document per line")


def filter_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--since", help="ISO 8601 time or age like 2h, 7d")
    sub.add_argument("--until", help="ISO 8601 time or age")
    sub.add_argument("-q", "--query", help="full-text search: every word must occur")
    for name in ("actor", "user", "ip", "host", "account", "region", "dataset", "action"):
        sub.add_argument(f"--{name}", help=f"exact {name}")
    sub.add_argument("--outcome", choices=["success", "failure", "unknown"])
    sub.add_argument("--source", help="only events read by this source id")


def event_query(args: argparse.Namespace, config: Config, **more: Any) -> EventQuery:
    zone = ZoneInfo(config.daemon.timezone)
    return EventQuery(
        since=parse_moment(args.since, zone=zone) if args.since else None,
        until=parse_moment(args.until, zone=zone) if args.until else None,
        text=args.query,
        actor=args.actor,
        user=args.user,
        ip=args.ip,
        host=args.host,
        account=args.account,
        region=args.region,
        dataset=args.dataset,
        action=args.action,
        outcome=args.outcome,
        source=args.source,
        **more,
    )


def _timeline(args: argparse.Namespace, config: Config) -> int:
    from daemon.store.open import open_store

    zone = ZoneInfo(config.daemon.timezone)
    query = event_query(
        args, config, limit=args.limit, order="oldest" if args.oldest_first else "newest"
    )
    store = open_store(config.store_settings(), readonly=True)
    try:
        docs = store.search(query)
    finally:
        store.close()
    if args.json:
        out = sys.stdout.buffer
        for doc in docs:
            out.write(orjson.dumps(doc) + b"\n")
        out.flush()
    else:
        print_events(docs, zone)
        sys.stdout.flush()
    return EXIT_OK
