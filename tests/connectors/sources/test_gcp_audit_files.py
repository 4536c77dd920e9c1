"""gcp_audit_files reads a Cloud Logging sink's tree as every file-tree source reads one."""

from __future__ import annotations

import gzip
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from connectors.base import RawBatch, SourceContext
from connectors.sources.gcp_audit_files import GcpAuditFilesConfig, GcpAuditFilesSource

SAMPLE = Path(__file__).parents[2] / "fixtures" / "gcp_audit" / "input.json"
LOGS = Path("cloudaudit.googleapis.com")


def sink(root: Path) -> list[str]:
    """A sink's tree over two days and two audit logs; the files in delivery order."""
    files = [
        LOGS / "activity/2026/11/19/23:00:00_23:59:59_S0.json",
        LOGS / "data_access/2026/11/20/14:00:00_14:59:59_S0.json.gz",
        LOGS / "activity/2026/11/20/14:00:00_14:59:59_S0.json",
        LOGS / "activity/2026/11/20/15:00:00_15:59:59_S0.json",
    ]
    for relative in files:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        data = SAMPLE.read_bytes()
        path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    (root / LOGS / "activity" / "README.txt").write_text("not a log file")
    return [str(p) for p in files]


async def backfill(
    root: Path, checkpoints: dict[str, Any] | None = None, **kw: Any
) -> list[RawBatch]:
    config = GcpAuditFilesConfig(path=root, **kw)
    emitted: list[RawBatch] = []

    async def emit(batch: RawBatch) -> None:
        emitted.append(batch)

    context = SourceContext("gcp", checkpoints or {}, mode="backfill")
    async with GcpAuditFilesSource(config, context) as source:
        await source.run(emit)
    return emitted


async def test_the_sink_tree_is_read_in_delivery_order(tmp_path: Path) -> None:
    """Each log file is one payload of log type gcp_audit, oldest hour first across logs."""
    order = sink(tmp_path)
    emitted = await backfill(tmp_path)
    assert [str(Path(b.origin).relative_to(tmp_path)) for b in emitted] == [
        order[0],
        *sorted(order[1:3]),
        order[3],
    ]
    assert {b.log_type for b in emitted} == {"gcp_audit"}
    (packed,) = [b for b in emitted if b.origin.endswith(".gz")]
    assert packed.payload[:2] == b"\x1f\x8b"  # gzip is the decoder's to open


async def test_checkpointed_files_are_not_read_again(tmp_path: Path) -> None:
    """A file whose size and modification time match its checkpoint is skipped; a changed
    file is read again in full."""
    sink(tmp_path)
    first = await backfill(tmp_path)
    checkpoints = {c.key: c.value for b in first for c in b.checkpoints}
    assert await backfill(tmp_path, checkpoints) == []
    changed = tmp_path / LOGS / "activity/2026/11/20/15:00:00_15:59:59_S0.json"
    changed.write_bytes(changed.read_bytes() + SAMPLE.read_bytes())
    (again,) = await backfill(tmp_path, checkpoints)
    assert again.origin == str(changed)


async def test_a_file_over_the_limit_is_handed_on_with_its_error(tmp_path: Path) -> None:
    """An oversized file is not read: its batch carries the reason, for the quarantine."""
    sink(tmp_path)
    emitted = await backfill(tmp_path, max_file_bytes=100)
    assert all(b.payload == b"" and "exceeds max_file_bytes" in (b.error or "") for b in emitted)
    assert all(b.checkpoints for b in emitted)


async def test_files_outside_the_sink_layout_go_by_modification_time(tmp_path: Path) -> None:
    """A flat folder of exported files is read oldest first."""
    for name, hour in (("b.json", 12), ("a.json", 13)):
        path = tmp_path / name
        path.write_bytes(SAMPLE.read_bytes())
        stamp = datetime(2026, 11, 20, hour, tzinfo=UTC).timestamp()
        os.utime(path, (stamp, stamp))
    emitted = await backfill(tmp_path)
    assert [Path(b.origin).name for b in emitted] == ["b.json", "a.json"]
