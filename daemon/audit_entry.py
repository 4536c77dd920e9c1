"""An admin's action as an entry on the timeline, and handing it to the running pipeline.

Apart from ``daemon/audit.py`` (which also runs a pipeline of its own for CLI
commands) so that the HTTP API records its admins' reads without knowing the
pipeline: it hands entries to whatever ``Emitter`` the daemon gives it.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import orjson
import structlog

from connectors.base import RawBatch
from daemon.model import format_timestamp
from daemon.normalize.audit import SOURCE

log = structlog.get_logger()

LOG_TYPE = "audit"
ENQUEUE_SECS = 5.0


@dataclass(frozen=True)
class Action:
    """What an admin did, by whom and how."""

    action: str
    """``quarantine_read``, ``deliveries_retried``, ``store_migrated``."""
    via: Literal["api", "cli", "config"]
    user: str
    """The API token's name, the local account that ran the command, or the config
    file's owner."""
    role: str
    peer: str | None = None
    target: str | None = None
    outcome: Literal["success", "failure"] = "success"
    detail: dict[str, Any] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        """The JSON record ``daemon/normalize/audit.py`` reads; a fresh id per action."""
        return {
            "id": uuid.uuid4().hex,
            "at": format_timestamp(datetime.now(UTC)),
            "action": self.action,
            "via": self.via,
            "user": self.user,
            "role": self.role,
            "peer": self.peer,
            "target": self.target,
            "outcome": self.outcome,
            "detail": self.detail,
        }


def batch(action: Action) -> RawBatch:
    return RawBatch(LOG_TYPE, f"{action.via} {action.user}", orjson.dumps([action.record()]))


class Emitter(Protocol):
    """What takes the daemon's own timeline entries: the running pipeline."""

    async def emit(self, source: str, batch: RawBatch) -> asyncio.Future[None]: ...


async def record(pipeline: Emitter, action: Action) -> None:
    """In the daemon: hand the entry to the running pipeline (it is stored with the next
    write).  A pipeline that takes nothing for seconds is logged, not waited for."""
    try:
        async with asyncio.timeout(ENQUEUE_SECS):
            await pipeline.emit(SOURCE, batch(action))
    except TimeoutError:
        log.error("audit_entry_not_recorded", action=action.action, user=action.user)
