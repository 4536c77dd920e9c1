"""The timeline entries of alerts: rows stored beside the alerts in one transaction.

The correlator makes them (``daemon/correlator/entries.py``, see
``daemon/normalize/alert.py`` for what an entry is and its id); the store
compresses and places them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Final

from daemon.store import placing
from daemon.store.keys import key_minute
from daemon.store.units import Entry

LOG_TYPE: Final = "alert"
SOURCE: Final = "rules"
"""The source name alert entries are stored under (``--source rules`` finds them)."""


def place(
    entries: Sequence[Entry],
    codec: int,
    compress: Callable[[bytes], bytes],
    access: placing.Access,
) -> Counter[tuple[int, str]]:
    """Store alert entries (uncompressed) inside the caller's write; minute counts of
    those new.

    An entry already stored (the same alert at the same count) is left alone,
    so storing an update twice adds nothing twice.
    """
    made = [
        (source, (key, eid, codec, compress(doc)), text, log_type)
        for source, (key, eid, _, doc), text, log_type in entries
    ]
    minutes: Counter[tuple[int, str]] = Counter()
    for entry, placed in zip(made, placing.place(made, access), strict=True):
        if placed is not None:
            minutes[key_minute(placed), entry[3]] += 1
    return minutes
