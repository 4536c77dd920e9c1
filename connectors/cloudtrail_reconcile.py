"""Completeness by reconciliation: the files each digest lists against the files read.

CloudTrail's hourly digests are AWS's own manifest of every log file it
delivered.  A poller that lists the bucket can miss a file for good when it
lands later than the lookback window; comparing each new digest with the names
the source read finds such files, and the source fetches them.  A listed file
that is not in the bucket either stays on a retry list for a week (it may
still arrive, or it was deleted: the digest check reports that on its own).

The counts per account/region live in the digest checkpoint, so
``auditcorr sources`` can read them from a stopped daemon's store and
``/metrics`` continues them across restarts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from connectors.base import JSON, Metric
from connectors.cloudtrail_keys import stamp, stamp_of

RETRY_FOR = timedelta(days=7)
"""How long a listed file missing from the bucket is looked for again."""


@dataclass
class Reconciliation:
    """How the digests of one account/region compared with what the source read."""

    digests: int = 0
    """Digests checked."""
    listed: int = 0
    """Log files those digests list."""
    fetched: int = 0
    """Listed files the source had not read, fetched afterwards."""
    missing: list[str] = field(default_factory=list)
    """Keys of listed files neither read nor found in the bucket yet."""

    @classmethod
    def from_json(cls, value: JSON | None) -> Reconciliation:
        value = value or {}
        return cls(
            int(value.get("digests", 0)),
            int(value.get("listed", 0)),
            int(value.get("fetched", 0)),
            list(value.get("missing", [])),
        )

    def as_json(self) -> JSON:
        return {
            "digests": self.digests,
            "listed": self.listed,
            "fetched": self.fetched,
            "missing": sorted(self.missing),
        }

    def add_listed(self, digests: int, listed: list[str], unread: list[str]) -> None:
        """Count a digest check; ``unread`` are its files the source never read."""
        self.digests += digests
        self.listed += len(listed)
        self.missing = sorted(set(self.missing) | set(unread))

    def to_fetch(self, now: datetime) -> list[str]:
        """The missing keys still worth looking for; older ones are given up."""
        low = stamp(now - RETRY_FOR)
        self.missing = [k for k in self.missing if (stamp_of(k.rpartition("/")[2]) or "") >= low]
        return list(self.missing)

    def found(self, key: str) -> None:
        self.missing.remove(key)
        self.fetched += 1

    def metrics(self, account: str, region: str) -> list[Metric]:
        labels = {"account": account, "region": region}
        return [
            Metric(
                "cloudtrail_digests_checked_total",
                self.digests,
                labels,
                "CloudTrail digests checked against the files read",
            ),
            Metric(
                "cloudtrail_files_listed_total",
                self.listed,
                labels,
                "Log files the checked digests list",
            ),
            Metric(
                "cloudtrail_files_fetched_total",
                self.fetched,
                labels,
                "Listed log files the source had missed, fetched afterwards",
            ),
            Metric(
                "cloudtrail_files_missing",
                len(self.missing),
                labels,
                "Listed log files neither read nor found in the bucket",
                "gauge",
            ),
        ]


def unread(listed: list[str], read: set[str], tracked: str) -> list[str]:
    """Keys of ``listed`` whose names are not in ``read``, among those delivered since
    ``tracked`` (the stamp from which ``read`` is complete)."""
    found = []
    for key in listed:
        name = key.rpartition("/")[2]
        if name not in read and (stamp_of(name) or "") >= tracked:
            found.append(key)
    return found


def settled_before(end: datetime) -> str:
    """The stamp before which no later digest lists a file: a digest ends at ``end``,
    and a file named in the minute it ends may still be in the next one."""
    return stamp(end - timedelta(minutes=5))
