"""moto's server, with SQS queue attributes kept for a second as SQS's own are approximate.

    python bench/sqsmoto.py -H 127.0.0.1 -p PORT

moto (5.x) works out every attribute of a queue, three of them by a scan of
all its messages, for each message sent and each message received
(``SQSBackend.is_message_valid_based_on_retention_period`` and
``send_message`` read ``Queue.attributes``).  Each call then costs time in
proportion to the queue's depth: 94 ms for a batch of ten sent to a queue of 500,
332 ms to receive ten from 600, where SQS itself answers in a fixed time.  A
benchmark of a daemon catching up on a backlog would measure the mock.  The
counts SQS reports are approximate too (eventually consistent), so the
attributes are kept for up to a second.  Nothing else changes.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime
from typing import Any

from moto.core import utils
from moto.server import main
from moto.sqs import models
from moto.sqs.models import Queue

KEEP_SECS = 1.0
_attributes = Queue.attributes.fget


def _kept_attributes(queue: Queue) -> dict[str, Any]:
    now = time.monotonic()
    kept: tuple[float, dict[str, Any]] | None = queue.__dict__.get("_bench_attributes")
    if kept is None or now - kept[0] > KEEP_SECS:
        kept = queue.__dict__["_bench_attributes"] = (now, _attributes(queue))
    return dict(kept[1])


def _unix_time(dt: datetime | None = None) -> float:
    return time.time() if dt is None else utils.unix_time(dt)


def _unix_time_millis(dt: datetime | None = None) -> float:
    return _unix_time(dt) * 1000.0


Queue.attributes = property(_kept_attributes)  # type: ignore[assignment, method-assign]
models.unix_time = _unix_time
models.unix_time_millis = _unix_time_millis

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
