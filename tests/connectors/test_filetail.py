"""The file tailer's payload boundaries (the rotation cases run in tests/integration)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from testdata import CORPORA, SAMPLES, input_file

from connectors import filetail
from connectors.base import RawBatch, SourceContext
from connectors.sources.auditd_file import AuditdFileConfig, AuditdFileSource
from connectors.sources.syslog_file import SyslogFileConfig, SyslogFileSource
from daemon.normalize import Limits, auditd

LOGS = [SAMPLES / "auditd" / "commands.log", CORPORA / "auditd" / "reassembly" / "normal.log"]
"""Our own sample, and go-libaudit's: events of several records each, under 1200 bytes."""


def _read_all(path: Path, *, syslog: bool = False) -> list[RawBatch]:
    config = (SyslogFileConfig if syslog else AuditdFileConfig)(path=path, start="beginning")
    kind = SyslogFileSource if syslog else AuditdFileSource
    emitted: list[RawBatch] = []

    async def emit(batch: RawBatch) -> Any:
        emitted.append(batch)

    async def run() -> None:
        async with kind(config, SourceContext("t", {}, mode="backfill")) as s:
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
    monkeypatch.setattr(filetail, "READ_BYTES", 1200)  # more than any one event
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


def test_a_line_longer_than_one_read_is_read_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A line longer than a read but within ``max_line_bytes`` is one record, not cut."""
    path = tmp_path / "app.log"
    long_line = b"Nov 27 12:00:01 h app: " + b"x" * 5000 + b"\n"
    path.write_bytes(long_line + b"Nov 27 12:00:02 h app: after\n")
    monkeypatch.setattr(filetail, "READ_BYTES", 1200)
    batches = _read_all(path, syslog=True)
    lines = [line for batch in batches for line in batch.payload.split(b"\n")[1:] if line]
    assert lines == [long_line.rstrip(b"\n"), b"Nov 27 12:00:02 h app: after"]
