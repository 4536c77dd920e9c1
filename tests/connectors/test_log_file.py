"""The file tailer's payload boundaries (the rotation cases run in tests/integration)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from testdata import CORPORA, SAMPLES, input_file

from connectors import log_file
from connectors.base import RawBatch, SourceContext
from daemon.normalize import Limits, auditd

LOGS = [SAMPLES / "auditd" / "commands.log", CORPORA / "auditd" / "reassembly" / "normal.log"]
"""Our own sample, and go-libaudit's: events of several records each, under 1200 bytes."""


def _read_all(path: Path) -> list[RawBatch]:
    config = log_file.AuditdFileConfig(path=path, start="beginning")
    emitted: list[RawBatch] = []

    async def emit(batch: RawBatch) -> Any:
        emitted.append(batch)

    async def run() -> None:
        async with log_file.AuditdFileSource(config, SourceContext("t", {}, mode="backfill")) as s:
            await s.run(emit)

    asyncio.run(run())
    return emitted


@pytest.mark.parametrize("sample", LOGS, ids=["ours", "go-libaudit"])
def test_audit_events_are_not_split_between_payloads(
    sample: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Payloads read in small pieces end at event boundaries: the same events as one read."""
    path = tmp_path / "audit.log"
    path.write_bytes(input_file(sample).read_bytes())
    whole = _read_all(path)
    monkeypatch.setattr(log_file, "READ_BYTES", 1200)  # more than any one event
    small = _read_all(path)
    assert len(whole) == 1
    assert len(small) > 2

    def events(batches: list[RawBatch]) -> list[tuple[str, str | None]]:
        found = []
        for batch in batches:
            for record in auditd.decode(batch.payload, Limits()):
                event = auditd.normalize(record)
                found.append((event.id, event.action))
        return found

    assert events(small) == events(whole)
    assert small[-1].checkpoints[0].value["offset"] == path.stat().st_size
