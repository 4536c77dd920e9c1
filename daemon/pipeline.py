"""From sources to the store: bounded queues, worker processes, one writer.

    sources --raw queue--> processor --in-flight queue--> writer --> store --> correlator
                          (submits to the          (in order; commits events,    (its own stage,
                           process pool: decode,    quarantine, checkpoints,      reads the feed:
                           normalize, detect)       change records, the feed)     daemon/correlator)

Every queue is bounded, so a slow store slows the pool, which slows the
sources.  Results are committed in the order the sources emitted them, so a
checkpoint never gets ahead of an uncommitted batch of the same source.
Stopping means: stop the sources, let what was read drain into the store,
then return.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import random
import sqlite3
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Literal

import structlog
from prometheus_client import Histogram

from connectors import registry
from connectors.base import Checkpoint, Intake, RawBatch, Source, SourceContext
from connectors.config import ConnectorConfig, SourceConfig
from daemon.correlator.stage import CorrelatorStage
from daemon.filters import DROPPED_KEY
from daemon.identity import IdentityMap
from daemon.normalize import Limits
from daemon.process import Job, Processed, failed, init_worker, process
from daemon.status import SourceState
from daemon.store.base import Store, StoreUnavailableError, WriteResult
from daemon.store.keys import key_ceiling, key_floor, key_time

log = structlog.get_logger()

WRITE_ROWS = 10_000
"""Rows gathered into one store transaction at most.

The writer commits group-wise: a transaction takes every batch queued (or
being decoded) when it starts, and no more.  A lone event is committed at
once; under load, batches pile up while the previous commit runs, so bulk
reads still get large transactions (each commit flushes a full-text
segment, so many small commits would cost far more than a few large ones)."""
RAW_QUEUE = 4
IN_FLIGHT = 16
"""Batches between the processor and the writer, most of them already decoded."""
JOBS_PER_WORKER = 2
"""Payloads handed to the pool and not yet decoded, per worker: bounds read-ahead,
so memory stays flat and a stop has little left to drain."""
WORKER_CHECK_SECS = 1.0
"""How often a job waiting on the pool looks for a worker that died unnoticed."""
BACKFILL_ATTEMPTS = 3
"""A backfill gives a failing source this many tries; a running daemon never gives up."""
STOP_DRAIN_SECS = 5.0
"""How long a stopping daemon goes on decoding and committing what it read.  Past it,
what is left is abandoned and logged: a file, S3 or journal source reads it again
from its last checkpoint, a RELP sender sends it again (it was never acknowledged);
only plain TCP/UDP syslog held in memory is lost, as it would be by the SIGKILL a
service manager sends when a stop takes too long."""
SUMMARY_SECS = 10.0
QUARANTINE_LOG_BURST = 20
"""Quarantined items logged one by one per minute; the rest are counted."""

_DONE = None


@dataclass
class Counters:
    payloads: int = 0
    records: int = 0
    unparsed: int = 0
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    failed_payloads: int = 0
    dropped: int = 0
    """Records the sources' filters kept out of the store."""

    def add(self, result: Processed) -> None:
        self.payloads += 1
        self.records += result.records
        self.unparsed += result.unparsed
        self.quarantined += len(result.quarantined)
        self.failed_payloads += result.payload_failed
        self.dropped += sum(result.dropped.values())


@dataclass
class SourceStats(Counters):
    newest: datetime | None = None
    """Event time of the newest event stored: now minus this is the source's lag."""
    state: SourceState = "starting"
    errors: int = 0
    """Times the source failed and was restarted."""
    last_error: str | None = None
    dropped_by: dict[str, int] = field(default_factory=dict)
    """Records dropped by each filter (``event_categories``, ``keep``, ``drop[0]``, ...)."""


def _store_write_histogram() -> Histogram:
    """Unregistered: each API server's registry collects it through the pipeline."""
    return Histogram(
        "auditcorr_store_write_seconds", "Time spent in store write transactions.", registry=None
    )


@dataclass
class Stats(Counters):
    """Counters the CLI and /metrics read."""

    out_of_range: int = 0
    expired: int = 0
    alerts: int = 0
    """Alerts raised or updated (an update counts again)."""
    store_write_seconds: Histogram = field(default_factory=_store_write_histogram)
    """Time spent in each store transaction (on ``/metrics``)."""
    sources: dict[str, SourceStats] = field(default_factory=dict)
    unrecognized: dict[str, int] = field(default_factory=dict)
    """Messages of known programs that no form matched, by program."""
    failed_sources: list[str] = field(default_factory=list)
    """Sources a backfill gave up on after repeated failures."""
    correlation_failed: bool = False
    """A backfill's correlation rounds kept failing (the feed keeps the rest)."""

    def source(self, name: str) -> SourceStats:
        return self.sources.setdefault(name, SourceStats())


def default_workers() -> int:
    """One decoding process per core: the store writer spends most of its
    time inside SQLite with the GIL released, so it shares a core well."""
    return max(1, min(os.cpu_count() or 1, 8))


class Pipeline:
    """Runs sources into a store until stopped (follow) or caught up (backfill)."""

    def __init__(
        self,
        store: Store,
        sources: dict[str, ConnectorConfig],
        *,
        mode: Literal["follow", "backfill"] = "follow",
        since: datetime | None = None,
        until: datetime | None = None,
        workers: int | None = None,
        limits: Limits | None = None,
        on_progress: Callable[[Stats], None] | None = None,
        identities: IdentityMap | None = None,
        intake: Intake | None = None,
        factory: Callable[[ConnectorConfig, SourceContext], Source] | None = None,
        rule_paths: tuple[str, ...] = (),
        correlator: CorrelatorStage | None = None,
        member: str = "",
    ) -> None:
        self.store = store
        self.rule_paths = rule_paths
        """Detection rules the workers match each event against (their hits go to the feed)."""
        self.correlator = correlator
        """The correlator stage this pipeline runs (None in a cluster, where the elected
        leader runs it, and without rules)."""
        self.identities = identities
        self.intake = intake
        """The daemon's HTTP server, handed to push sources (``changes_http``)."""
        self._factory = factory
        """Builds the sources instead of the registry (a CLI command running one part of one)."""
        self.mode = mode
        self.since = since
        self.until = until
        self.workers = workers or default_workers()
        self.limits = limits or Limits()
        self.stats = Stats()
        self.intake = intake
        """The API server's routes for push sources; None without ``[api]``."""
        self._on_progress = on_progress
        self._configs = dict(sources)
        self._tally_key = DROPPED_KEY + member
        """Where this daemon keeps its tallies: one key per cluster member, each its own."""
        self._tallies: dict[str, dict[str, int]] = {}
        """Dropped records by source and filter, all time (the committed tally plus what
        this process added)."""
        self._raw: asyncio.Queue[tuple[str, RawBatch, asyncio.Future[None]] | None] = asyncio.Queue(
            RAW_QUEUE
        )
        self._inflight: asyncio.Queue[
            tuple[asyncio.Future[Processed], asyncio.Future[None], str] | None
        ] = asyncio.Queue(IN_FLIGHT)
        self._source_tasks: dict[str, asyncio.Task[None]] = {}
        self._running: dict[str, Source] = {}
        self._sources_group: asyncio.TaskGroup | None = None
        self._writer_pool: Executor = ThreadPoolExecutor(1, thread_name_prefix="store-writer")
        self._pool: ProcessPoolExecutor | None = None
        self._jobs = asyncio.Semaphore(self.workers * JOBS_PER_WORKER)
        self._stopping = asyncio.Event()
        self._drain_until: float | None = None
        """When a stop stops waiting for what is still being decoded (monotonic)."""
        self._abandoned: dict[str, int] = {}
        """Payloads a stop left behind, by source."""
        self.started = asyncio.Event()
        """Set once every configured source has been started."""
        self._quarantine_window = (0.0, 0, 0)
        self._last_summary = (time.monotonic(), 0)
        self._summaries = 0

    # -- public ------------------------------------------------------------

    async def run(self) -> Stats:
        """Run until ``stop()`` (follow mode) or until every source is caught up.

        Sources start at once; a live correlator loads its state and runs beside
        them.  A backfill correlates once everything is written, in event-time order.
        """
        self._pool = self._new_pool()
        correlator = self.correlator
        written = asyncio.Event()
        try:
            async with asyncio.TaskGroup() as stages:
                if correlator is not None and self.mode == "follow":
                    stages.create_task(correlator.run(written), name="correlator")
                async with asyncio.TaskGroup() as group:
                    group.create_task(self._process(), name="processor")
                    group.create_task(self._write(), name="writer")
                    await self._run_sources()
                    await self._raw.put(_DONE)
                written.set()  # a live correlator catches up briefly and returns
            if correlator is not None and self.mode == "backfill":
                if self._stopping.is_set():
                    log.info("correlation_deferred", reason="stopped: the feed keeps the hits")
                elif not await correlator.drain():
                    self.stats.correlation_failed = True
        finally:
            if correlator is not None:
                await correlator.close()
            if self._abandoned:
                log.warning("stop_abandoned", payloads=self._abandoned, drain_secs=STOP_DRAIN_SECS)
            if self._pool is not None:
                if self._abandoned:
                    _stop_workers(self._pool)  # their jobs were abandoned: do not wait for them
                self._pool.shutdown(wait=True, cancel_futures=True)
            self._writer_pool.shutdown(wait=True)
        return self.stats

    def _new_pool(self) -> ProcessPoolExecutor:
        context = multiprocessing.get_context("forkserver")
        # Workers are forked from a server that loads only what decoding needs,
        # not the daemon's whole import graph: they stay small.  It outlives a
        # SIGTERM sent to the whole service (see daemon/forkserver_signals.py).
        context.set_forkserver_preload(
            ["daemon.forkserver_signals", "daemon.process", "daemon.rules.hits"]
        )
        return ProcessPoolExecutor(
            self.workers,
            mp_context=context,
            initializer=init_worker,
            initargs=(
                self.store.dictionaries(),
                os.getpid(),
                self.identities,
                self.rule_paths,
            ),
        )

    @property
    def sources(self) -> list[str]:
        """Ids of the configured sources."""
        return list(self._configs)

    @property
    def running(self) -> Mapping[str, Source]:
        """The source instances running now, by id (read-only: for ``/metrics``)."""
        return MappingProxyType(self._running)

    @property
    def configs(self) -> dict[str, ConnectorConfig]:
        """The configured sources by id."""
        return dict(self._configs)

    @property
    def ready(self) -> bool:
        """Every source started and the correlator's state loaded (sources listen
        while it loads): ``/readyz``."""
        correlator = self.correlator
        return self.started.is_set() and (correlator is None or correlator.ready.is_set())

    @property
    def stopping(self) -> bool:
        """Whether ``stop`` was called."""
        return self._stopping.is_set()

    def stop(self) -> None:
        """Stop reading; what was read is committed before ``run`` returns, for up to
        ``STOP_DRAIN_SECS``."""
        self._stopping.set()
        if self._drain_until is None:
            self._drain_until = time.monotonic() + STOP_DRAIN_SECS
        for task in self._source_tasks.values():
            task.cancel()

    def reconfigure(self, sources: dict[str, ConnectorConfig]) -> None:
        """Restart the sources whose config changed; start new ones, stop removed ones."""
        group = self._sources_group
        if group is None:
            self._configs = dict(sources)
            return
        for name, task in list(self._source_tasks.items()):
            if name not in sources or sources[name] != self._configs.get(name):
                task.cancel()
                del self._source_tasks[name]
                log.info("source_stopped", source=name, reason="config changed")
        self._configs = dict(sources)
        for name in sources:
            if name not in self._source_tasks:
                self._start_source(group, name)

    def queue_depths(self) -> dict[str, int]:
        """Items waiting in each bounded queue (for /metrics)."""
        return {"raw": self._raw.qsize(), "in_flight": self._inflight.qsize()}

    async def call_store(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a store call in the writer thread (the store is single-threaded)."""
        return await asyncio.get_running_loop().run_in_executor(self._writer_pool, fn, *args)

    # -- sources -----------------------------------------------------------

    async def _run_sources(self) -> None:
        async with asyncio.TaskGroup() as group:
            self._sources_group = group
            for name in self._configs:
                self._start_source(group, name)
            self.started.set()
            if self.mode == "follow":
                # Keeps the group open for reconfigure() until stop().
                group.create_task(self._stopping.wait(), name="sources-open")
        self._sources_group = None

    def _start_source(self, group: asyncio.TaskGroup, name: str) -> None:
        task = group.create_task(self._supervise(name), name=f"source:{name}")
        self._source_tasks[name] = task

    async def _supervise(self, name: str) -> None:
        """Run one source; restart it with jittered backoff when it fails.

        The component fields are bound as context variables, so every line the
        source logs (and every task it starts) carries them too."""
        config = self._configs[name]
        with structlog.contextvars.bound_contextvars(
            component_kind="source", component_type=config.type, component_id=name
        ):
            await self._run_source(name, config)

    async def _run_source(self, name: str, config: ConnectorConfig) -> None:
        delay = 1.0
        failures = 0
        while not self._stopping.is_set():
            checkpoints = await self.call_store(self.store.checkpoints, name)
            tally = checkpoints.get(self._tally_key, {})
            self._tallies.setdefault(name, {k: v for k, v in tally.items() if isinstance(v, int)})
            checkpoints = {k: v for k, v in checkpoints.items() if not k.startswith(DROPPED_KEY)}
            context = SourceContext(
                name, checkpoints, self.mode, self.since, self.until, self.intake
            )
            source: Source = (self._factory or registry.load(registry.SOURCES, config.type))(
                config, context
            )
            per = self.stats.source(name)
            try:
                async with source:
                    log.info("source_started", checkpoints=len(checkpoints))
                    per.state = "running"
                    self._running[name] = source
                    try:
                        await source.run(lambda batch: self._emit(name, batch))
                    finally:
                        if self._running.get(name) is source:
                            del self._running[name]
                per.state = "stopped"
                return
            except asyncio.CancelledError:
                per.state = "stopped"
                raise
            except Exception as err:  # noqa: BLE001 - one failing source must not stop the others
                failures += 1
                per.state, per.errors, per.last_error = "retrying", per.errors + 1, str(err)
                log.error("source_failed", error=str(err), error_type=type(err).__name__)
                if self.mode == "backfill" and failures >= BACKFILL_ATTEMPTS:
                    log.error("source_given_up", attempts=failures)
                    self.stats.failed_sources.append(name)
                    per.state = "failed"
                    return
                await asyncio.sleep(random.uniform(0, delay))  # noqa: S311 - jitter, not crypto
                delay = min(delay * 2, 60.0)

    async def emit(self, source: str, batch: RawBatch) -> asyncio.Future[None]:
        """Hand a batch to the workers and the writer under ``source``, as a source's
        ``emit`` does: the daemon's own timeline entries (``daemon/audit.py``)."""
        return await self._emit(source, batch)

    async def _emit(self, name: str, batch: RawBatch) -> asyncio.Future[None]:
        committed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._raw.put((name, batch, committed))
        return committed

    # -- processing --------------------------------------------------------

    async def _process(self) -> None:
        loop = asyncio.get_running_loop()
        key_min = key_floor(self.since) if self.since else None
        key_max = key_ceiling(self.until) if self.until else None
        while (item := await self._raw.get()) is not _DONE:
            name, batch, committed = item
            if self._past_drain():
                self._abandon(name)
                continue
            config = self._configs.get(name)
            filtered = config if isinstance(config, SourceConfig) else None
            job = Job(
                name,
                batch,
                self.store.codec,
                self.limits,
                key_min,
                key_max,
                want_samples=self.store.wants_samples,
                keep=tuple(filtered.keep) if filtered else (),
                drop=tuple(filtered.drop) if filtered else (),
                selection=filtered.selection() if filtered else {},
            )
            await self._jobs.acquire()
            result = loop.create_task(self._run_job(job))
            result.add_done_callback(lambda _: self._jobs.release())
            await self._inflight.put((result, committed, name))
        await self._inflight.put(_DONE)

    async def _run_job(self, job: Job) -> Processed:
        """Process in the pool; a worker that dies is replaced and the job tried once more."""
        for attempt in (1, 2):
            pool = self._pool
            try:
                return await _in_pool(pool, job)
            except BrokenProcessPool:
                log.error("worker_died", origin=job.batch.origin, attempt=attempt)
                if pool is not None and self._pool is pool:
                    pool.shutdown(wait=False, cancel_futures=True)
                    self._pool = self._new_pool()
        return failed(job, "worker process died while decoding this payload")

    async def _write(self) -> None:
        finished = False
        while not finished:
            item = await self._inflight.get()
            if item is _DONE:
                break
            first = await self._decoded(item[0], item[2])
            if first is None:
                continue
            pending = [item]
            results = [first]
            rows = len(first.rows)
            # Group commit: take what is queued now, never wait for more.
            while rows < WRITE_ROWS:
                try:
                    more = self._inflight.get_nowait()
                except asyncio.QueueEmpty:
                    break
                if more is _DONE:
                    finished = True
                    break
                result = await self._decoded(more[0], more[2])
                if result is not None:
                    pending.append(more)
                    results.append(result)
                    rows += len(result.rows)
            self._tally(results)
            written = await self._commit(results)
            for _, committed, _ in pending:
                if not committed.done():
                    committed.set_result(None)
            self._count(results, written)
            if self._on_progress is not None:
                self._on_progress(self.stats)
            # A summary every SUMMARY_SECS while busy, and the first one as soon
            # as the sources are caught up: the operator sees the first burst land.
            caught_up = self._inflight.empty() and self._raw.empty()
            due = time.monotonic() - self._last_summary[0] >= SUMMARY_SECS
            if due or (caught_up and not self._summaries):
                self._summary("events_stored")
        if self.stats.stored != self._last_summary[1]:
            self._summary("events_stored")

    async def _decoded(self, job: asyncio.Future[Processed], source: str) -> Processed | None:
        """A job's result, or None when a stop's drain time ran out before it (the job
        is abandoned; see ``STOP_DRAIN_SECS``)."""
        while not job.done():
            if self._past_drain():
                job.cancel()
                self._abandon(source)
                return None
            left = 1.0 if self._drain_until is None else self._drain_until - time.monotonic()
            await asyncio.wait([job], timeout=max(left, 0.0))
        return job.result()

    def _past_drain(self) -> bool:
        return self._drain_until is not None and time.monotonic() >= self._drain_until

    def _abandon(self, source: str) -> None:
        """Count a payload a stop leaves behind (logged once the run ends)."""
        self._abandoned[source] = self._abandoned.get(source, 0) + 1

    def _tally(self, results: list[Processed]) -> None:
        """Add each source's dropped records to its tally and commit the tally with
        the source's last batch in this transaction (one row per key and write)."""
        last: dict[str, int] = {}
        for index, result in enumerate(results):
            if result.dropped:
                tally = self._tallies.setdefault(result.source, {})
                for name, count in result.dropped.items():
                    tally[name] = tally.get(name, 0) + count
                last[result.source] = index
        for source, index in last.items():
            result = results[index]
            saved = Checkpoint(self._tally_key, dict(self._tallies[source]))
            # A new list: the batch's own list belongs to the source that emitted it.
            result.checkpoints = [*result.checkpoints, saved]

    async def _commit(self, results: list[Processed]) -> WriteResult:
        """Write, retrying while the store is busy or its disk is full; sources wait meanwhile."""
        delay = 0.5
        while True:
            started = time.monotonic()
            try:
                written: WriteResult = await self.call_store(self.store.write, results)
            except (sqlite3.OperationalError, StoreUnavailableError) as err:
                log.error("store_write_failed", error=str(err), retry_in_secs=round(delay, 1))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
            else:
                self.stats.store_write_seconds.observe(time.monotonic() - started)
                if self.correlator is not None and any(result.feed for result in results):
                    self.correlator.wake()
                return written

    def _count(self, results: list[Processed], written: WriteResult) -> None:
        stats = self.stats
        stats.stored += written.stored
        stats.duplicates += written.duplicates
        stats.expired += written.expired
        for result in results:
            per = stats.source(result.source)
            stats.add(result)
            per.add(result)
            stats.out_of_range += result.out_of_range
            for name, count in result.dropped.items():
                per.dropped_by[name] = per.dropped_by.get(name, 0) + count
            for program, count in result.unrecognized.items():
                stats.unrecognized[program] = stats.unrecognized.get(program, 0) + count
            if result.rows:
                newest = key_time(max(row[0] for row in result.rows))
                if per.newest is None or newest > per.newest:
                    per.newest = newest
            for item in result.quarantined:
                self._log_quarantined(result.source, item)
        # One transaction carries the batches of several sources: the store
        # tells each one's share.
        for source, count in written.stored_by_source.items():
            stats.source(source).stored += count
        for source, count in written.duplicates_by_source.items():
            stats.source(source).duplicates += count

    def _log_quarantined(self, source: str, item: Any) -> None:
        start, logged, suppressed = self._quarantine_window
        now = time.monotonic()
        if now - start > 60:
            if suppressed:
                log.warning("records_quarantined_suppressed", count=suppressed)
            start, logged, suppressed = now, 0, 0
        if logged < QUARANTINE_LOG_BURST:
            log.warning(
                "record_quarantined",
                source=source,
                origin=item.origin,
                position=item.position,
                reason=item.reason,
                byte_size=item.raw_size,
            )
            logged += 1
        else:
            suppressed += 1
        self._quarantine_window = (start, logged, suppressed)

    def _summary(self, event: str) -> None:
        """Totals so far, the rate since the previous summary, and each source's lag."""
        s = self.stats
        now = time.monotonic()
        since, stored_then = self._last_summary
        self._last_summary = (now, s.stored)
        self._summaries += 1
        wall = datetime.now(UTC)
        log.info(
            event,
            payloads=s.payloads,
            records=s.records,
            stored=s.stored,
            duplicates=s.duplicates,
            dropped=s.dropped,
            quarantined=s.quarantined,
            events_per_sec=round((s.stored - stored_then) / max(now - since, 1e-9)),
            lag_secs={
                name: round((wall - per.newest).total_seconds())
                for name, per in s.sources.items()
                if per.newest is not None
            },
        )


async def _in_pool(pool: ProcessPoolExecutor | None, job: Job) -> Processed:
    """``process(job)`` in the pool; a worker found dead makes it raise BrokenProcessPool.

    The pool notices a dead worker only while it waits for the next result.  A worker
    killed halfway through writing its result leaves the pool reading the rest of it
    forever, so the job (and the writer after it) would wait forever too.
    """
    future = asyncio.get_running_loop().run_in_executor(pool, process, job)
    try:
        while not future.done():
            await asyncio.wait([future], timeout=WORKER_CHECK_SECS)
            if not future.done() and pool is not None:
                _break_if_a_worker_died(pool)
        return future.result()
    finally:
        future.cancel()  # a no-op once done; cancelled with the task, as when awaited


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """Kill the pool's workers, whose jobs a stop abandoned, so that shutting the pool
    down does not wait for them (the pool offers no public way; CPython 3.11)."""
    for worker in list((pool._processes or {}).values()):
        if worker.exitcode is None:
            worker.kill()


def _break_if_a_worker_died(pool: ProcessPoolExecutor) -> None:
    """Make a pool with a dead worker fail its jobs as broken: stop its other workers
    and close this process's end of the result pipe, so the pool's reader, stuck in a
    half-written result, reads end-of-file and gives the pool up as it does for a
    worker that dies between results.  This reaches into the pool's private state:
    it offers no public way to do it (CPython 3.11)."""
    workers = list((pool._processes or {}).values())
    if all(worker.exitcode is None for worker in workers):
        return
    for worker in workers:
        if worker.exitcode is None:
            worker.kill()
    results = pool._result_queue
    if results is not None:
        results._writer.close()  # type: ignore[attr-defined]  # private, see docstring
