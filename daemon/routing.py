"""Which alerts an output takes, and when it may send them.

The static part (severity, rules, ATT&CK tags, environment) decides at
queueing time whether an outbox row is written at all; the timed part (quiet
hours, rate limit) decides at delivery time when a queued row goes out.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from connectors.config import ConnectorConfig, OutputConfig
from daemon.alert import SEVERITIES, Alert

Routes = Mapping[str, Callable[[Alert], bool]]
"""Per output id: whether the output takes an alert (its routing filter)."""


def _tagged(tags: list[str], wanted: list[str]) -> bool:
    """A tag matches itself and every tag under it (``attack.t1562`` ⊃ ``attack.t1562.008``)."""
    return any(tag == want or tag.startswith(want + ".") for tag in tags for want in wanted)


def route(config: OutputConfig) -> Callable[[Alert], bool]:
    """The output's routing filter."""
    floor = SEVERITIES.index(config.min_severity)

    def accepts(alert: Alert) -> bool:
        tags = [tag.lower() for tag in alert.tags]
        return (
            SEVERITIES.index(alert.severity) >= floor
            and (not config.include_rules or alert.rule_id in config.include_rules)
            and alert.rule_id not in config.exclude_rules
            and (not config.include_tags or _tagged(tags, config.include_tags))
            and not _tagged(tags, config.exclude_tags)
            and (not config.environments or alert.environment in config.environments)
        )

    return accepts


def routes(outputs: Mapping[str, ConnectorConfig]) -> Routes:
    """Routing filters of every configured output."""
    return {
        name: route(config) for name, config in outputs.items() if isinstance(config, OutputConfig)
    }


def routed(alerts: Sequence[Alert], routes: Routes) -> list[tuple[Alert, str]]:
    """(alert, output id) for every output whose routing filter takes each alert:
    the outbox rows to queue."""
    return [
        (alert, output) for alert in alerts for output, accepts in routes.items() if accepts(alert)
    ]


def quiet_until(config: OutputConfig, now: datetime, zone: ZoneInfo) -> datetime | None:
    """The end of the quiet hours ``now`` falls in, or None outside them."""
    span = config.quiet_span()
    if span is None:
        return None
    start, end = span
    local = now.astimezone(zone)
    minute = local.hour * 60 + local.minute
    inside = start <= minute < end if start <= end else minute >= start or minute < end
    if not inside:
        return None
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    until = midnight + timedelta(minutes=end)
    if until <= local:
        until += timedelta(days=1)
    return until


def holds_in_quiet_hours(config: OutputConfig, severity: str) -> bool:
    """True when an alert of ``severity`` waits for the end of quiet hours."""
    return severity not in SEVERITIES[SEVERITIES.index(config.quiet_hours_min_severity) :]


class RateLimit:
    """Messages sent in the last minute, against the output's limit."""

    WINDOW_SECS = 60.0

    def __init__(self, per_minute: int | None, clock: Callable[[], float] = time.monotonic):
        self.per_minute = per_minute
        self._clock = clock
        self._sent: deque[float] = deque()

    def _trim(self) -> float:
        now = self._clock()
        while self._sent and now - self._sent[0] >= self.WINDOW_SECS:
            self._sent.popleft()
        return now

    def available(self) -> int:
        """Messages that may go out now (a large number when unlimited)."""
        if self.per_minute is None:
            return 1 << 30
        self._trim()
        return max(self.per_minute - len(self._sent), 0)

    def wait_secs(self) -> float:
        """Until the next message may go out."""
        if self.available():
            return 0.0
        return self.WINDOW_SECS - (self._trim() - self._sent[0])

    def take(self) -> None:
        self._sent.append(self._clock())
