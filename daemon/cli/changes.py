"""``auditcorr changes``: change records, which of them cover an event and why not, and
the review of what was done under them."""

from __future__ import annotations

import argparse
import csv
import sys
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from daemon.cli.base import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, Commands
from daemon.cli.printing import print_json
from daemon.config import Config
from daemon.store.base import Store
from daemon.timeparse import parse_moment


def register(commands: Commands) -> None:
    changes = commands.add(
        "changes",
        _changes,
        "list change records, which records cover an event and why not, or review what was done",
    )
    changes.add_argument("--covering", metavar="EVENT_ID", help="the coverage verdict of an event")
    changes.add_argument("--history", metavar="CHANGE_ID", help="every version of one record")
    changes.add_argument(
        "--review",
        nargs="?",
        const="",
        metavar="CHANGE_ID",
        help="post-implementation review of one record; without an id, with --since:"
        " every record of the period with its verdict",
    )
    changes.add_argument(
        "--format",
        choices=["text", "csv"],
        default="text",
        help="the period report as a table (default) or CSV",
    )
    changes.add_argument("--since", help="windows ending at or after (ISO 8601 or age like 7d)")
    changes.add_argument(
        "--until",
        help="windows starting at or before; with --covering: the event's time range to search",
    )
    changes.add_argument("--json", action="store_true", help="JSON output")


def _changes(args: argparse.Namespace, config: Config) -> int:
    from connectors.contracts.change_record import parse_record
    from daemon.changes.book import ChangeBook
    from daemon.changes.coverage import NEAREST_HORIZON, coverage
    from daemon.changes.report import record_lines, scope_lines, verdict_lines
    from daemon.store.open import open_store

    zone = ZoneInfo(config.daemon.timezone)
    since = parse_moment(args.since, zone=zone) if args.since else None
    until = parse_moment(args.until, zone=zone) if args.until else None
    store = open_store(config.store_settings(), readonly=True)
    try:
        if args.review is not None:
            return _review(args, config, store, since, until)
        if args.covering:
            doc = store.event_by_id(args.covering, since=since, until=until)
            if doc is None:
                print(f"auditcorr: no event {args.covering!r} in the timeline", file=sys.stderr)
                return EXIT_FAILED
            moment = datetime.fromisoformat(doc["@timestamp"])
            found = store.change_records(
                since=moment - NEAREST_HORIZON, until=moment + NEAREST_HORIZON
            )
            verdict = coverage(doc, ChangeBook.from_json(found, config.identity.identity_map()))
            if args.json:
                print_json({"event": args.covering, **verdict.to_json()})
            else:
                print("\n".join(verdict_lines(doc, verdict, zone)))
            return EXIT_OK
        if args.history:
            versions = store.change_history(args.history)
        else:
            versions = store.change_records(since=since, until=until)
    finally:
        store.close()
    if args.json:
        print_json(versions)
        return EXIT_OK
    # History in the order received; current records by window start.
    records = [parse_record(v) for v in versions]
    if not args.history:
        records = ChangeBook(records).records
    print("\n".join(record_lines(records, zone)))
    if args.history:
        for record in records:
            print(f"  {record.id} v{record.version or '-'} {record.revision}: {record.state}")
            print("\n".join(scope_lines(record)))
    print(f"{len(records)} record(s)")
    return EXIT_OK


def _review(
    args: argparse.Namespace,
    config: Config,
    store: Store,
    since: datetime | None,
    until: datetime | None,
) -> int:
    from connectors.contracts.change_record import parse_record
    from daemon.changes.report import PERIOD_COLUMNS, period_lines, period_rows, review_lines
    from daemon.changes.review import book_for, review, reviews

    zone = ZoneInfo(config.daemon.timezone)
    identities = config.identity.identity_map()
    now = datetime.now(UTC)
    if args.review:
        current = store.change_record(args.review)
        if current is None:
            print(f"auditcorr: no change record {args.review!r}", file=sys.stderr)
            return EXIT_FAILED
        record = parse_record(current)
        book = book_for(store, record.start, record.end, identities)
        one = review(store, record, book, now=now)
        if args.json:
            print_json(one.to_json())
        else:
            print("\n".join(review_lines(one, zone)))
        return EXIT_OK
    if since is None:
        print("auditcorr: --review without a change id needs --since", file=sys.stderr)
        return EXIT_CONFIG
    records = [parse_record(r) for r in store.change_records(since=since, until=until or now)]
    found = reviews(store, records, identities, now=now)
    if args.json:
        print_json([r.to_json() for r in found])
    elif args.format == "csv":
        writer = csv.DictWriter(sys.stdout, PERIOD_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(period_rows(found))
    else:
        print("\n".join(period_lines(found, zone)))
    return EXIT_OK
