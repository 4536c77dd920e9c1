"""The daemon's own audit trail: what operators did through the CLI and the API."""

from __future__ import annotations

from daemon.logtypes import LogType
from daemon.normalize import audit

LOG_TYPE = LogType(
    name="audit",
    decode=audit.decode,
    normalize=audit.normalize,
    datasets=(audit.DATASET,),
)
