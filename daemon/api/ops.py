"""``/healthz``, ``/readyz`` and ``/metrics`` (Prometheus text format)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime

from aiohttp import web

from connectors.base import Metric, Source
from daemon.api.auth import needs
from daemon.api.replies import reply
from daemon.api.state import OUTPUTS, PIPELINE, READERS
from daemon.pipeline import Pipeline, SourceStats
from daemon.store.base import DeliveryState

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """The daemon's event loop answers."""
    return reply({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """Ready once every configured source has been started and the correlator has loaded
    its state (sources listen while it loads)."""
    pipeline = request.app[PIPELINE]
    correlator = pipeline.correlator
    ready = pipeline.started.is_set() and (correlator is None or correlator.ready.is_set())
    return reply({"status": "ready" if ready else "starting"}, status=200 if ready else 503)


@routes.get("/metrics")
@needs("reader")
async def metrics(request: web.Request) -> web.Response:
    deliveries = await request.app[READERS].call(lambda store: store.delivery_counts())
    outputs = request.app[OUTPUTS]()
    body = "".join(f"{line}\n" for line in exposition(request.app[PIPELINE], deliveries, outputs))
    return web.Response(text=body, content_type="text/plain", charset="utf-8")


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _source_metrics(running: Mapping[str, Source]) -> Iterator[str]:
    """What each running source publishes (``Source.metrics``), grouped by metric name."""
    by_name: dict[str, list[tuple[str, Metric]]] = {}
    for source_id, source in sorted(running.items()):
        for metric in source.metrics():
            by_name.setdefault(metric.name, []).append((source_id, metric))
    for name, samples in sorted(by_name.items()):
        first = samples[0][1]
        yield f"# HELP auditcorr_{name} {first.help or name}."
        yield f"# TYPE auditcorr_{name} {first.kind}"
        for source_id, metric in samples:
            labels = {"source": source_id, **metric.labels}
            text = ",".join(f'{key}="{_label(value)}"' for key, value in labels.items())
            value = float(metric.value)
            shown = str(int(value)) if value.is_integer() else repr(value)
            yield f"auditcorr_{name}{{{text}}} {shown}"


def _dropped(per_source: list[tuple[str, SourceStats]]) -> Iterator[str]:
    """Records each source's filters kept out of the store, by filter (docs/filters.md)."""
    yield (
        "# HELP auditcorr_events_dropped_total Records a source's filters kept out of the store,"
        " by filter."
    )
    yield "# TYPE auditcorr_events_dropped_total counter"
    for source, per in per_source:
        for name, count in sorted(per.dropped_by.items()):
            labels = f'source="{_label(source)}",filter="{_label(name)}"'
            yield f"auditcorr_events_dropped_total{{{labels}}} {count}"


def exposition(
    pipeline: Pipeline,
    deliveries: Mapping[tuple[str, DeliveryState], int],
    outputs: Iterable[str] = (),
) -> Iterator[str]:
    """The daemon's counters in Prometheus text format 0.0.4, with the outbox's
    rows per (output, state) from ``Store.delivery_counts``."""
    stats = pipeline.stats
    now = datetime.now(UTC)
    per_source = [(name, stats.source(name)) for name in pipeline.configs]
    counters = (
        ("records_read", "Records read by the source", "records"),
        ("records_unparsed", "Records kept raw: their format could not be read", "unparsed"),
        ("events_stored", "Events stored (new, not duplicates)", "stored"),
        ("events_duplicate", "Events already in the store", "duplicates"),
        ("events_quarantined", "Records and payloads kept in quarantine", "quarantined"),
        ("payloads_failed", "Payloads that could not be decoded at all", "failed_payloads"),
        ("source_errors", "Times the source failed and was restarted", "errors"),
    )
    for name, help_text, attribute in counters:
        yield f"# HELP auditcorr_{name}_total {help_text}."
        yield f"# TYPE auditcorr_{name}_total counter"
        for source, per in per_source:
            yield f'auditcorr_{name}_total{{source="{_label(source)}"}} {getattr(per, attribute)}'
    yield from _dropped(per_source)
    yield (
        "# HELP auditcorr_messages_unrecognized_total Messages of known programs"
        " (sshd, PAM, su, sudo, ...) that no form matched, by program."
    )
    yield "# TYPE auditcorr_messages_unrecognized_total counter"
    for program, count in sorted(stats.unrecognized.items()):
        yield f'auditcorr_messages_unrecognized_total{{program="{_label(program)}"}} {count}'
    yield "# HELP auditcorr_source_lag_seconds Now minus the event time of the newest stored event."
    yield "# TYPE auditcorr_source_lag_seconds gauge"
    for source, per in per_source:
        if per.newest is not None:
            lag = (now - per.newest).total_seconds()
            yield f'auditcorr_source_lag_seconds{{source="{_label(source)}"}} {lag:.3f}'
    yield "# HELP auditcorr_source_up 1 while the source runs, 0 while it is retrying or stopped."
    yield "# TYPE auditcorr_source_up gauge"
    for source, per in per_source:
        up = int(per.state == "running")
        yield f'auditcorr_source_up{{source="{_label(source)}"}} {up}'
    yield from _source_metrics(pipeline.running)
    yield "# HELP auditcorr_queue_depth Items waiting in the pipeline's bounded queues."
    yield "# TYPE auditcorr_queue_depth gauge"
    for queue, depth in pipeline.queue_depths().items():
        yield f'auditcorr_queue_depth{{queue="{queue}"}} {depth}'
    yield "# HELP auditcorr_store_write_seconds Time spent in store write transactions."
    yield "# TYPE auditcorr_store_write_seconds summary"
    yield f"auditcorr_store_write_seconds_sum {stats.store_write_secs:.6f}"
    yield f"auditcorr_store_write_seconds_count {stats.store_writes}"
    yield "# HELP auditcorr_alerts_raised_total Alerts raised (new or updated) since the start."
    yield "# TYPE auditcorr_alerts_raised_total counter"
    yield f"auditcorr_alerts_raised_total {stats.alerts}"
    yield "# HELP auditcorr_outbox_deliveries Alert deliveries in the outbox by output and state."
    yield "# TYPE auditcorr_outbox_deliveries gauge"
    for output in sorted({output for output, _ in deliveries} | set(outputs)):
        for state in ("pending", "sent", "failed"):
            labels = f'output="{_label(output)}",state="{state}"'
            yield f"auditcorr_outbox_deliveries{{{labels}}} {deliveries.get((output, state), 0)}"
