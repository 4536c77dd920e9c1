"""The daemon's life: open the store, run the pipeline, react to signals.

SIGTERM and SIGINT stop the sources, drain what was read into the store and
return; SIGHUP re-reads the config and restarts the sources and outputs whose
section changed (a broken new config is logged and the running one kept).
"""

from __future__ import annotations

import asyncio
import shutil
import signal
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

import structlog

from daemon import audit, deadline
from daemon.alert import Alert
from daemon.config import Config, ConfigFileError, load_config
from daemon.correlator.stage import CorrelatorStage
from daemon.delivery.service import DeliveryService
from daemon.normalize import Limits
from daemon.pipeline import Pipeline, Stats
from daemon.routing import routes
from daemon.rules.engine import RuleEngine
from daemon.rules.loader import Loaded, load_rules
from daemon.rules.unapproved import approvals_for
from daemon.store.base import CorrelationLog
from daemon.store.open import open_store
from daemon.systemd import Notifier

if TYPE_CHECKING:
    # aiohttp loads only when the daemon serves HTTP, not for every CLI command.
    from daemon.api.intake import IntakeRouter

log = structlog.get_logger()

PRUNE_EVERY_SECS = 3600.0
STATUS_EVERY_SECS = 10.0


def _ingest_settings(config: Config) -> dict[str, Any]:
    """What the decoding workers need from the config: processes, time zone, people."""
    return {
        "workers": config.daemon.workers,
        "rule_paths": tuple(str(path) for path in config.rules.rule_paths()),
        "limits": Limits(timezone=config.daemon.timezone),
        "identities": config.identity.identity_map() if config.identity.people else None,
        "member": config.member,
    }


def rules_of(config: Config, loaded: Loaded, store: CorrelationLog) -> RuleEngine:
    """A rule engine with empty state over the config's rules.

    Its changes are judged against the change records of ``store`` (read in
    the correlator's thread, where the engine runs) and the config's identity
    map; without a source of change records ``unapproved_change`` is off.
    """
    engine = RuleEngine.of(
        config.rules.rule_paths(),
        loaded,
        allowed_lateness=config.rules.allowed_lateness,
        suppress_for=config.rules.suppress_for,
    )
    engine.approvals = approvals_for(
        lambda since, until: store.change_records(since=since, until=until),
        config.identity.identity_map(),
        engine.loaded,
        config.sources,
    )
    return engine


def correlator_of(
    config: Config, current: Callable[[], Config], on_alerts: Callable[[list[Alert]], None]
) -> CorrelatorStage | None:
    """The correlator stage over the config's store (None without rules): its own
    connection, the rules, and the routes of the outputs ``current`` configures
    (they change on reload).  The rules load here, so a broken rule stops the start."""
    paths = config.rules.rule_paths()
    if not paths:
        return None
    return CorrelatorStage(
        partial(open_store, config.store_settings()),
        partial(rules_of, config, load_rules(paths)),
        lambda: routes(current().outputs),
        on_alerts,
    )


def _stop_within_limit(pipeline: Pipeline) -> None:
    """Stop the pipeline; the first time, start the clock that ends the process if the
    stop outlasts ``deadline.STOP_LIMIT_SECS``."""
    if not pipeline.stopping:
        deadline.end_at_the_latest()
    pipeline.stop()


@contextmanager
def _signals(handlers: dict[signal.Signals, Callable[[], None]]) -> Iterator[None]:
    """Signal handlers on the running loop for the duration of the block."""
    loop = asyncio.get_running_loop()
    for sig, handler in handlers.items():
        loop.add_signal_handler(sig, handler)
    try:
        yield
    finally:
        for sig in handlers:
            loop.remove_signal_handler(sig)


async def run_daemon(config: Config) -> Stats:
    """``auditcorr run``: follow every source until a stop signal."""
    clustered = config.cluster.enabled
    current = config

    def alerts_raised(alerts: list[Alert]) -> None:
        pipeline.stats.alerts += len(alerts)
        delivery.wake()

    # In a cluster the member holding the leader lock runs the correlator.
    correlator = correlator_of(config, lambda: current, alerts_raised)
    store = open_store(config.store_settings())
    intake = None
    if config.api is not None:
        from daemon.api.intake import IntakeRouter

        intake = IntakeRouter()
    # Deliveries use a connection of their own: a long timeline write does not hold them up.
    outbox = open_store(config.store_settings())
    delivery = DeliveryService(outbox, config.outputs, timezone=config.daemon.timezone)
    pipeline = Pipeline(
        store,
        config.sources,
        mode="follow",
        intake=intake,
        correlator=None if clustered else correlator,
        **_ingest_settings(config),
    )

    notifier = Notifier()

    def stop(name: str) -> None:
        log.info("shutdown_requested", signal=name)
        notifier.stopping()
        _stop_within_limit(pipeline)

    def reload() -> None:
        nonlocal current
        try:
            fresh = load_config(current.path)
        except ConfigFileError as err:
            for problem in err.errors:
                log.error("config_reload_failed", error=str(problem))
            log.error("config_kept", reason="the new config has errors", path=str(current.path))
            return
        if fresh.store != current.store or fresh.daemon != current.daemon:
            log.warning("config_restart_needed", sections="daemon/store changes apply on restart")
        current = fresh
        pipeline.reconfigure(fresh.sources)
        delivery.reconfigure(fresh.outputs)
        log.info(
            "config_reloaded",
            path=str(fresh.path),
            sources=len(fresh.sources),
            outputs=len(fresh.outputs),
        )

    handlers: dict[signal.Signals, Callable[[], None]] = {
        signal.SIGTERM: partial(stop, "SIGTERM"),
        signal.SIGINT: partial(stop, "SIGINT"),
        signal.SIGHUP: reload,
    }
    log.info(
        "daemon_started",
        config=str(config.path),
        store=store.location,
        sources=sorted(config.sources),
        outputs=sorted(config.outputs),
        workers=pipeline.workers,
        member=config.member if clustered else None,
    )
    try:
        with _signals(handlers):
            async with (
                _api(config, pipeline, intake, lambda: list(current.outputs)),
                asyncio.TaskGroup() as group,
            ):
                helpers = [
                    group.create_task(_prune_periodically(pipeline), name="retention"),
                    group.create_task(_tell_systemd(pipeline, notifier), name="systemd-notify"),
                    # Cancelled sends stay in the outbox and go out after the next start.
                    group.create_task(delivery.run(), name="delivery"),
                ]
                if clustered:
                    helpers += _cluster_tasks(group, config, pipeline, correlator)
                await audit.record_identity_change(pipeline, config)
                stats = await pipeline.run()
                for task in helpers:
                    task.cancel()
    finally:
        outbox.close()
        store.close()
    log.info("daemon_stopped", stored=stats.stored, duplicates=stats.duplicates)
    return stats


def _cluster_tasks(
    group: asyncio.TaskGroup,
    config: Config,
    pipeline: Pipeline,
    correlator: CorrelatorStage | None,
) -> list[asyncio.Task[None]]:
    """A cluster member's own tasks: contending for the correlator, and its heartbeat."""
    from daemon.cluster.leader import Leader
    from daemon.cluster.members import heartbeat, heartbeat_secs

    dsn = config.store.dsn.reveal() if config.store.dsn is not None else ""
    leader = Leader(dsn, config.member, config.cluster.failover_secs, correlator)
    return [
        group.create_task(leader.run(), name="cluster-leader"),
        group.create_task(
            heartbeat(
                dsn,
                config.member,
                heartbeat_secs(config.cluster.failover_secs),
                lambda: leader.leading,
                lambda: {name: per.newest for name, per in pipeline.stats.sources.items()},
            ),
            name="cluster-heartbeat",
        ),
    ]


@asynccontextmanager
async def _api(
    config: Config,
    pipeline: Pipeline,
    intake: IntakeRouter | None,
    outputs: Callable[[], Iterable[str]],
) -> AsyncIterator[None]:
    """The HTTP server while the block runs, when the config has ``[api]``."""
    if config.api is None or intake is None:
        yield
        return
    from daemon.api.server import ApiServer

    server = ApiServer(
        config.api,
        pipeline,
        intake,
        partial(open_store, config.store_settings(), readonly=True),
        config.daemon.zone,
        trail=pipeline,
        readers=config.store.pool_size,
        outputs=outputs,
    )
    async with server:
        yield


async def _tell_systemd(pipeline: Pipeline, notifier: Notifier) -> None:
    """READY once the sources run, then status and watchdog keep-alives from the loop."""
    if not notifier.enabled:
        return
    await pipeline.started.wait()
    notifier.ready(_status(pipeline))
    every = STATUS_EVERY_SECS
    if notifier.watchdog_secs:
        every = min(every, notifier.watchdog_secs / 2)
    while True:
        await asyncio.sleep(every)
        if notifier.watchdog_secs:
            notifier.watchdog()
        notifier.status(_status(pipeline))


def _status(pipeline: Pipeline) -> str:
    stats = pipeline.stats
    now = datetime.now(UTC)
    lags = [(now - per.newest).total_seconds() for per in stats.sources.values() if per.newest]
    lag = f", max lag {max(lags):.0f}s" if lags else ""
    return (
        f"{len(pipeline.sources)} sources, {stats.stored} events stored, "
        f"{stats.quarantined} quarantined{lag}"
    )


async def _prune_periodically(pipeline: Pipeline) -> None:
    while True:
        try:
            deleted = await pipeline.call_store(pipeline.store.prune, datetime.now(UTC))
        except Exception as err:  # noqa: BLE001 - retention failing must not stop ingestion
            log.error("retention_failed", error=str(err), error_type=type(err).__name__)
        else:
            if deleted:
                log.info("events_pruned", count=deleted)
        await asyncio.sleep(PRUNE_EVERY_SECS)


async def run_backfill(
    config: Config,
    *,
    only: str | None,
    since: datetime | None,
    until: datetime | None,
    progress: bool,
) -> Stats:
    """``auditcorr backfill``: read what the sources hold now, then return."""
    sources = config.sources if only is None else {only: config.sources[only]}

    def alerts_raised(alerts: list[Alert]) -> None:
        pipeline.stats.alerts += len(alerts)

    correlator = correlator_of(config, lambda: config, alerts_raised)
    store = open_store(config.store_settings())
    bar = _ProgressBar() if progress else None
    pipeline = Pipeline(
        store,
        sources,
        mode="backfill",
        **_ingest_settings(config),
        since=since,
        until=until,
        on_progress=bar.update if bar else None,
        correlator=correlator,
    )
    try:
        stop = partial(_stop_within_limit, pipeline)
        with _signals({signal.SIGTERM: stop, signal.SIGINT: stop}):
            return await pipeline.run()
    finally:
        if bar:
            bar.close()
        store.close()


async def deliver_queued(config: Config, timeout_secs: float) -> int:
    """Send what the outbox holds for up to ``timeout_secs``; returns what is still pending."""
    store = open_store(config.store_settings())
    try:
        delivery = DeliveryService(store, config.outputs, timezone=config.daemon.timezone)
        return await delivery.drain(timeout_secs)
    finally:
        store.close()


class _ProgressBar:
    """Files and events per second on a terminal (stderr)."""

    def __init__(self) -> None:
        from tqdm import tqdm

        # A terminal that reports no size (some ptys, serial consoles) would get
        # no bar at all; fall back to $COLUMNS/$LINES or 100x20.
        size = shutil.get_terminal_size((100, 20))
        self._bar = tqdm(
            unit=" events",
            unit_scale=True,
            ncols=size.columns or 100,
            nrows=size.lines or 20,
            leave=False,
        )

    def update(self, stats: Stats) -> None:
        self._bar.n = stats.records
        self._bar.set_postfix_str(
            f"files={stats.payloads} stored={stats.stored} quarantined={stats.quarantined}",
            refresh=False,
        )
        self._bar.refresh()

    def close(self) -> None:
        self._bar.close()


def outcome_of_backfill(stats: Stats) -> tuple[Literal[0, 1], str]:
    """Exit status and summary: failing when a source failed or nothing at all could be read.

    Payloads without records (a digest check that found nothing wrong, an empty log
    file) are no failure: only quarantine with nothing usable beside it is.
    """
    if stats.failed_sources:
        return 1, f"source(s) failed: {', '.join(stats.failed_sources)}; see the log"
    if stats.correlation_failed:
        return 1, "correlation failed (the events are stored); see the log"
    usable = stats.stored + stats.duplicates + stats.out_of_range + stats.expired + stats.dropped
    if stats.quarantined and not usable:
        return (
            1,
            "nothing could be read: every file or record was quarantined;"
            " see 'auditcorr quarantine'",
        )
    return 0, "ok"
