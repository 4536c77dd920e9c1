"""Change records from a directory of ``.json``, ``.yaml`` and ``.csv`` files.

Each file is one payload: its records are turned into their JSON form (see
``connectors/contracts/change_record.py``) and handed on as log type ``change``; the
normalizer validates them one by one, so one bad record is quarantined and
the others land.  A file is read again whenever its content changes (its
checkpoint is a hash of the content, committed with its records), so an
edited record becomes a new version.  A record without ``updated`` gets the
file's modification time: when that version arrived, not when it was read.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import structlog
import yaml
from pydantic import Field

from connectors.base import Checkpoint, Emit, RawBatch, Source
from connectors.config import ExistingDir, SourceConfig
from connectors.contracts.change_record import (
    CSV_COLUMNS,
    from_columns,
    missing_columns,
    stamp_received,
)

log = structlog.get_logger()

LOG_TYPE = "change"
_SUFFIXES = (".json", ".yaml", ".yml", ".csv")


class ChangesFilesConfig(SourceConfig):
    type: Literal["changes_files"] = "changes_files"
    path: ExistingDir
    """Folder of change record files (read with its subfolders)."""
    poll_interval_secs: float = Field(default=10.0, gt=0, le=3600)
    """How often to look for new or edited files while running."""
    max_file_bytes: int = Field(default=16 * 1024 * 1024, gt=0)
    """Larger files are quarantined unread."""


class UnreadableFileError(ValueError):
    """A file that holds no usable records as a whole (the reason is quarantined)."""


class ChangesFilesSource(Source):
    config_model = ChangesFilesConfig
    config: ChangesFilesConfig

    async def run(self, emit: Emit) -> None:
        seen = {key: str(value.get("sha256")) for key, value in self.context.checkpoints.items()}
        while True:
            batches = await asyncio.to_thread(self._scan, seen)
            if batches:
                log.info("files_found", count=len(batches), path=str(self.config.path))
            for batch in batches:
                await emit(batch)
                for checkpoint in batch.checkpoints:
                    seen[checkpoint.key] = str(checkpoint.value["sha256"])
            if self.context.mode == "backfill":
                return
            await asyncio.sleep(self.config.poll_interval_secs)

    def _scan(self, seen: dict[str, str]) -> list[RawBatch]:
        """A batch for every new or edited file, in path order."""
        root = self.config.path
        batches = []
        for path in sorted(_files(root)):
            batch = self._read(path, os.path.relpath(path, root), seen)
            if batch is not None:
                batches.append(batch)
        return batches

    def _read(self, path: Path, relative: str, seen: dict[str, str]) -> RawBatch | None:
        """The file's batch, or None when its content is the one read before.

        A file that cannot be read is quarantined once, and tried again when
        its size or modification time changes.
        """
        origin = str(path)
        try:
            stat = path.stat()
            if stat.st_size > self.config.max_file_bytes:
                raise UnreadableFileError(f"file of {stat.st_size} bytes exceeds max_file_bytes")
            content = path.read_bytes()
        except (OSError, UnreadableFileError) as err:
            marker = f"unreadable:{_stat_of(path)}"
            if seen.get(relative) == marker:
                return None
            reason = f"cannot read file: {getattr(err, 'strerror', None) or err}"
            return RawBatch(
                LOG_TYPE, origin, b"", [Checkpoint(relative, {"sha256": marker})], reason
            )
        digest = hashlib.sha256(content).hexdigest()
        if seen.get(relative) == digest:
            return None
        checkpoint = Checkpoint(relative, {"sha256": digest})
        try:
            records = stamp_received(records_of(path.suffix, content), _modified(stat))
            payload = json.dumps(records).encode()
        except UnreadableFileError as err:
            return RawBatch(LOG_TYPE, origin, content, [checkpoint], str(err))
        return RawBatch(LOG_TYPE, origin, payload, [checkpoint])


def _modified(stat: os.stat_result) -> datetime:
    """When the file got its content: the time its records without ``updated`` carry."""
    return datetime.fromtimestamp(stat.st_mtime, UTC)


def _stat_of(path: Path) -> str:
    try:
        stat = path.stat()
    except OSError:
        return "missing"
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def _files(root: Path) -> list[Path]:
    found: list[Path] = []
    for folder, _, names in os.walk(root, followlinks=True):
        found.extend(
            Path(folder, name)
            for name in names
            if name.endswith(_SUFFIXES) and not name.startswith(".")
        )
    return found


def records_of(suffix: str, content: bytes) -> list[Any]:
    """The records of one file in their JSON form, not yet validated."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise UnreadableFileError(f"not UTF-8 text: {err}") from err
    if suffix == ".csv":
        return _csv_records(text)
    try:
        parsed = json.loads(text) if suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        kind = "JSON" if suffix == ".json" else "YAML"
        raise UnreadableFileError(f"invalid {kind}: {err}") from err
    if parsed is None:
        return []
    records = parsed if isinstance(parsed, list) else [parsed]
    # YAML reads unquoted times as datetimes; the JSON form wants text.
    return [_plain(record) for record in records]


def _csv_records(text: str) -> list[Any]:
    reader = csv.DictReader(io.StringIO(text))
    missing = missing_columns(list(reader.fieldnames or []))
    if missing:
        raise UnreadableFileError(
            f"CSV lacks column(s) {', '.join(missing)} (required: {', '.join(CSV_COLUMNS)})"
        )
    return [from_columns(row) for row in reader]


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(key): _plain(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_plain(value) for value in node]
    if hasattr(node, "isoformat"):
        return node.isoformat()
    return node
