"""``auditcorr alerts``: the stored alerts, or with ``--pending``/``--failed`` the
outbox's deliveries; ``alerts retry`` queues failed deliveries again."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import orjson

from daemon.cli.base import EXIT_FAILED, EXIT_OK, Commands
from daemon.cli.printing import print_alerts
from daemon.config import Config
from daemon.store.base import Delivery, DeliveryState
from daemon.timeparse import parse_moment


def register(commands: Commands) -> None:
    alerts = commands.add(
        "alerts", _alerts, "list stored alerts (oldest first), or their pending/failed deliveries"
    )
    alerts.add_argument("--since", help="ISO 8601 time or age like 2h, 7d (last seen at or after)")
    alerts.add_argument("--rule", help="only alerts of this rule id")
    alerts.add_argument("--limit", type=int, default=1000)
    alerts.add_argument("--json", action="store_true", help="one alert per line, evidence included")
    state = alerts.add_mutually_exclusive_group()
    state.add_argument("--pending", action="store_true", help="deliveries not made yet")
    state.add_argument("--failed", action="store_true", help="deliveries given up on")
    alerts.add_argument("--output", help="only deliveries to this output id")
    retry = Commands(alerts, inherits_config=True).add(
        "retry",
        _retry_failed,
        "queue failed deliveries again",
        description="Queue failed deliveries again, with a fresh retry budget; a running "
        "daemon sends them within a second.",
    )
    which = retry.add_mutually_exclusive_group(required=True)
    which.add_argument("id", nargs="?", type=int, help="delivery id (the #N of the listing)")
    which.add_argument("--all-failed", action="store_true", help="every failed delivery")


def _alerts(args: argparse.Namespace, config: Config) -> int:
    from daemon.store.open import open_store

    if args.pending or args.failed:
        return _show_deliveries(args, config)

    zone = ZoneInfo(config.daemon.timezone)
    since = parse_moment(args.since, zone=zone) if args.since else None
    store = open_store(config.store_settings(), readonly=True)
    try:
        alerts = store.alerts(since=since, rule=args.rule, limit=args.limit)
    finally:
        store.close()
    print_alerts(alerts, as_json=args.json, zone=zone)
    if not args.json:
        print(f"{len(alerts)} alerts")
    return EXIT_OK


def _show_deliveries(args: argparse.Namespace, config: Config) -> int:
    """List pending or failed deliveries with their last error."""
    from daemon.store.open import open_store

    state: DeliveryState = "failed" if args.failed else "pending"
    store = open_store(config.store_settings(), readonly=True)
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


def _retry_failed(args: argparse.Namespace, config: Config) -> int:
    from daemon import audit
    from daemon.store.open import open_store

    store = open_store(config.store_settings())
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
