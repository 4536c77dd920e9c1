"""The auditor audits itself: admins' actions become events on the timeline.

An action (reading the quarantine, retrying deliveries, migrating the store,
starting with a changed identity map) is handed to the pipeline as one batch
of log type ``audit`` under the source name ``auditcorr``, the path every
source's records take: decoded by ``daemon/normalize/audit.py``, stored by
the writer, kept like any event.  In the daemon the running pipeline takes
it (``daemon/audit_entry.py``: the entry and that hand-over); a CLI command runs
a one-batch pipeline of its own, as ``verify-digests`` does.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import pwd
import sys
from typing import Any, Literal

import orjson

from connectors.base import Emit, RawBatch, Source, SourceContext
from connectors.config import ConnectorConfig
from daemon.audit_entry import Action, batch, record
from daemon.config import Config
from daemon.normalize.audit import DATASET, SOURCE
from daemon.pipeline import Pipeline
from daemon.store.base import EventQuery, Store

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
