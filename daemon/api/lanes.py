"""Which lane of the timeline an event belongs to, and its badge: its log type says."""

from __future__ import annotations

from daemon import logtypes

LANES = ("cloud", "onprem", "change", "alert")
"""The lanes of the timeline page, in the order it draws them."""


def lane_of(log_type: str) -> str:
    """The log type's lane; ``onprem`` for a log type this daemon does not know
    (a store written by a newer one)."""
    return logtypes.get(log_type).lane if log_type in logtypes.REGISTRY else "onprem"


def label_of(log_type: str) -> str | None:
    """The badge the page shows on a cloud event (``AWS``); None: the host or source."""
    return logtypes.get(log_type).label if log_type in logtypes.REGISTRY else None
