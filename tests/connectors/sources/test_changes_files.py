"""The changes_files source: JSON, YAML and CSV records, re-read on change."""

from __future__ import annotations

import asyncio
import json
import os
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors.base import RawBatch, SourceContext
from connectors.sources.changes_files import ChangesFilesConfig, ChangesFilesSource

RECORD = {
    "id": "CHG1",
    "state": "approved",
    "implementers": ["alice"],
    "window": {"start": "2026-11-20T09:00:00Z", "end": "2026-11-20T09:30:00Z"},
}


async def backfill(root: Path, checkpoints: dict[str, Any] | None = None) -> list[RawBatch]:
    config = ChangesFilesConfig(type="changes_files", path=root)
    emitted: list[RawBatch] = []

    async def emit(batch: RawBatch) -> Any:
        emitted.append(batch)

    context = SourceContext("changes", checkpoints or {}, mode="backfill")
    async with ChangesFilesSource(config, context) as source:
        await source.run(emit)
    return emitted


def records(batch: RawBatch) -> list[Any]:
    assert batch.error is None, batch.error
    parsed: list[Any] = json.loads(batch.payload)
    return parsed


async def test_every_format_becomes_records_in_json_form(tmp_path: Path) -> None:
    """One JSON record, a JSON list, YAML and CSV all arrive as lists of records."""
    (tmp_path / "one.json").write_text(json.dumps(RECORD))
    (tmp_path / "many.json").write_text(json.dumps([RECORD, {**RECORD, "id": "CHG2"}]))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "weekly.yaml").write_text(
        textwrap.dedent(
            """
            - id: CHG3
              state: approved
              implementers: [bob]
              window: {start: 2026-11-20T01:00:00+09:00, end: "2026-11-20T03:00"}
              scope: {hosts: ["web0*"], actions: ["sudo:/usr/bin/systemctl restart nginx"]}
            """
        )
    )
    (tmp_path / "itsm.csv").write_text(
        "id,state,window_start,window_end,implementers,hosts\n"
        "CHG4,approved,2026-11-20T09:00,2026-11-20T10:00,alice;bob,web01\n"
    )
    (tmp_path / "notes.txt").write_text("ignored")
    emitted = await backfill(tmp_path)
    by_name = {Path(b.origin).name: b for b in emitted}
    assert sorted(by_name) == ["itsm.csv", "many.json", "one.json", "weekly.yaml"]
    assert all(b.log_type == "change" for b in emitted)
    assert records(by_name["one.json"]) == [{**RECORD, "updated": modified(tmp_path / "one.json")}]
    assert [r["id"] for r in records(by_name["many.json"])] == ["CHG1", "CHG2"]
    (yaml_record,) = records(by_name["weekly.yaml"])
    assert yaml_record["window"] == {
        "start": "2026-11-20T01:00:00+09:00",
        "end": "2026-11-20T03:00",
    }
    (csv_record,) = records(by_name["itsm.csv"])
    assert csv_record["implementers"] == ["alice", "bob"]
    assert csv_record["scope"] == {"hosts": ["web01"]}


def modified(path: Path) -> str:
    """The file's modification time as records without ``updated`` carry it."""
    moment = datetime.fromtimestamp(int(path.stat().st_mtime), UTC)
    return moment.isoformat().replace("+00:00", "Z")


async def test_records_without_an_update_time_carry_the_files_modification_time(
    tmp_path: Path,
) -> None:
    """A record read long after its file was written keeps the file's time, not the read's;
    a record's own ``updated`` is kept."""
    written = datetime(2026, 11, 19, 16, 20, 7, tzinfo=UTC).timestamp()
    path = tmp_path / "two.json"
    path.write_text(json.dumps([RECORD, {**RECORD, "id": "CHG2", "updated": "2026-11-18T08:00Z"}]))
    os.utime(path, (written, written))
    (batch,) = await backfill(tmp_path)
    assert [r["updated"] for r in records(batch)] == ["2026-11-19T16:20:07Z", "2026-11-18T08:00Z"]


async def test_a_csv_without_required_columns_is_refused_whole(tmp_path: Path) -> None:
    """The batch carries the reason, naming the missing columns, for the quarantine."""
    (tmp_path / "bad.csv").write_text("id,title\nCHG1,x\n")
    (batch,) = await backfill(tmp_path)
    assert batch.error == (
        "CSV lacks column(s) state, window_start, window_end"
        " (required: id, state, window_start, window_end)"
    )


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("broken.json", "{nope", "invalid JSON"),
        ("broken.yaml", "a: [b", "invalid YAML"),
        ("latin.json", b"\xff\xfe\x00", "not UTF-8 text"),
    ],
)
async def test_unparsable_files_carry_their_reason(
    tmp_path: Path, name: str, content: str | bytes, reason: str
) -> None:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    (batch,) = await backfill(tmp_path)
    assert batch.error is not None
    assert batch.error.startswith(reason)


async def test_an_oversized_file_is_not_read(tmp_path: Path) -> None:
    (tmp_path / "huge.json").write_text(json.dumps([RECORD] * 10))
    config = ChangesFilesConfig(type="changes_files", path=tmp_path, max_file_bytes=100)
    emitted: list[RawBatch] = []

    async def emit(batch: RawBatch) -> Any:
        emitted.append(batch)

    async with ChangesFilesSource(config, SourceContext("c", {}, mode="backfill")) as source:
        await source.run(emit)
    assert emitted[0].error is not None
    assert "exceeds max_file_bytes" in emitted[0].error


async def test_checkpointed_content_is_not_read_again(tmp_path: Path) -> None:
    """A file whose content hash is checkpointed is skipped; an edit is read."""
    path = tmp_path / "one.json"
    path.write_text(json.dumps(RECORD))
    (first,) = await backfill(tmp_path)
    checkpoints = {cp.key: cp.value for cp in first.checkpoints}
    assert await backfill(tmp_path, checkpoints) == []
    path.write_text(json.dumps({**RECORD, "state": "completed"}))
    (edited,) = await backfill(tmp_path, checkpoints)
    assert records(edited)[0]["state"] == "completed"


async def test_a_running_source_picks_up_edits(tmp_path: Path) -> None:
    """While following, an edited file is read again at the next poll."""
    path = tmp_path / "one.json"
    path.write_text(json.dumps(RECORD))
    config = ChangesFilesConfig(type="changes_files", path=tmp_path, poll_interval_secs=0.05)
    emitted: asyncio.Queue[RawBatch] = asyncio.Queue()

    async def emit(batch: RawBatch) -> Any:
        await emitted.put(batch)

    async with ChangesFilesSource(config, SourceContext("c", {})) as source:
        task = asyncio.create_task(source.run(emit))
        try:
            first = await asyncio.wait_for(emitted.get(), 5)
            assert records(first)[0]["state"] == "approved"
            path.write_text(json.dumps({**RECORD, "state": "cancelled"}))
            second = await asyncio.wait_for(emitted.get(), 5)
            assert records(second)[0]["state"] == "cancelled"
            await asyncio.sleep(0.2)
            assert emitted.empty()
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
