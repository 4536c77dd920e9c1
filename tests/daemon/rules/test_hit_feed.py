"""Hits as the store's feed carries them: JSON made in the decoding workers, read back
by the correlator (on any member of a cluster) as the same hits."""

from __future__ import annotations

import sys
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).parents[1] / "cluster"))

from clustersupport import make_hit

from daemon.rules.hits import Hit


def test_a_hit_survives_the_feed_unchanged() -> None:
    """Change facts, context, actors and values come back equal, times with their zone."""
    for hit in (make_hit("syslog", 1), make_hit("trail", 2, change=True)):
        assert Hit.from_json(orjson.loads(orjson.dumps(hit.to_json()))) == hit
