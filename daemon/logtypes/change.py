"""Change records on the timeline: each version, and the opening and closing of an
approved window (``daemon/normalize/change.py``); kept in the store's change book."""

from __future__ import annotations

from daemon.logtypes import LogType
from daemon.normalize import change

LOG_TYPE = LogType(
    name="change",
    decode=change.decode,
    normalize=change.normalize,
    datasets=(change.DATASET,),
    lane="change",
    book_entry=change.book_entry,
)
