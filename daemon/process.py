"""Turning one raw payload into store rows: decode, normalize, encode.

This is the CPU-heavy half of ingestion, kept free of the event loop and of
the store so that it runs in a worker process while the store writes in the
main one: the daemon then uses both cores.  Everything in and out is plain
data that pickles cheaply.
"""

from __future__ import annotations

import os
import select
import signal
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from connectors.base import NormalizationError, RawBatch
from daemon import logtypes
from daemon.filters import SourceFilters, compiled
from daemon.gcpause import cyclic_gc_paused
from daemon.identity import IdentityMap
from daemon.logtypes import LogType
from daemon.model import format_timestamp
from daemon.normalize import UNRECOGNIZED, Limits
from daemon.store import codec as codecs
from daemon.store import stored
from daemon.store.keys import event_hash, row_key
from daemon.store.text import event_tags, search_text
from daemon.store.units import Batch, Quarantined

if TYPE_CHECKING:  # rules load only in workers that have any: pySigma is slow to import
    from daemon.rules.hits import HitMaker

QUARANTINE_RAW_BYTES = 64 * 1024
"""How much of a bad record or payload is kept for inspection."""

SAMPLES_PER_BATCH = 50
"""Stored records sent back for dictionary training while the store has none..."""
SAMPLES_SHARE = 20
"""...or one in this many records of a larger batch: a listener's batches hold
thousands of short records, and every batch stored before the dictionary is
compressed without one (several times larger, and slower to compress)."""


@dataclass(slots=True)
class Processed(Batch):
    """A batch for the store, with what decoding it counted on the way."""

    records: int = 0
    unparsed: int = 0
    """Records kept as raw events because their format could not be read
    (the normalizer's ``labels.parse_error``)."""
    unrecognized: dict[str, int] = field(default_factory=dict)
    """Events whose message their program's normalizer did not understand, by
    ``process.name`` (the ``UNRECOGNIZED`` label)."""
    out_of_range: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    """Records the source's filters dropped before the store, by filter
    (``event_categories``, ``read_only``, ``keep``, ``drop[0]``, ...)."""
    payload_failed: bool = False


@dataclass(frozen=True, slots=True)
class Job:
    """A batch plus what the worker needs to know to encode it."""

    source: str
    batch: RawBatch
    codec: int
    limits: Limits
    key_min: int | None = None
    key_max: int | None = None
    want_samples: bool = False
    keep: tuple[str, ...] = ()
    drop: tuple[str, ...] = ()
    """The source's ``keep`` and ``drop`` expressions (daemon/filters.py)."""
    selection: Mapping[str, Any] = field(default_factory=dict)
    """The source's settings for its log type's ``selector`` (checked on raw records)."""


_codecs: codecs.Codecs | None = None
_identities: IdentityMap | None = None
_hit_maker: HitMaker | None = None


def init_worker(
    dictionaries: Callable[[int], bytes],
    daemon_pid: int | None = None,
    identities: IdentityMap | None = None,
    rule_paths: tuple[str, ...] = (),
) -> None:
    """Process-pool initializer: ``dictionaries`` reads them from the store on demand;
    ``identities`` names the person behind each event at ingest; detection rules
    are compiled once here, so matching runs beside decoding."""
    global _codecs, _identities, _hit_maker  # noqa: PLW0603 - per worker process
    _identities = identities
    # Ctrl-C reaches the whole process group, and systemd's SIGTERM every process of
    # the service (KillMode=control-group): the daemon decides when workers stop, once
    # they have decoded what it drains.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if daemon_pid is not None:
        _exit_with(daemon_pid)

    _codecs = codecs.Codecs(dictionaries)
    if rule_paths:
        from daemon.rules.hits import HitMaker
        from daemon.rules.loader import load_rules

        _hit_maker = HitMaker(load_rules(rule_paths))


def _exit_with(pid: int) -> None:
    """End this worker when the daemon is gone, even by ``kill -9``.

    A killed daemon cannot shut its pool down, and a worker waiting for its
    next job would wait forever.
    """
    try:
        handle = os.pidfd_open(pid)
    except OSError:  # already gone, or no pidfd support: nothing to wait on
        return

    def wait() -> None:
        select.select([handle], [], [])
        os._exit(0)

    threading.Thread(target=wait, name="daemon-watch", daemon=True).start()


def _truncate(raw: bytes) -> bytes:
    return raw[:QUARANTINE_RAW_BYTES]


def _raw_of(record: Any) -> bytes:
    try:
        return orjson.dumps(record)
    except (orjson.JSONEncodeError, TypeError):
        return repr(record)[:QUARANTINE_RAW_BYTES].encode(errors="replace")


def failed(job: Job, reason: str) -> Processed:
    """The result for a payload that could not be decoded at all: quarantined whole."""
    batch = job.batch
    out = Processed(source=job.source, origin=batch.origin, checkpoints=batch.checkpoints)
    out.payload_failed = True
    raw = _truncate(batch.payload)
    out.quarantined.append(Quarantined(batch.origin, None, reason, raw, len(batch.payload)))
    return out


def _raw_fields(
    normalizer: LogType, filters: SourceFilters | None
) -> Mapping[str, Callable[[Any], str | None]] | None:
    """The log type's readers of fields on the raw record (``raw_fields``), when they
    decide every filter expression: a dropped record then is never normalized."""
    raw = normalizer.raw_fields
    if filters is None or not raw or not filters.decided_by([*raw, "source"]):
        return None
    return raw


def process(job: Job) -> Processed:
    """Decode, normalize and encode one batch; never raises for bad input.

    The cyclic garbage collector is paused meanwhile: a batch makes a few
    objects per record and no cycles, and the collector would otherwise walk
    the batch's records again and again (see daemon/gcpause.py).
    """
    with cyclic_gc_paused():
        return _process(job)


def _process(job: Job) -> Processed:
    if _codecs is None:  # pragma: no cover - the pool initializer sets it
        raise RuntimeError("init_worker was not called")
    batch = job.batch
    out = Processed(
        source=job.source,
        origin=batch.origin,
        log_type=batch.log_type,
        checkpoints=batch.checkpoints,
    )
    if batch.error is not None:
        out.payload_failed = True
        out.quarantined.append(
            Quarantined(
                batch.origin, None, batch.error, _truncate(batch.payload), len(batch.payload)
            )
        )
        return out
    normalizer = logtypes.get(batch.log_type)
    try:
        records = normalizer.decode(batch.payload, job.limits)
    except NormalizationError as err:
        # The payload as a whole: its position (a byte offset) belongs in the
        # reason, the position column numbers records.
        out.payload_failed = True
        raw = batch.payload
        reason = err.reason if err.position is None else f"{err.reason} (at byte {err.position})"
        out.quarantined.append(Quarantined(batch.origin, None, reason, _truncate(raw), len(raw)))
        return out
    codec = job.codec
    compress = _codecs.compressor(codec).compress
    ingested = format_timestamp(datetime.now(UTC))
    log_type = batch.log_type
    limit = job.limits.max_record_bytes
    rows = out.rows
    texts = out.texts
    source = job.source
    book = normalizer.book_entry
    samples = max(SAMPLES_PER_BATCH, len(records) // SAMPLES_SHARE)
    selector = normalizer.selector
    pick = selector(job.selection) if selector is not None and job.selection else None
    filters = compiled(job.keep, job.drop)
    early = _raw_fields(normalizer, filters)
    dropped = out.dropped
    normalize = normalizer.normalize
    key_min, key_max = job.key_min, job.key_max
    maker = _hit_maker
    feed = out.feed
    out.records = len(records)
    for position, record in enumerate(records):
        if pick is not None and (setting := pick(record)) is not None:
            dropped[setting] = dropped.get(setting, 0) + 1
            continue
        if early is not None and filters is not None:
            values = {name: read(record) for name, read in early.items()}
            values["source"] = source
            if (kept_out := filters.raw_verdict(values)) is not None:
                dropped[kept_out] = dropped.get(kept_out, 0) + 1
                continue
        try:
            event = normalize(record)
            if _identities is not None and event.actor is None:
                event.actor = _identities.actor_of(event)
            if (
                early is None
                and filters is not None
                and (kept_out := filters.verdict(event, source)) is not None
            ):
                dropped[kept_out] = dropped.get(kept_out, 0) + 1
                continue
            entry = book(record) if book is not None else None
            doc = stored.encode(log_type, ingested, record, event)
            if len(doc) > limit:
                raise NormalizationError(f"record of {len(doc)} bytes exceeds {limit} bytes")
        except NormalizationError as err:
            raw = err.raw if err.raw is not None else _raw_of(record)
            out.quarantined.append(
                Quarantined(batch.origin, position, err.reason, _truncate(raw), len(raw))
            )
            continue
        except Exception as err:  # noqa: BLE001 - a normalizer bug must not lose the batch
            raw = _raw_of(record)
            reason = f"normalizer failed: {type(err).__name__}: {err}"
            out.quarantined.append(
                Quarantined(batch.origin, position, reason, _truncate(raw), len(raw))
            )
            continue
        if "parse_error" in event.labels:
            out.unparsed += 1
        elif UNRECOGNIZED in event.labels:
            program = str(event.fields.get("process.name", ""))
            out.unrecognized[program] = out.unrecognized.get(program, 0) + 1
        eid = event_hash(event.id)
        key = row_key(event.timestamp, eid)
        if entry is not None:
            # The record is kept whatever the time range; only its event is ranged.
            out.changes.append((key, entry))
        if (key_min is not None and key < key_min) or (key_max is not None and key > key_max):
            out.out_of_range += 1
            continue
        if maker is not None and maker.covers(event.dataset):
            for hit in maker.encoded(event.to_document(), source):
                feed.append((eid, hit))
        if job.want_samples and len(out.samples) < samples:
            out.samples.append(doc)
        rows.append((key, eid, codec, compress(doc)))
        texts.append((search_text(event, logtypes.index_words(event)), event_tags(event, source)))
    return out
