"""The daemon's metrics as ``prometheus_client`` collects them.

Each API server has a registry of its own: the daemon's counters (read from
the status view at scrape time, so they cost nothing between scrapes), the
process and platform collectors, and the latency of the server's requests by
route.  The outbox's rows are read from the store per scrape and added then.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime

from aiohttp import web
from prometheus_client import (
    CollectorRegistry,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from daemon.status import DaemonStatus
from daemon.store.base import DeliveryState

_SOURCE_COUNTERS = (
    ("records_read", "Records read by the source", "records"),
    ("records_unparsed", "Records kept raw: their format could not be read", "unparsed"),
    ("events_stored", "Events stored (new, not duplicates)", "stored"),
    ("events_duplicate", "Events already in the store", "duplicates"),
    ("events_quarantined", "Records and payloads kept in quarantine", "quarantined"),
    ("payloads_failed", "Payloads that could not be decoded at all", "failed_payloads"),
    ("source_errors", "Times the source failed and was restarted", "errors"),
)
"""Per-source counters: name (without ``auditcorr_`` and ``_total``), help, attribute."""
_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))
"""Methods counted by name; any other a client sends is ``other``, so labels stay few."""
DELIVERY_STATES: tuple[DeliveryState, ...] = ("pending", "sent", "failed")


class DaemonCollector(Collector):
    """The pipeline's counters, gauges and store latency, read when scraped."""

    def __init__(self, status: DaemonStatus) -> None:
        self._status = status

    def collect(self) -> Iterator[Metric]:
        status = self._status
        stats = status.stats
        now = datetime.now(UTC)
        per_source = [(name, stats.source(name)) for name in status.configs]
        for name, help_text, attribute in _SOURCE_COUNTERS:
            counter = CounterMetricFamily(f"auditcorr_{name}", f"{help_text}.", labels=["source"])
            for source, per in per_source:
                counter.add_metric([source], getattr(per, attribute))
            yield counter
        dropped = CounterMetricFamily(
            "auditcorr_events_dropped",
            "Records a source's filters kept out of the store, by filter.",
            labels=["source", "filter"],
        )
        for source, per in per_source:
            for name, count in sorted(per.dropped_by.items()):
                dropped.add_metric([source, name], count)
        yield dropped
        unrecognized = CounterMetricFamily(
            "auditcorr_messages_unrecognized",
            "Messages of known programs (sshd, PAM, su, sudo, ...) that no form matched,"
            " by program.",
            labels=["program"],
        )
        for program, count in sorted(stats.unrecognized.items()):
            unrecognized.add_metric([program], count)
        yield unrecognized
        lag = GaugeMetricFamily(
            "auditcorr_source_lag_seconds",
            "Now minus the event time of the newest stored event.",
            labels=["source"],
        )
        up = GaugeMetricFamily(
            "auditcorr_source_up",
            "1 while the source runs, 0 while it is retrying or stopped.",
            labels=["source"],
        )
        for source, per in per_source:
            if per.newest is not None:
                lag.add_metric([source], (now - per.newest).total_seconds())
            up.add_metric([source], int(per.state == "running"))
        yield lag
        yield up
        yield from _source_metrics(status)
        depth = GaugeMetricFamily(
            "auditcorr_queue_depth",
            "Items waiting in the pipeline's bounded queues.",
            labels=["queue"],
        )
        for queue, items in status.queue_depths().items():
            depth.add_metric([queue], items)
        yield depth
        yield from stats.store_write_seconds.collect()
        yield CounterMetricFamily(
            "auditcorr_alerts_raised",
            "Alerts raised (new or updated) since the start.",
            value=stats.alerts,
        )


def _source_metrics(status: DaemonStatus) -> Iterator[Metric]:
    """What each running source publishes (``Source.metrics``), one family per name,
    with the source's id as the ``source`` label."""
    families: dict[str, Metric] = {}
    for source_id, source in sorted(status.running.items()):
        for published in source.metrics():
            name = f"auditcorr_{published.name}"
            family = families.get(name)
            if family is None:
                base = name.removesuffix("_total") if published.kind == "counter" else name
                family = families[name] = Metric(base, f"{published.help or name}.", published.kind)
            sample = f"{family.name}_total" if published.kind == "counter" else family.name
            family.add_sample(sample, {"source": source_id, **published.labels}, published.value)
    for _, family in sorted(families.items()):
        yield family


def outbox(
    deliveries: Mapping[tuple[str, DeliveryState], int], outputs: Iterable[str]
) -> GaugeMetricFamily:
    """The outbox's rows per (output, state), every configured output even without rows."""
    family = GaugeMetricFamily(
        "auditcorr_outbox_deliveries",
        "Alert deliveries in the outbox by output and state.",
        labels=["output", "state"],
    )
    for output in sorted({output for output, _ in deliveries} | set(outputs)):
        for state in DELIVERY_STATES:
            family.add_metric([output, state], deliveries.get((output, state), 0))
    return family


class Metrics:
    """One API server's registry and its request latency histogram."""

    def __init__(self, status: DaemonStatus) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(DaemonCollector(status))
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.requests = Histogram(
            "auditcorr_http_request_duration_seconds",
            "Time the API took to answer, by route (the path pattern) and method.",
            ["route", "method"],
            registry=self.registry,
        )

    def observe(self, request: web.Request, seconds: float, *, pushed: bool) -> None:
        """A request's latency under its route's pattern.  A push source's path is its
        route (configured, so the label stays bounded); a request no route serves is
        counted as ``unmatched``."""
        resource = request.match_info.route.resource
        if pushed:
            route = request.path
        else:
            route = resource.canonical if resource is not None else "unmatched"
        method = request.method if request.method in _METHODS else "other"
        self.requests.labels(route, method).observe(seconds)

    def exposition(self, extra: Metric) -> bytes:
        """The registry in Prometheus text format, with ``extra`` (read per scrape)."""
        return generate_latest(_WithExtra(self.registry, extra))


class _WithExtra(Collector):
    def __init__(self, registry: CollectorRegistry, extra: Metric) -> None:
        self._registry = registry
        self._extra = extra

    def collect(self) -> Iterator[Metric]:
        yield from self._registry.collect()
        yield self._extra
