"""Events that arrive already in ECS form (exports of another auditcorr, other tools).

Their documents keep the dataset of the log type that made them, so that log
type answers who is behind them; ``rules test`` reads ``*.jsonl``/``*.ndjson``
files as timeline JSON lines.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from daemon import logtypes
from daemon.logtypes import LogType, host
from daemon.model import AuditEvent
from daemon.normalize import ecs

if TYPE_CHECKING:
    from daemon.identity import IdentityMap, Person


def actor(identities: IdentityMap, event: AuditEvent) -> Person | None:
    made_by = logtypes.of_dataset(event.dataset)
    return (made_by.actor if made_by is not None else host.actor)(identities, event)


def claims_file(name: str, head: bytes) -> bool:
    return name.endswith((".jsonl", ".ndjson", ".jsonl.gz"))


LOG_TYPE = LogType(
    name="ecs",
    decode=ecs.decode,
    normalize=ecs.normalize,
    actor=actor,
    claims_file=claims_file,
)
