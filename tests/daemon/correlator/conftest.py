"""The store fixtures of ``tests/daemon/store`` (both engines) for the correlator's tests."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "store"))

from storesupport import engine, place, store

__all__ = ["engine", "place", "store"]
