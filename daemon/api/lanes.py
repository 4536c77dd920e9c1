"""Which lane of the timeline an event belongs to, by its log type."""

from __future__ import annotations

LANES = ("cloud", "onprem", "change", "alert")
_BY_LOG_TYPE = {"cloudtrail": "cloud", "change": "change", "alert": "alert"}


def lane_of(log_type: str) -> str:
    """``cloud`` for CloudTrail, ``change`` for change records, ``alert`` for alerts
    raised or updated, ``onprem`` for host logs."""
    return _BY_LOG_TYPE.get(log_type, "onprem")
