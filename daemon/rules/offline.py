"""Rules over files, without a daemon or a store: ``auditcorr rules test``.

Events are read with the daemon's own normalizers, matched, then correlated
in event-time order, so a rule behaves here as it does live.  History files
come first: new_terms and baseline rules learn from them what is usual.  The log type
of a file is the first that claims it by its name and first bytes
(``LogType.claims_file``; the syslog log type takes what no other claims, JSON files
excepted).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

from connectors.base import NormalizationError
from daemon import logtypes
from daemon.alert import Alert
from daemon.logtypes import LogType
from daemon.normalize import Limits
from daemon.rules.correlate import Correlator
from daemon.rules.hits import Hit, HitMaker
from daemon.rules.learned import learning_state
from daemon.rules.loader import Loaded

OFFLINE_SOURCE = "files"
_GZIP_MAGIC: Final = b"\x1f\x8b"
_GZIP_WBITS: Final = 31  # zlib: expect a gzip header


_HEAD_BYTES = 64 * 1024
"""How much of a file (decompressed) its log type is recognized by."""


def log_type_of(path: Path, payload: bytes) -> LogType:
    head = payload[:_HEAD_BYTES]
    if head.startswith(_GZIP_MAGIC):
        head = zlib.decompressobj(wbits=_GZIP_WBITS).decompress(head, _HEAD_BYTES)
    return logtypes.of_file(path.name, head)


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
        payload = path.read_bytes()
        try:
            module = log_type_of(path, payload)
        except ValueError as err:
            run.rejected.append(str(err))
            continue
        payload = module.file_payload(str(path), path.stat().st_mtime_ns, payload)
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
