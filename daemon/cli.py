"""The ``auditcorr`` command."""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import shutil
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from connectors.base import ConfigError
from daemon import __version__
from daemon.cluster.status_cli import add_cluster_command
from daemon.config import Config, ConfigFileError, load_config
from daemon.deliveries_cli import add_delivery_arguments
from daemon.logs import configure
from daemon.migrate_store import add_migrate_command
from daemon.rules.commands import add_alerts_command, add_rules_commands
from daemon.sources_cli import add_sources_command
from daemon.store.base import EventQuery, Store, StoreUnavailableError
from daemon.store.schema import StoreUpgradeError
from daemon.timeparse import parse_moment

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2
DEFAULT_CONFIG = "/etc/auditcorr/config.toml"


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return EXIT_CONFIG
    config: Config | None = None
    if getattr(args, "needs_config", True) or (
        getattr(args, "checks_config", False) and args.config is not None
    ):
        try:
            config = load_config(Path(args.config))
        except ConfigFileError as err:
            return _config_problems(err)
    configure(getattr(args, "log_format", None) or (config.daemon.log_format if config else "auto"))
    try:
        result: int = args.handler(args, config)
    except ConfigFileError as err:
        # A command that reads configs of its own (migrate-store --from/--to).
        return _config_problems(err)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader (head, less) went away: not an error.  Point stdout at
        # /dev/null so the interpreter's final flush does not complain.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except (ValueError, FileNotFoundError, ConfigError) as err:
        print(f"auditcorr: {err}", file=sys.stderr)
        return EXIT_CONFIG
    except (StoreUpgradeError, StoreUnavailableError) as err:
        print(f"auditcorr: {err}", file=sys.stderr)
        return EXIT_FAILED
    return result


def _config_problems(err: ConfigFileError) -> int:
    print(f"{err.path}: {len(err.errors)} problem(s) found", file=sys.stderr)
    for problem in err.errors:
        print(f"  {problem}", file=sys.stderr)
    return EXIT_CONFIG


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="auditcorr",
        description="Hybrid on-prem/cloud audit correlator: one timeline of CloudTrail, "
        "syslog and change records.",
    )
    parser.add_argument("--version", action="version", version=f"auditcorr {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    def command(name: str, handler: Any, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument(
            "--config",
            "-c",
            default=os.environ.get("AUDITCORR_CONFIG", DEFAULT_CONFIG),
            help=f"config file (default: $AUDITCORR_CONFIG or {DEFAULT_CONFIG})",
        )
        sub.set_defaults(handler=handler)
        return sub

    run = command("run", _run, "run the daemon: follow every source until stopped")
    run.add_argument("--log-format", choices=["auto", "json", "console"])
    command("check-config", _check_config, "validate the config file and print a summary")
    doctor = command(
        "doctor",
        _doctor,
        "check the config, the host and what each source needs; print a checklist",
    )
    doctor.set_defaults(needs_config=False)
    backfill = command(
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
    quarantine = command("quarantine", _quarantine, "list what was quarantined and why")
    quarantine.add_argument("--source", help="only this source id")
    quarantine.add_argument("--limit", type=int, default=50)
    quarantine.add_argument("--raw", action="store_true", help="print the kept raw bytes too")
    timeline = command("timeline", _timeline, "search the timeline")
    _filter_arguments(timeline)
    timeline.add_argument("--limit", type=int, default=50)
    timeline.add_argument("--oldest-first", action="store_true")
    timeline.add_argument("--json", action="store_true", help="one ECS document per line")
    changes = command(
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
    whois = command("whois", _whois, "what a name resolves to, and that person's last events")
    whois.add_argument("name", help="person id, name, e-mail, account, IAM ARN or session name")
    whois.add_argument("--limit", type=int, default=20, help="events to show")
    whois.add_argument("--json", action="store_true", help="JSON output")
    digests = command(
        "verify-digests",
        _verify_digests,
        "verify CloudTrail digest files and the log files they list (a cloudtrail_s3 source)",
    )
    digests.add_argument("--source", required=True, help="the cloudtrail_s3 source id")
    digests.add_argument("--since", required=True, help="ISO 8601 time or age like 7d")
    digests.add_argument("--until", help="ISO 8601 time or age like 1h (default: now)")
    digests.add_argument("--log-format", choices=["auto", "json", "console"])
    add_sources_command(command)
    add_cluster_command(command)
    add_delivery_arguments(add_alerts_command(command))
    add_rules_commands(commands)
    add_migrate_command(commands)
    export = command(
        "export", _export, "write the timeline (or what the filters select) to a file, oldest first"
    )
    export.add_argument("--format", required=True, choices=["ndjson", "csv", "ecs-bulk"])
    _filter_arguments(export)
    export.add_argument("-o", "--output", help="file to write (default: standard output)")
    export.add_argument(
        "--index",
        default="auditcorr-events",
        help="ecs-bulk: the index or data stream to load into (default: auditcorr-events)",
    )
    api = commands.add_parser("api", help="HTTP API helpers", description="HTTP API helpers")
    api_commands = api.add_subparsers(title="commands", metavar="COMMAND")
    hash_token = api_commands.add_parser(
        "hash-token",
        help="make a new API token and print it with the hash [api] tokens keep",
        description="Make a new random API token (or hash one read from standard input with"
        " --stdin) and print the hash to put in [[api.tokens]]; the config never holds the token.",
    )
    hash_token.add_argument("--stdin", action="store_true", help="hash a token read from stdin")
    hash_token.set_defaults(handler=_hash_token, needs_config=False)
    for sub in command_parsers(parser):
        if "--config" not in sub._option_string_actions:
            _config_checked_when_given(sub)
    return parser


def command_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """The parsers of the commands that run, nested ones included (``alerts``, ``alerts
    retry``, ``rules list``; not ``rules`` alone)."""
    found = [parser] if parser.get_default("handler") is not None else []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found += command_parsers(sub)
    return found


def _config_checked_when_given(sub: argparse.ArgumentParser) -> None:
    """``--config`` for a command that needs no config file: every command takes it, so an
    operator can pass it everywhere; given, the file is read and checked as by the others."""
    sub.add_argument(
        "--config",
        "-c",
        help="config file: this command needs none, but checks the one given like every command",
    )
    sub.set_defaults(checks_config=True)


def _filter_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--since", help="ISO 8601 time or age like 2h, 7d")
    sub.add_argument("--until", help="ISO 8601 time or age")
    sub.add_argument("-q", "--query", help="full-text search: every word must occur")
    for name in ("actor", "user", "ip", "host", "account", "region", "dataset", "action"):
        sub.add_argument(f"--{name}", help=f"exact {name}")
    sub.add_argument("--outcome", choices=["success", "failure", "unknown"])
    sub.add_argument("--source", help="only events read by this source id")


def _event_query(args: argparse.Namespace, config: Config, **more: Any) -> EventQuery:
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


def _run(args: argparse.Namespace, config: Config) -> int:
    from daemon.app import run_daemon

    asyncio.run(run_daemon(config))
    return EXIT_OK


def _store_where(config: Config) -> str:
    """The store's file, or its database's connection string without the password."""
    if config.store.type == "postgresql" and config.store.dsn is not None:
        from daemon.store.postgres import describe

        return describe(config.store.dsn.reveal()).removeprefix("postgresql ")
    return str(config.store_path)


def _check_config(args: argparse.Namespace, config: Config) -> int:
    print(f"{config.path}: valid")
    print(
        f"  store: {config.store.type} {_store_where(config)}"
        f" (retention {config.store.retention_days} days)"
    )
    print(f"  state_dir: {config.daemon.state_dir}  timezone: {config.daemon.timezone}")
    print(f"  sources: {len(config.sources)}")
    for name, source in config.sources.items():
        details = ", ".join(
            f"{key}={value}" for key, value in source.model_dump().items() if key != "type"
        )
        print(f"    {name}: {source.type} ({details})")
    print(f"  outputs: {len(config.outputs)}")
    for name, output in config.outputs.items():
        print(f"    {name}: {output.type}")
    print(f"  people in identity map: {len(config.identity.people)}")
    return EXIT_OK


def _doctor(args: argparse.Namespace, _config: None) -> int:
    """Loads the config itself: an invalid config is one of the things it reports."""
    from daemon.doctor import diagnose, report

    path = Path(args.config)
    return report(path, asyncio.run(diagnose(path)), sys.stdout)


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


def _quarantine(args: argparse.Namespace, config: Config) -> int:
    from daemon import audit
    from daemon.stores import open_store

    store = open_store(config, readonly=True)
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


def _timeline(args: argparse.Namespace, config: Config) -> int:
    from daemon.stores import open_store

    zone = ZoneInfo(config.daemon.timezone)
    query = _event_query(
        args, config, limit=args.limit, order="oldest" if args.oldest_first else "newest"
    )
    store = open_store(config, readonly=True)
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
        _print_table(docs, zone)
        sys.stdout.flush()
    return EXIT_OK


def _changes(args: argparse.Namespace, config: Config) -> int:
    from connectors.contracts.change_record import parse_record
    from daemon.changes.book import ChangeBook
    from daemon.changes.coverage import NEAREST_HORIZON, coverage
    from daemon.changes.report import record_lines, scope_lines, verdict_lines
    from daemon.stores import open_store

    zone = ZoneInfo(config.daemon.timezone)
    since = parse_moment(args.since, zone=zone) if args.since else None
    until = parse_moment(args.until, zone=zone) if args.until else None
    store = open_store(config, readonly=True)
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
                _print_json({"event": args.covering, **verdict.to_json()})
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
        _print_json(versions)
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
            _print_json(one.to_json())
        else:
            print("\n".join(review_lines(one, zone)))
        return EXIT_OK
    if since is None:
        print("auditcorr: --review without a change id needs --since", file=sys.stderr)
        return EXIT_CONFIG
    records = [parse_record(r) for r in store.change_records(since=since, until=until or now)]
    found = reviews(store, records, identities, now=now)
    if args.json:
        _print_json([r.to_json() for r in found])
    elif args.format == "csv":
        writer = csv.DictWriter(sys.stdout, PERIOD_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(period_rows(found))
    else:
        print("\n".join(period_lines(found, zone)))
    return EXIT_OK


def _whois(args: argparse.Namespace, config: Config) -> int:
    from daemon.changes.report import person_lines
    from daemon.stores import open_store

    people = config.identity.identity_map().lookup(args.name)
    store = open_store(config, readonly=True)
    try:
        if people:
            docs = [
                doc
                for person in people
                for doc in store.search(EventQuery(actor=person.id, limit=args.limit))
            ]
        else:
            # Unresolved principals stay visible as themselves.
            docs = store.search(EventQuery(user=args.name, limit=args.limit))
    finally:
        store.close()
    if args.json:
        _print_json({"name": args.name, "people": [p.id for p in people], "events": docs})
        return EXIT_OK
    if not people:
        print(f"{args.name}: nobody in the identity map; events of that user name:")
    for person in people:
        print("\n".join(person_lines(person)))
    _print_table(docs, ZoneInfo(config.daemon.timezone))
    return EXIT_OK


def _print_json(value: Any) -> None:
    sys.stdout.buffer.write(orjson.dumps(value, option=orjson.OPT_INDENT_2) + b"\n")
    sys.stdout.flush()


def _export(args: argparse.Namespace, config: Config) -> int:
    from daemon.export import export
    from daemon.stores import open_store

    query = _event_query(args, config)
    store = open_store(config, readonly=True)
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


def _hash_token(args: argparse.Namespace, _config: None) -> int:
    from daemon.api.auth import hash_token, new_token

    if args.stdin:
        token = sys.stdin.readline().strip()
        if not token:
            print("auditcorr: no token on standard input", file=sys.stderr)
            return EXIT_CONFIG
        print(hash_token(token))
        return EXIT_OK
    token = new_token()
    print(f"token: {token}")
    print("add to the config (the token itself is not kept there):")
    print("[[api.tokens]]")
    print('name = "CHANGE-ME"       # who holds it')
    print('role = "reader"          # reader | changes | admin')
    print(f'hash = "{hash_token(token)}"')
    return EXIT_OK


def _print_table(docs: list[dict[str, Any]], zone: ZoneInfo) -> None:
    """One line per event, cut at the width of a terminal (not in a pipe or file).

    The dataset and the event id are shown whole, in columns as wide as this page
    needs and before the rest, so a narrow terminal cuts the place, not the id:
    the id is what ``changes --covering`` takes, the dataset what ``--dataset`` filters by.
    """
    width = shutil.get_terminal_size().columns if sys.stdout.isatty() else None
    rows = [_table_row(doc, zone) for doc in docs]
    dataset = max((len(row[1]) for row in rows), default=0)
    ident = max((len(row[2]) for row in rows), default=0)
    widths = (19, max(dataset, 7), max(ident, 8), 20, 26, 7, 15)
    header = ("time", "dataset", "event id", "who", "action", "result", "from", "where")
    for row in [header, *rows]:
        cells = [f"{cell[:size]:{size}}" for cell, size in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[-1]])[:width])
    print(f"{len(docs)} events")


def _table_row(doc: dict[str, Any], zone: ZoneInfo) -> tuple[str, ...]:
    moment = datetime.fromisoformat(doc["@timestamp"]).astimezone(zone)
    event = doc.get("event", {})
    user = doc.get("user", {})
    cloud = doc.get("cloud", {})
    action, outcome = event.get("action", "-"), event.get("outcome", "-")
    if event.get("kind") == "alert":  # an alert's entry: which rule, how severe
        action = doc.get("rule", {}).get("id", action)
        outcome = doc.get("labels", {}).get("severity", outcome)
    where = "/".join(
        filter(None, [cloud.get("account", {}).get("id"), cloud.get("region")])
    ) or doc.get("host", {}).get("name", "-")
    source = doc.get("source", {})
    return (
        f"{moment:%Y-%m-%d %H:%M:%S}",
        str(event.get("dataset", "-")),
        str(event.get("id", "-")),
        str(doc.get("actor") or user.get("name") or "-"),
        str(action),
        str(outcome),
        str(source.get("ip") or source.get("address") or "-"),
        str(where),
    )


if __name__ == "__main__":
    sys.exit(main())
