"""A stop that cannot hang: the daemon ends at the latest ``STOP_LIMIT_SECS`` after
it was asked to stop.

Every stage commits atomically and reads again what it had not committed (a file,
S3 or journal source from its checkpoint; a RELP sender resends what was not
acknowledged), so ending the process at any point loses only what ``kill -9``
would: plain TCP and UDP syslog held in memory.  A stop normally ends well within
the limit (the pipeline drains for ``STOP_DRAIN_SECS``); the limit bounds what the
drain does not — the commit under way, the outputs' last sends, closing the store —
on a loaded machine, so that a service manager never has to kill the daemon and a
stop is predictable.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Final

import structlog

log = structlog.get_logger()

STOP_LIMIT_SECS: Final = 9.0


def end_at_the_latest(after: float = STOP_LIMIT_SECS) -> None:
    """Start the clock: ``after`` seconds from now the process ends with status 0,
    whatever it is doing then."""
    timer = threading.Timer(after, _end, args=(after,))
    timer.daemon = True
    timer.start()


def _end(after: float) -> None:
    log.warning(
        "stop_forced",
        limit_secs=after,
        reason="the stop took longer than its limit: what was not committed is read"
        " again from the sources' checkpoints, as after kill -9",
    )
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
