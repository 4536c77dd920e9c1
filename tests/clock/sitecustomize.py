"""Imported by every Python process of the clock run (``tests/clock/run`` puts this folder
on PYTHONPATH): ``time.sleep`` that works under libfaketime with the real monotonic clock.

CPython 3.11+ sleeps with ``clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)``, which
libfaketime 0.9.10 (Debian's) turns into EINVAL when the monotonic clock is excluded from
faking (https://github.com/wolfcw/libfaketime/issues/426).  ``select``'s timeout is
relative, so libfaketime leaves it alone.  Only installed where ``time.sleep`` fails.
"""

from __future__ import annotations

import select
import time


def _sleep(secs: float) -> None:
    if secs < 0:
        raise ValueError("sleep length must be non-negative")
    deadline = time.monotonic() + secs
    while (left := deadline - time.monotonic()) > 0:
        select.select([], [], [], left)


try:
    time.sleep(0.001)
except OSError:
    time.sleep = _sleep
