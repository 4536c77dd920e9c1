"""Pausing Python's cyclic garbage collector around bulk work.

Parsing a log file or building thousands of event documents creates
hundreds of thousands of small dicts; the collector would run again and again
over all of them (measured 2.5x slower parsing, several times slower reading),
yet parsed JSON holds no reference cycles.  Reference counting still frees
everything.  The collector is turned back on only if it was on.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
