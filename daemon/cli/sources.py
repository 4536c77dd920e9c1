"""``auditcorr sources``: every configured source and how far its checkpoints got.

Read from the store, so it works beside a running daemon (SQLite WAL) and on a
stopped one's state.  The checkpoint values are each connector's own; they are
shown as they are (long lists as their length), so what a connector records
there, such as the digest reconciliation counts of ``cloudtrail_s3``, shows
without this command knowing about it.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

import orjson

from connectors.base import JSON
from daemon.cli.base import EXIT_OK, Commands
from daemon.config import Config
from daemon.filters import DROPPED_KEY


def register(commands: Commands) -> None:
    sources = commands.add(
        "sources", _sources, "list the configured sources and how far each one's checkpoints got"
    )
    sources.add_argument("--json", action="store_true", help="JSON output, checkpoints in full")


def _sources(args: argparse.Namespace, config: Config) -> int:
    from daemon.store.open import open_store

    now = datetime.now(UTC)
    store = open_store(config.store_settings(), readonly=True)
    try:
        listing = [
            _source(name, source.type, store.checkpoints(name), store.checkpoint_times(name), now)
            for name, source in config.sources.items()
        ]
    finally:
        store.close()
    if args.json:
        print(orjson.dumps({"sources": listing}, option=orjson.OPT_INDENT_2).decode())
        return EXIT_OK
    for entry in listing:
        print(f"{entry['id']} ({entry['type']}): {len(entry['checkpoints'])} checkpoints")
        if entry["dropped"]:
            total = sum(entry["dropped"].values())
            print(f"  dropped by filters: {total} ({fields(entry['dropped'])})")
        for checkpoint in entry["checkpoints"]:
            age = _age(checkpoint["age_secs"])
            print(f"  {checkpoint['key']}  {fields(checkpoint['value'])}  ({age} ago)")
    return EXIT_OK


def _source(
    name: str, kind: str, values: dict[str, JSON], times: dict[str, datetime], now: datetime
) -> JSON:
    dropped = _dropped(values)
    values = {key: value for key, value in values.items() if not key.startswith(DROPPED_KEY)}
    checkpoints = [
        {
            "key": key,
            "value": values[key],
            "updated": times[key].isoformat().replace("+00:00", "Z"),
            "age_secs": round((now - times[key]).total_seconds(), 3),
        }
        for key in sorted(values)
    ]
    return {"id": name, "type": kind, "dropped": dropped, "checkpoints": checkpoints}


def _dropped(values: dict[str, JSON]) -> dict[str, int]:
    """Records the source's filters dropped, by filter, summed over the daemons
    (cluster members) that keep a tally (``DROPPED_KEY``, written by daemon/pipeline.py)."""
    total: dict[str, int] = {}
    for key, tally in values.items():
        if key.startswith(DROPPED_KEY):
            for name, count in tally.items():
                total[name] = total.get(name, 0) + int(count)
    return dict(sorted(total.items()))


def fields(value: JSON) -> str:
    """A checkpoint value on one line: lists by their length, tables in parentheses."""
    return " ".join(f"{key}={_item(item)}" for key, item in value.items())


def _item(value: Any) -> str:
    if isinstance(value, dict):
        return f"({fields(value)})"
    if isinstance(value, list):
        return f"[{len(value)}]"
    return str(value)


def _age(secs: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= size:
            return f"{secs / size:.0f}{unit}"
    return f"{secs:.0f}s"
