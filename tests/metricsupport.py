"""Reading ``/metrics`` in tests with the Prometheus client's own parser."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from daemon.api.metrics import Metrics, outbox
from daemon.status import DaemonStatus

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    """Every sample of an exposition by (name, labels); a malformed one fails the parse."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float | None:
    """One series' value, None when it is not exposed."""
    return found.get((name, frozenset(labels.items())))


def scrape(status: DaemonStatus) -> str:
    """What ``/metrics`` would answer for ``status`` with an empty outbox."""
    return Metrics(status).exposition(outbox({}, ())).decode()
