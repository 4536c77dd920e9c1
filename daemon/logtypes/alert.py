"""Alerts raised or updated by the correlator, on the timeline beside their evidence."""

from __future__ import annotations

from daemon.logtypes import LogType
from daemon.normalize import alert

LOG_TYPE = LogType(
    name="alert",
    decode=alert.decode,
    normalize=alert.normalize,
    datasets=(alert.DATASET,),
    lane="alert",
)
