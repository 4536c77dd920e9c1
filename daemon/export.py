"""``auditcorr export``: the timeline as NDJSON, CSV or Elasticsearch ``_bulk`` bodies.

Events are read a page at a time, oldest first, and written as they come, so
memory stays flat however large the export.  ``ecs-bulk`` uses ``create``
actions with the event id as ``_id``: loading the same export twice, or two
overlapping ones, stores each event once (and works with data streams).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import IO, Any

import orjson

from daemon.store.base import JSON, EventQuery, Store

PAGE = 2000

CSV_COLUMNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("@timestamp", ("@timestamp",)),
    ("event.id", ("event", "id")),
    ("event.dataset", ("event", "dataset")),
    ("event.action", ("event", "action")),
    ("event.outcome", ("event", "outcome")),
    ("actor", ("actor",)),
    ("user.name", ("user", "name")),
    ("source.ip", ("source", "ip")),
    ("host.name", ("host", "name")),
    ("cloud.account.id", ("cloud", "account", "id")),
    ("cloud.region", ("cloud", "region")),
    ("message", ("message",)),
)


def documents(store: Store, query: EventQuery) -> Iterator[JSON]:
    """Every document ``query`` selects, oldest first, one page in memory at a time."""
    page_query = replace(query, order="oldest", limit=PAGE, after=None)
    while True:
        page = store.page(page_query)
        for found in page:
            yield found.document
        if len(page) < PAGE:
            return
        page_query = replace(page_query, after=page[-1].key)


def _field(doc: JSON, path: tuple[str, ...]) -> str:
    value: Any = doc
    for part in path:
        if not isinstance(value, dict):
            return ""
        value = value.get(part)
    return "" if value is None else str(value)


def _csv_lines(docs: Iterator[JSON]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([name for name, _ in CSV_COLUMNS])
    for doc in docs:
        writer.writerow([_field(doc, path) for _, path in CSV_COLUMNS])
        yield buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()


def encoder(format_name: str, index: str) -> Callable[[Iterator[JSON]], Iterator[bytes]]:
    """Documents to bytes for one format."""
    if format_name == "ndjson":
        return lambda docs: (orjson.dumps(doc) + b"\n" for doc in docs)
    if format_name == "csv":
        return _csv_lines
    if format_name == "ecs-bulk":

        def bulk(docs: Iterator[JSON]) -> Iterator[bytes]:
            for doc in docs:
                action = {"create": {"_index": index, "_id": _field(doc, ("event", "id"))}}
                yield orjson.dumps(action) + b"\n" + orjson.dumps(doc) + b"\n"

        return bulk
    raise ValueError(f"unknown export format {format_name!r} (ndjson, csv, ecs-bulk)")


def export(
    store: Store,
    query: EventQuery,
    format_name: str,
    out: IO[bytes],
    *,
    index: str = "auditcorr-events",
    progress: bool = False,
) -> int:
    """Write what ``query`` selects to ``out``; returns how many events."""
    count = 0
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(unit=" events", unit_scale=True, leave=False)

    def counted(docs: Iterator[JSON]) -> Iterator[JSON]:
        nonlocal count
        for doc in docs:
            count += 1
            if bar is not None and count % PAGE == 0:
                bar.update(PAGE)
            yield doc

    try:
        for chunk in encoder(format_name, index)(counted(documents(store, query))):
            out.write(chunk)
    finally:
        if bar is not None:
            bar.close()
    out.flush()
    return count
