"""The timeline entries of alerts: rows stored beside the alerts in one transaction.

The correlator makes them (``daemon/correlator/entries.py``, see
``daemon/normalize/alert.py`` for what an entry is and its id); the store
compresses and places them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Final

from daemon.store import writing
from daemon.store.keys import key_minute
from daemon.store.units import Entry

LOG_TYPE: Final = "alert"
SOURCE: Final = "rules"
"""The source name alert entries are stored under (``--source rules`` finds them)."""


def place(
    entries: Sequence[Entry],
    codec: int,
    compress: Callable[[bytes], bytes],
    eid_at: Callable[[int], int | None],
    insert: Callable[[int, Entry], None],
) -> Counter[tuple[int, str]]:
    """Store alert entries (uncompressed) inside the caller's write; minute counts of
    those new.

    An entry already stored (the same alert at the same count) is left alone,
    so storing an update twice adds nothing twice.
    """
    minutes: Counter[tuple[int, str]] = Counter()
    for source, (key, eid, _, doc), text, log_type in entries:
        entry = (source, (key, eid, codec, compress(doc)), text, log_type)
        placed = writing.probe(entry, eid_at, insert)
        if placed is not None:
            minutes[key_minute(placed), log_type] += 1
    return minutes
