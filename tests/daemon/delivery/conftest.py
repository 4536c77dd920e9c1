"""Fixtures for the delivery tests: a store and a real HTTP receiver on an ephemeral port."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from deliverysupport import receiver, store

__all__ = ["receiver", "store"]
