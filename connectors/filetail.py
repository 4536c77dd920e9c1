"""Tailing a log file across rotation: what ``syslog_file`` and ``auditd_file`` share.

Only complete lines are read.  The checkpoint, committed with each batch's
events, is the file's inode, the offset after the last line read and a
fingerprint: a hash of the file's first line, which tells a file that was
truncated and written again (``copytruncate``) from the one that was read.
Each line's position is ``inode.fingerprint:offset``, so a line read again
after a crash, or from the renamed file after a rotation, keeps its event id,
while two files of the same content (a log rotated twice with nothing new)
stay apart.

Rotation:

* **rename** (logrotate's default, ``create``): the path names a new inode.
  The old file is read to its end through the descriptor still open, then the
  new one from its start.  If the daemon was down meanwhile, the renamed file
  is found beside the path (``auth.log.1``, ``auth.log-20261127``) by its
  inode and read from the checkpoint on.
* **copytruncate**: the file shrinks below the offset.  What was written
  between the last read and the copy is read from the copy (found beside the
  path by its fingerprint), then the truncated file from its start.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from hashlib import blake2b
from typing import Any, ClassVar, Literal

import structlog
from pydantic import Field

from connectors.base import Checkpoint, Emit, RawBatch, Source, SourceContext
from connectors.config import ConfigPath, SourceConfig
from connectors.syslog.batch import header

log = structlog.get_logger()

READ_BYTES = 1024 * 1024
"""Bytes read and emitted as one payload (more only for one line that is longer):
about 10,000 syslog lines, so one decoding job stays short and a stopping daemon
drains what it read within seconds."""
ROTATE_GRACE_SECS = 1.0
"""How long a renamed file must stay quiet before the new one is read."""
FINGERPRINT_BYTES = 1024
"""The first line, or this much of it, identifies a file's content."""


class LogFileConfig(SourceConfig):
    path: ConfigPath
    """The file; it may appear later (it is then read from its start)."""
    start: Literal["beginning", "end"] = "end"
    """Where to begin the first time (no checkpoint yet)."""
    poll_interval_secs: float = Field(default=0.25, gt=0, le=60)
    """How often the file is checked for new lines and rotation."""
    host: str | None = None
    """``host.name`` for lines that name none; default: this machine's name."""
    max_line_bytes: int = Field(default=64 * 1024, ge=480, le=16 * 1024 * 1024)
    """Longer lines are cut to this and flagged."""


@dataclass(slots=True)
class _Open:
    """The file being read."""

    handle: Any
    inode: int
    offset: int
    fingerprint: str | None


def fingerprint(first_bytes: bytes) -> str | None:
    """Hash of the first line (or its first FINGERPRINT_BYTES); None until it is complete."""
    end = first_bytes.find(b"\n")
    if end < 0 and len(first_bytes) < FINGERPRINT_BYTES:
        return None
    head = first_bytes[: min(end + 1 if end >= 0 else FINGERPRINT_BYTES, FINGERPRINT_BYTES)]
    return blake2b(head, digest_size=8).hexdigest()


def _read_fingerprint(handle: Any) -> str | None:
    handle.seek(0)
    return fingerprint(handle.read(FINGERPRINT_BYTES))


class LogFileSource(Source):
    """Tails ``config.path``; subclasses name the log type."""

    config: LogFileConfig
    log_type: ClassVar[str] = "syslog"

    def __init__(self, config: LogFileConfig, context: SourceContext) -> None:
        super().__init__(config, context)
        self._key = str(config.path)
        self._file: _Open | None = None
        self._host = config.host or socket.gethostname()
        self._quiet_since: float | None = None
        self._problem: str | None = None

    async def __aexit__(self, *exc_info: object) -> None:
        if self._file is not None:
            self._file.handle.close()
            self._file = None

    async def run(self, emit: Emit) -> None:
        saved = self.context.checkpoints.get(self._key)
        await asyncio.to_thread(self._open_first, saved)
        while True:
            batches, more = await asyncio.to_thread(self._poll)
            for batch in batches:
                await emit(batch)  # never waits for the commit: the offset is ours
            if more:
                continue
            if self.context.mode == "backfill" and not batches:
                return
            await asyncio.sleep(self.config.poll_interval_secs)

    # -- in a worker thread ------------------------------------------------

    def timezone(self) -> str:
        """Zone of stamps without one (audit stamps are epoch seconds)."""
        return "UTC"

    def whole_events(self, lines: list[bytes]) -> int:
        """How many of ``lines`` to emit when more follow: every line is an event."""
        return len(lines)

    def _open_first(self, saved: dict[str, Any] | None) -> None:
        path = self.config.path
        handle = self._open_path()
        if handle is None:
            return
        inode = os.fstat(handle.fileno()).st_ino
        current = _read_fingerprint(handle)
        if saved is None:
            offset = 0
            if self.config.start == "end":
                offset = _line_end(handle)
            self._file = _Open(handle, inode, offset, current)
            return
        offset = int(saved.get("offset", 0))
        mark = saved.get("fingerprint")
        if int(saved.get("inode", -1)) == inode and (mark is None or mark == current):
            self._file = _Open(handle, inode, offset, current)
            return
        # Rotated (renamed or copied and truncated) while the daemon was down:
        # finish the old content first.
        old = self._find_rotated(
            lambda stat, fp: (
                fp == mark and (stat.st_ino == saved.get("inode") or stat.st_size > offset)
            )
        )
        if old is not None:
            handle.close()
            self._file = _Open(old[0], old[1], offset, mark)
            return
        if inode == saved.get("inode") and mark is not None and mark != current:
            log.warning("file_replaced", path=str(path))
        self._file = _Open(handle, inode, 0, current)

    def _find_rotated(
        self, match: Callable[[os.stat_result, str | None], bool]
    ) -> tuple[Any, int] | None:
        """An open handle and inode of a rotated copy beside the path that ``match`` picks."""
        path = self.config.path
        try:
            names = sorted(os.listdir(path.parent))
        except OSError:
            return None
        for name in names:
            if (
                name == path.name
                or not name.startswith(path.name)
                or name.endswith((".gz", ".xz", ".bz2", ".zst"))
            ):
                continue
            candidate = path.parent / name
            try:
                handle = candidate.open("rb")
            except OSError:
                continue
            stat = os.fstat(handle.fileno())
            if match(stat, _read_fingerprint(handle)):
                return handle, stat.st_ino
            handle.close()
        return None

    def _poll(self) -> tuple[list[RawBatch], bool]:
        """New lines as payloads, and whether more are waiting to be read."""
        batches: list[RawBatch] = []
        current = self._file
        if current is None:
            self._open_new()
            current = self._file
            if current is None:
                return batches, False
        fd = current.handle.fileno()
        size = os.fstat(fd).st_size
        if size < current.offset or (
            current.fingerprint is not None
            and fingerprint(os.pread(fd, FINGERPRINT_BYTES, 0)) != current.fingerprint
        ):
            # copytruncate: the lines written since the last read are in the copy.
            batches += self._drain_copy(current)
            self._restart(current.handle, current.inode)
            current = self._file
            assert current is not None
        batch, more = self._read(current)
        if batch is not None:
            self._quiet_since = None
            batches.append(batch)
            return batches, more  # rotation is looked at once caught up
        try:
            renamed = os.stat(self.config.path).st_ino != current.inode
        except FileNotFoundError:
            renamed = False
        if renamed and self._quiet_for(ROTATE_GRACE_SECS):
            # Renamed away and read to its end: go on with the new file.
            current.handle.close()
            self._file = None
            self._open_new()
            return batches, True
        return batches, False

    def _quiet_for(self, seconds: float) -> bool:
        """Whether the old file of a rename has stayed quiet this long: a writer
        keeps writing to it until it reopens its log (logrotate's postrotate)."""
        if self.context.mode == "backfill":
            return True
        now = time.monotonic()
        if self._quiet_since is None:
            self._quiet_since = now
        return now - self._quiet_since >= seconds

    def _drain_copy(self, current: _Open) -> list[RawBatch]:
        found = self._find_rotated(
            lambda stat, fp: fp == current.fingerprint and stat.st_size > current.offset
        )
        if found is None:
            log.warning("file_truncated", path=str(self.config.path))
            return []
        # The copy's lines keep the positions they had in the original.
        copy = _Open(found[0], current.inode, current.offset, current.fingerprint)
        batches = []
        try:
            while (batch := self._read(copy)[0]) is not None:
                # The copy's checkpoint would point at the copy's inode: keep the
                # truncated file's, at offset 0, so a crash now re-reads that.
                batch.checkpoints = [
                    Checkpoint(
                        self._key, {"inode": current.inode, "offset": 0, "fingerprint": None}
                    )
                ]
                batches.append(batch)
        finally:
            copy.handle.close()
        return batches

    def _restart(self, handle: Any, inode: int) -> None:
        self._file = _Open(handle, inode, 0, _read_fingerprint(handle))

    def _open_path(self) -> Any:
        """The file opened, or None (logged once) while it is missing or unreadable."""
        path = self.config.path
        try:
            handle = path.open("rb")
        except OSError as err:
            problem = "missing" if isinstance(err, FileNotFoundError) else err.strerror or str(err)
            if problem != self._problem:
                self._problem = problem
                log.warning("file_unreadable", path=str(path), error=problem)
            return None
        self._problem = None
        return handle

    def _open_new(self) -> None:
        handle = self._open_path()
        if handle is None:
            return
        self._restart(handle, os.fstat(handle.fileno()).st_ino)
        log.info("file_opened", path=str(self.config.path))

    def _read(self, current: _Open) -> tuple[RawBatch | None, bool]:
        """The complete lines after ``current.offset`` (at most READ_BYTES) as one
        payload, and whether more are waiting."""
        if current.fingerprint is None:
            current.fingerprint = _read_fingerprint(current.handle)
            if current.fingerprint is None:
                return None, False
        handle = current.handle
        handle.seek(current.offset)
        data = handle.read(READ_BYTES)
        end = data.rfind(b"\n")
        if end < 0 and len(data) == READ_BYTES < self.config.max_line_bytes:
            # One line longer than a read: read on, up to the line limit.
            data += handle.read(self.config.max_line_bytes + 1 - READ_BYTES)
            end = data.rfind(b"\n")
        if end < 0:
            if len(data) < self.config.max_line_bytes:
                return None, False
            end = len(data) - 1  # one line longer than the limit: cut below
        data = data[: end + 1]
        more = len(data) == READ_BYTES or handle.read(1) != b""
        lines = data.split(b"\n")
        lines.pop()
        if more:
            keep = self.whole_events(lines)
            if keep < len(lines):
                lines = lines[:keep]
                data = data[: sum(len(line) + 1 for line in lines)]
        limit = self.config.max_line_bytes
        # Long lines are cut; their full lengths travel in the header, so the
        # offsets of the lines after them stay right.
        lengths = {index: len(line) for index, line in enumerate(lines) if len(line) > limit}
        for index in lengths:
            lines[index] = lines[index][:limit]
        start = current.offset
        current.offset += len(data)
        checkpoint = {
            "inode": current.inode,
            "offset": current.offset,
            "fingerprint": current.fingerprint,
        }
        head = header(
            time.time_ns(),
            self.timezone(),
            host=self._host,
            positions="offset",
            base=start or None,
            file=str(self.config.path),
            fingerprint=f"{current.inode:x}.{current.fingerprint}",
            truncated=list(lengths) or None,
            lengths={str(i): n for i, n in lengths.items()} or None,
        )
        batch = RawBatch(
            self.log_type,
            str(self.config.path),
            head + b"\n".join(lines),
            [Checkpoint(self._key, checkpoint)],
        )
        return batch, more


def _line_end(handle: Any) -> int:
    """The offset just after the last complete line."""
    size = os.fstat(handle.fileno()).st_size
    back = min(size, 64 * 1024)
    handle.seek(size - back)
    tail = handle.read(back)
    end = tail.rfind(b"\n")
    return size - back + end + 1 if end >= 0 else 0
