"""Sources that read a local directory tree of log files, one whole file per payload.

What a cloud writes to a bucket and an operator syncs to disk (CloudTrail's
``AWSLogs`` tree, a Cloud Logging sink's folders) is read the same way: each
new or changed file is one payload, its checkpoint (size and modification
time) is committed with its events, so a file is read again only if it
changed or its events were never committed.  A file over ``max_file_bytes``
or one that cannot be read is handed on with its error and quarantined; a
malformed file (invalid JSON, truncated gzip) is quarantined by its log
type's decoder.  A subclass says which files are logs and in which order they
were delivered.
"""

from __future__ import annotations

import abc
import asyncio
import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import ClassVar

import structlog
from pydantic import Field

from connectors.base import Check, Checkpoint, Emit, RawBatch, Source
from connectors.cloudtrail.keys import day_of, day_range
from connectors.config import ExistingDir, SourceConfig

log = structlog.get_logger()

_CHECK_FILES = 10_000
"""``doctor`` looks at this many files at most, so it stays quick on a large tree."""


class FileTreeConfig(SourceConfig):
    """The settings every file-tree source has."""

    path: ExistingDir
    """Root of the tree, or any folder of log files."""
    poll_interval_secs: float = Field(default=30.0, gt=0, le=3600)
    """How often to look for new files while running."""
    max_file_bytes: int = Field(default=256 * 1024 * 1024, gt=0)
    """Larger files are quarantined unread."""


@dataclass(frozen=True, slots=True)
class Found:
    """A log file to read: where it is and the checkpoint it gets."""

    path: Path
    relative: str
    size: int
    mtime_ns: int


class FileTreeSource(Source):
    """Polls a tree and emits each new or changed log file, oldest delivery first."""

    log_type: ClassVar[str]
    """The log type its files hold."""
    suffixes: ClassVar[tuple[str, ...]]
    """Names of log files end in one of these."""
    config: FileTreeConfig

    @abc.abstractmethod
    def delivery_order(self, item: Found) -> tuple[str, str]:
        """Sort key of files in the order they were delivered."""

    def is_log(self, path: str) -> bool:
        """A file the tree holds besides logs (CloudTrail's digests) is not one."""
        return path.endswith(self.suffixes)

    async def run(self, emit: Emit) -> None:
        done: dict[str, tuple[int, int]] = {
            key: (int(value.get("size", -1)), int(value.get("mtime_ns", -1)))
            for key, value in self.context.checkpoints.items()
        }
        while True:
            found = await asyncio.to_thread(self._scan, done)
            if found:
                log.info("files_found", count=len(found), path=str(self.config.path))
            for item in found:
                await emit(await asyncio.to_thread(self._read, item))
                done[item.relative] = (item.size, item.mtime_ns)
            if self.context.mode == "backfill":
                return
            await asyncio.sleep(self.config.poll_interval_secs)

    async def checks(self) -> list[Check]:
        """The tree is readable by this user: every folder listed, the log files counted."""
        return [await asyncio.to_thread(self._check_readable)]

    def _check_readable(self) -> Check:
        root = self.config.path
        name = "path readable"
        hint = (
            "give the service user read access, e.g. chgrp -R auditcorr PATH and"
            " chmod -R g+rX PATH; run doctor as that user (sudo -u auditcorr ...)"
        )
        if not os.access(root, os.R_OK | os.X_OK):
            return Check(name, False, f"{root}: no read access for this user", hint)
        unreadable: list[str] = []
        files = 0
        walk = os.walk(
            root, onerror=lambda err: unreadable.append(str(err.filename)), followlinks=True
        )
        for folder, _dirs, names in walk:
            for file_name in names:
                if file_name.endswith(self.suffixes):
                    files += 1
                    if not os.access(os.path.join(folder, file_name), os.R_OK):
                        unreadable.append(os.path.join(folder, file_name))
            if files >= _CHECK_FILES:
                break
        if unreadable:
            shown = ", ".join(unreadable[:3]) + (" ..." if len(unreadable) > 3 else "")
            return Check(name, False, f"{len(unreadable)} not readable: {shown}", hint)
        counted = f"{files} log files" if files < _CHECK_FILES else f"the first {files} log files"
        return Check(name, True, f"{root}: {counted} readable")

    def _scan(self, done: dict[str, tuple[int, int]]) -> list[Found]:
        """New or changed log files, oldest delivery first."""
        root = self.config.path
        days = day_range(self.context.since, self.context.until)
        found: list[Found] = []
        stack = [root]
        while stack:
            folder = stack.pop()
            try:
                entries = list(os.scandir(folder))
            except OSError as err:
                log.warning("folder_unreadable", path=str(folder), error=str(err))
                continue
            for entry in entries:
                if entry.is_dir(follow_symlinks=True):
                    stack.append(Path(entry.path))
                    continue
                if not self.is_log(entry.path):
                    continue
                relative = os.path.relpath(entry.path, root)
                if days is not None and not _in_days(relative, days):
                    continue
                try:
                    stat = entry.stat()
                    size, mtime = stat.st_size, stat.st_mtime_ns
                except OSError:
                    size, mtime = -1, -1  # e.g. a dangling link: reported when read
                if done.get(relative) == (size, mtime):
                    continue
                found.append(Found(Path(entry.path), relative, size, mtime))
        found.sort(key=self.delivery_order)
        return found

    def _read(self, item: Found) -> RawBatch:
        # A backfill limited in time stores only part of a file: the file is
        # not marked done, so a later run still reads the rest of it.
        ranged = self.context.since is not None or self.context.until is not None
        checkpoints = (
            []
            if ranged
            else [Checkpoint(item.relative, {"size": item.size, "mtime_ns": item.mtime_ns})]
        )
        origin = str(item.path)
        try:
            if item.size > self.config.max_file_bytes:
                raise OSError(0, f"file of {item.size} bytes exceeds max_file_bytes")
            payload = item.path.read_bytes()
        except OSError as err:
            reason = f"cannot read file: {err.strerror or err}"
            return RawBatch(self.log_type, origin, b"", checkpoints, error=reason)
        return RawBatch(self.log_type, origin, payload, checkpoints)


def _in_days(relative: str, days: tuple[date, date]) -> bool:
    """The file's ``YYYY/MM/DD`` folder, the layout CloudTrail and Cloud Logging sinks
    both write, is within ``days``; a file outside such folders always is."""
    day = day_of(relative.replace(os.sep, "/"))
    return day is None or days[0] <= day <= days[1]
