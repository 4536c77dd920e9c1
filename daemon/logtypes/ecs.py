"""Events that arrive already in ECS form (exports of another auditcorr, other tools).

Their documents keep the dataset of the log type that made them, so that log type
answers questions about them (who is behind them, are they changes); ``rules test``
reads ``*.jsonl``/``*.ndjson`` files as timeline JSON lines.
"""

from __future__ import annotations

from daemon.logtypes import LogType
from daemon.normalize import ecs


def claims_file(name: str, head: bytes) -> bool:
    return name.endswith((".jsonl", ".ndjson", ".jsonl.gz"))


LOG_TYPE = LogType(
    name="ecs",
    decode=ecs.decode,
    normalize=ecs.normalize,
    claims_file=claims_file,
)
