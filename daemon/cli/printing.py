"""How the commands print events, alerts and JSON, so each looks the same wherever shown."""

from __future__ import annotations

import shutil
import sys
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from daemon.alert import Alert


def print_json(value: Any) -> None:
    sys.stdout.buffer.write(orjson.dumps(value, option=orjson.OPT_INDENT_2) + b"\n")
    sys.stdout.flush()


def print_events(docs: list[dict[str, Any]], zone: ZoneInfo) -> None:
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


def print_alerts(alerts: list[Alert], *, as_json: bool, zone: ZoneInfo | None) -> None:
    if as_json:
        out = sys.stdout.buffer
        for alert in alerts:
            out.write(orjson.dumps(alert.to_json()) + b"\n")
        out.flush()
        return
    for alert in alerts:
        first = alert.first_seen.astimezone(zone) if zone else alert.first_seen
        group = " ".join(f"{name}={value}" for name, value in alert.group.items() if value)
        actors = ",".join(alert.actors) or "-"
        print(
            f"{first:%Y-%m-%d %H:%M:%S}  {alert.severity:13} {alert.rule_id:44}"
            f" x{alert.count:<4} {alert.environment:8} actors={actors} {group}"
        )
