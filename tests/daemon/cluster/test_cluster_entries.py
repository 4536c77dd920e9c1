"""Feed entries: what a member's write hands the correlator survives the trip as JSON."""

from __future__ import annotations

from clustersupport import make_hit

from daemon.cluster import entries
from daemon.normalize import BookEntry
from daemon.process import Processed


def test_hits_and_change_records_come_back_as_they_went() -> None:
    """Hits (with and without change facts) and change records decode to equal objects."""
    record = BookEntry("CHG1", "r1", 2, 10, 0, 20, "approved", b'{"id": "CHG1"}')
    batch = Processed(
        "ct",
        "trail.json",
        hits=[make_hit("ct", 1), make_hit("ct", 2, change=True)],
        changes=[(7, record)],
    )
    encoded = entries.encode([batch, Processed("syslog", "auth.log", hits=[make_hit("s", 3)])])
    assert encoded is not None
    hits, changes = entries.decode(encoded)
    assert hits == [make_hit("ct", 1), make_hit("ct", 2, change=True), make_hit("s", 3)]
    assert changes == [{"id": "CHG1"}]


def test_a_write_with_nothing_to_correlate_has_no_entry() -> None:
    """Batches without hits or change records add no feed row."""
    assert entries.encode([Processed("syslog", "auth.log")]) is None
