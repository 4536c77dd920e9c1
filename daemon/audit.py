"""The auditor audits itself: admins' actions become events on the timeline.

An action (reading the quarantine, retrying deliveries, migrating the store,
starting with a changed identity map) is handed to the pipeline as one batch
of log type ``audit`` under the source name ``auditcorr``, the path every
source's records take: decoded by ``daemon/normalize/audit.py``, stored by
the writer, kept like any event.  In the daemon the running pipeline takes
it; a CLI command runs a one-batch pipeline of its own, as
``verify-digests`` does.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import pwd
import sys
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
import structlog

from connectors.base import Emit, RawBatch, Source, SourceContext
from connectors.config import ConnectorConfig
from daemon.config import Config
from daemon.model import format_timestamp
from daemon.normalize.audit import DATASET, SOURCE
from daemon.pipeline import Pipeline
from daemon.store.base import EventQuery, Store

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


async def record(pipeline: Pipeline, action: Action) -> None:
    """In the daemon: hand the entry to the running pipeline (it is stored with the next
    write).  A pipeline that takes nothing for seconds is logged, not waited for."""
    try:
        async with asyncio.timeout(ENQUEUE_SECS):
            await pipeline.emit(SOURCE, batch(action))
    except TimeoutError:
        log.error("audit_entry_not_recorded", action=action.action, user=action.user)


IDENTITY_CHANGED = "identity_map_changed"


def identity_change(config: Config, store: Store) -> Action | None:
    """The identity map the daemon starts with, when it differs from the one the timeline
    last recorded: who is who decides whom every event names, so a change is evidence.

    The map is config (``[[identity.people]]``): the entry names the file's owner, who
    may have changed it, and the people added, removed or changed.
    """
    people = {person.id: person.model_dump(mode="json") for person in config.identity.people}
    digests = {
        pid: hashlib.sha256(orjson.dumps(p, option=orjson.OPT_SORT_KEYS)).hexdigest()
        for pid, p in people.items()
    }
    last = store.page(EventQuery(dataset=DATASET, action=IDENTITY_CHANGED, limit=1))
    recorded = last[0].document.get("original", {}).get("detail", {}) if last else {}
    before: dict[str, str] = recorded.get("people") or {}
    if digests == before:
        return None
    owner = pwd.getpwuid(config.path.stat().st_uid).pw_name
    return Action(
        action=IDENTITY_CHANGED,
        via="config",
        user=owner,
        role="config owner",
        target=str(config.path),
        detail={
            "people": digests,
            "added": sorted(digests.keys() - before.keys()),
            "removed": sorted(before.keys() - digests.keys()),
            "changed": sorted(k for k in digests.keys() & before.keys() if digests[k] != before[k]),
        },
    )


async def record_identity_change(pipeline: Pipeline, config: Config) -> None:
    """At start, before the sources run: the identity map's change, if any, on the timeline."""
    change = await pipeline.call_store(identity_change, config, pipeline.store)
    if change is not None:
        await record(pipeline, change)


def cli_action(action: str, **detail: Any) -> Action:
    """An action of the local account running a CLI command (and who it sudo'ed from)."""
    user = pwd.getpwuid(os.geteuid()).pw_name
    sudo = os.environ.get("SUDO_USER")
    if sudo:
        detail["sudo_user"] = sudo
    return Action(action=action, via="cli", user=user, role="local", detail=detail)


class TrailConfig(ConnectorConfig):
    type: Literal["audit_trail"] = "audit_trail"


class _TrailSource(Source):
    """Emits one batch and waits until it is committed."""

    config_model = TrailConfig

    def __init__(self, config: Any, context: SourceContext, entry: RawBatch) -> None:
        super().__init__(config, context)
        self._entry = entry

    async def run(self, emit: Emit) -> None:
        committed = await emit(self._entry)
        await committed


async def record_offline(config: Config, action: Action) -> None:
    """From the CLI: the entry through a one-batch pipeline into the config's store.

    Raises ``RuntimeError`` when it was not stored (the store refused it)."""
    from daemon.store.open import open_store

    entry = batch(action)
    store = open_store(config.store_settings())
    pipeline = Pipeline(
        store,
        {SOURCE: TrailConfig()},
        mode="backfill",
        workers=1,
        factory=lambda settings, context: _TrailSource(settings, context, entry),
    )
    try:
        stats = await pipeline.run()
    finally:
        store.close()
    if stats.failed_sources or stats.quarantined:
        raise RuntimeError(f"the audit entry for {action.action} was not stored")


def record_from_cli(config: Config, action: Action) -> None:
    """``record_offline`` for a CLI command; a store that cannot take the entry (a
    read-only account, a store gone) is a warning: the command's own work stands."""
    try:
        asyncio.run(record_offline(config, action))
    except Exception as err:  # noqa: BLE001 - any store failure is reported the same way
        print(f"auditcorr: {action.action} not recorded on the timeline: {err}", file=sys.stderr)
