"""The store fixtures on both engines, for the change-record store tests."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "store"))

from storesupport import engine, place, store

__all__ = ["engine", "place", "store"]
