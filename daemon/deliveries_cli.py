"""``auditcorr alerts --pending|--failed`` and ``alerts retry``: the outbox from the CLI.

Kept apart from ``cli.py`` so the plain alert listing and these delivery
views share the ``alerts`` command without sharing code.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import orjson

from daemon.config import Config
from daemon.store.base import Delivery, DeliveryState

EXIT_OK = 0
EXIT_FAILED = 1


def add_delivery_arguments(alerts: argparse.ArgumentParser) -> None:
    """``--pending``/``--failed`` on the ``alerts`` command, and its ``retry`` subcommand."""
    state = alerts.add_mutually_exclusive_group()
    state.add_argument("--pending", action="store_true", help="deliveries not made yet")
    state.add_argument("--failed", action="store_true", help="deliveries given up on")
    alerts.add_argument("--output", help="only deliveries to this output id")
    actions = alerts.add_subparsers(title="actions", metavar="ACTION")
    retry = actions.add_parser(
        "retry",
        help="queue failed deliveries again",
        description="Queue failed deliveries again, with a fresh retry budget; a running "
        "daemon sends them within a second.",
    )
    # SUPPRESS: a value given before 'retry' is not overwritten by this default.
    retry.add_argument("--config", "-c", default=argparse.SUPPRESS, help="config file")
    which = retry.add_mutually_exclusive_group(required=True)
    which.add_argument("id", nargs="?", type=int, help="delivery id (the #N of the listing)")
    which.add_argument("--all-failed", action="store_true", help="every failed delivery")
    retry.set_defaults(handler=retry_failed)


def show_deliveries(args: argparse.Namespace, config: Config) -> int:
    """List pending or failed deliveries with their last error."""
    from daemon.stores import open_store

    state: DeliveryState = "failed" if args.failed else "pending"
    store = open_store(config, readonly=True)
    try:
        rows = store.deliveries(state, output=args.output, limit=args.limit)
        counts = store.delivery_counts()
    finally:
        store.close()
    if args.json:
        out = sys.stdout.buffer
        for row in rows:
            out.write(orjson.dumps(_as_json(row)) + b"\n")
        out.flush()
        return EXIT_OK
    zone = ZoneInfo(config.daemon.timezone)
    for row in rows:
        print(_line(row, zone))
    per_output = {o: n for (o, s), n in sorted(counts.items()) if s == state}
    summary = ", ".join(f"{o}={n}" for o, n in per_output.items()) or "none"
    print(f"{len(rows)} shown; {state} per output: {summary}")
    return EXIT_OK


def retry_failed(args: argparse.Namespace, config: Config) -> int:
    from daemon import audit
    from daemon.stores import open_store

    store = open_store(config)
    try:
        ids = None if args.all_failed else [args.id]
        count = store.retry_deliveries(ids, datetime.now(UTC))
    finally:
        store.close()
    if count:
        retried = audit.cli_action("deliveries_retried", ids=ids or "all failed", count=count)
        audit.record_from_cli(config, retried)
    if not count and not args.all_failed:
        print(f"auditcorr: no failed delivery #{args.id}", file=sys.stderr)
        return EXIT_FAILED
    print(f"{count} deliver{'y' if count == 1 else 'ies'} queued again")
    return EXIT_OK


def _line(row: Delivery, zone: ZoneInfo) -> str:
    alert = row.alert
    when = row.enqueued_at.astimezone(zone)
    head = (
        f"#{row.id} [{row.output}] {row.state} attempts={row.attempts}"
        f" queued {when:%Y-%m-%d %H:%M:%S}"
    )
    if row.state == "pending":
        head += f" next {row.due_at.astimezone(zone):%H:%M:%S}"
    lines = [
        head,
        f"    [{alert['severity'].upper()}] {alert['rule']['title']} (alert {row.alert_id})",
    ]
    if row.last_error:
        lines.append(f"    last error: {row.last_error}")
    return "\n".join(lines)


def _as_json(row: Delivery) -> dict[str, object]:
    return {
        "id": row.id,
        "output": row.output,
        "state": row.state,
        "attempts": row.attempts,
        "enqueued_at": row.enqueued_at.isoformat(),
        "due_at": row.due_at.isoformat(),
        "last_error": row.last_error,
        "alert": row.alert,
    }
