"""The systemd journal, read through ``journalctl -o json --follow``.

No compiled binding: ``journalctl`` does the reading, and its JSON lines are
handed to the pipeline in batches.  The checkpoint is the cursor of the last
entry of each batch; on restart the source resumes ``--after-cursor`` it.
When the pipeline is full the source stops reading journalctl's output and
journalctl waits on the pipe.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import Literal

import structlog
from pydantic import Field

from connectors.base import Checkpoint, Emit, RawBatch, Source, TransientError
from connectors.config import ConfigPath, SourceConfig

log = structlog.get_logger()

CURSOR_KEY = "cursor"
_CURSOR = re.compile(rb'"__CURSOR":"([^"]+)"')
_READ_BYTES = 256 * 1024
_STDERR_KEPT = 4096


class JournaldConfig(SourceConfig):
    type: Literal["journald"] = "journald"
    journalctl: str = "journalctl"
    """The journalctl program (a name on PATH or a path)."""
    files: list[ConfigPath] = Field(default_factory=list)
    """Journal files to read (``--file``); default: the system journal."""
    directory: ConfigPath | None = None
    """A journal directory to read (``--directory``)."""
    matches: list[str] = Field(default_factory=list)
    """journalctl matches, e.g. ``_SYSTEMD_UNIT=sshd.service`` (ANDed; ``+`` for OR)."""
    start: Literal["beginning", "end"] = "end"
    """Where to begin the first time (no saved cursor yet)."""
    batch_max_messages: int = Field(default=5000, gt=0, le=100_000)
    """Entries handed to the pipeline in one payload at most."""
    batch_max_ms: int = Field(default=100, gt=0, le=10_000)
    """How long an entry waits for others to fill its payload."""


class JournaldSource(Source):
    config_model = JournaldConfig
    config: JournaldConfig

    def command(self, cursor: str | None) -> list[str]:
        config = self.config
        argv = [config.journalctl, "--output=json", "--no-pager", "--quiet"]
        if self.context.mode == "follow":
            argv.append("--follow")
        if cursor:
            argv += ["--after-cursor", cursor, "--no-tail"]
        elif config.start == "beginning":
            argv.append("--no-tail")
        else:
            argv += ["--lines", "0"]
        for path in config.files:
            argv += ["--file", str(path)]
        if config.directory is not None:
            argv += ["--directory", str(config.directory)]
        return argv + config.matches

    async def run(self, emit: Emit) -> None:
        saved = self.context.checkpoints.get(CURSOR_KEY) or {}
        cursor = saved.get("cursor")
        if self.context.mode == "backfill" and cursor is None and self.config.start == "end":
            return  # nothing before "now" is wanted, and nothing after it in a backfill
        argv = self.command(cursor)
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as err:
            raise TransientError(f"cannot start {argv[0]}: {err}") from err
        log.info("journalctl_started", argv=argv)
        stdout, stderr_stream = proc.stdout, proc.stderr
        if stdout is None or stderr_stream is None:  # pragma: no cover - PIPE was asked for
            raise TransientError("journalctl started without pipes")
        try:
            async with asyncio.TaskGroup() as group:
                errors = group.create_task(_tail(stderr_stream))
                await self._pump(stdout, emit)
            code = await proc.wait()
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.shield(proc.wait())
        stderr = errors.result().decode(errors="replace").strip()
        if code != 0 or self.context.mode == "follow":
            raise TransientError(f"journalctl exited with status {code}: {stderr or 'no output'}")

    async def _pump(self, stdout: asyncio.StreamReader, emit: Emit) -> None:
        """Read JSON lines and emit them in batches until journalctl's output ends."""
        loop = asyncio.get_running_loop()
        wait = self.config.batch_max_ms / 1000
        pending: list[bytes] = []
        rest = b""
        deadline = 0.0
        while True:
            timeout = max(deadline - loop.time(), 0) if pending else None
            try:
                chunk: bytes | None = await asyncio.wait_for(stdout.read(_READ_BYTES), timeout)
            except TimeoutError:
                chunk = None
            if chunk:
                lines = (rest + chunk).split(b"\n")
                rest = lines.pop()
                if lines and not pending:
                    deadline = loop.time() + wait
                pending += lines
            full = len(pending) >= self.config.batch_max_messages
            if pending and (not chunk or full):
                await emit(self._batch(pending))
                pending = []
            if chunk == b"":
                return

    def _batch(self, lines: list[bytes]) -> RawBatch:
        checkpoints = []
        for line in reversed(lines):
            found = _CURSOR.search(line)
            if found is not None:
                cursor = found[1].decode()
                checkpoints.append(Checkpoint(CURSOR_KEY, {"cursor": cursor}))
                break
        origin = "journal:" + (",".join(map(str, self.config.files)) or "system")
        return RawBatch("journald", origin, b"\n".join(lines), checkpoints)


async def _tail(stream: asyncio.StreamReader) -> bytes:
    """The last bytes a stream carried until it ended (journalctl's error message)."""
    kept = b""
    while chunk := await stream.read(_READ_BYTES):
        kept = (kept + chunk)[-_STDERR_KEPT:]
    return kept
