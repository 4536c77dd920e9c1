"""Rules over files, without a daemon or a store: ``auditcorr rules test``.

Events are read with the daemon's own normalizers, matched, then correlated
in event-time order, so a rule behaves here as it does live.  History files
come first: new_terms and baseline rules learn from them what is usual.  The log type
of a file comes from its name: ``*.json``/``*.json.gz`` are CloudTrail files,
``*.jsonl``/``*.ndjson`` are timeline (ECS) JSON lines, anything else is a
syslog file: plain lines as a host writes them (their year, where the stamp has none,
as if read when the file was last written, times without a zone in UTC) or a
payload a syslog source made.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from connectors.base import NormalizationError
from connectors.syslog.batch import header
from daemon.alert import Alert
from daemon.normalize import Limits, module_for
from daemon.rules.correlate import Correlator
from daemon.rules.hits import Hit, HitMaker
from daemon.rules.learned import learning_state
from daemon.rules.loader import Loaded

OFFLINE_SOURCE = "files"


def log_type_of(path: Path) -> str:
    name = path.name.lower()
    if name.endswith((".json", ".json.gz")):
        return "cloudtrail"
    if name.endswith((".jsonl", ".ndjson", ".jsonl.gz")):
        return "ecs"
    return "syslog"


def event_files(paths: Iterable[str | Path]) -> list[Path]:
    found: list[Path] = []
    for entry in paths:
        path = Path(entry)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file()))
        elif path.is_file():
            found.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such event file or directory")
    return found


@dataclass(slots=True)
class OfflineRun:
    events: int = 0
    hits: int = 0
    rejected: list[str] = field(default_factory=list)
    """Files or records that could not be read, with where and why."""
    alerts: list[Alert] = field(default_factory=list)
    learning: dict[str, dict[str, Any]] = field(default_factory=dict)
    """new_terms and baseline rule id -> its learning state at the last event."""


def run_files(
    loaded: Loaded,
    paths: Sequence[str | Path],
    *,
    history: Sequence[str | Path] = (),
    suppress_for: timedelta = timedelta(hours=1),
) -> OfflineRun:
    """Every alert the rules raise over the events of ``paths``, oldest first.

    The events of ``history`` are correlated first and raise nothing shown: they
    are what new_terms and baseline rules learn from before ``paths``."""
    maker = HitMaker(loaded)
    run = OfflineRun()
    learned = sorted(_hits(maker, history, run), key=Hit.order)
    hits = sorted(_hits(maker, paths, run), key=Hit.order)
    run.hits = len(hits)
    correlator = Correlator(loaded, suppress_for=suppress_for)
    correlator.feed(learned)
    final = {alert.id: alert for alert in correlator.feed(hits)}
    run.alerts = sorted(final.values(), key=lambda alert: (alert.first_seen, alert.rule_id))
    newest = max((hit.timestamp for hit in learned + hits), default=None)
    learner = correlator.learner
    run.learning = {
        rule_id: learning_state(rule, learner.learning[rule_id], newest)
        for rule_id, rule in learner.rules.items()
    }
    return run


def _hits(maker: HitMaker, paths: Sequence[str | Path], run: OfflineRun) -> list[Hit]:
    hits: list[Hit] = []
    limits = Limits()
    for path in event_files(paths):
        log_type = log_type_of(path)
        module = module_for(log_type)
        payload = path.read_bytes()
        if log_type == "syslog" and not payload.startswith(b"{"):
            payload = header(path.stat().st_mtime_ns, "UTC", file=str(path)) + payload
        try:
            records = module.decode(payload, limits)
        except NormalizationError as err:
            run.rejected.append(f"{path}: {err.reason}")
            continue
        for position, record in enumerate(records):
            try:
                doc = module.normalize(record).to_document()
            except NormalizationError as err:
                run.rejected.append(f"{path} record {position}: {err.reason}")
                continue
            run.events += 1
            hits.extend(maker.hits(doc, OFFLINE_SOURCE))
    return hits
