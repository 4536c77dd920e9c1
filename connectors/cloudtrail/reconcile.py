"""Completeness by reconciliation: the files each digest lists against the files read.

CloudTrail's hourly digests are AWS's own manifest of every log file it
delivered.  A poller that lists the bucket can miss a file for good when it
lands later than the lookback window; comparing each new digest with the names
the source read finds such files, and the source fetches them, however old
their delivery.  A listed file that is not in the bucket either stays on a
retry list for a week from when it was first found missing (it may still
arrive, or it was deleted: the digest check reports that on its own); after
that it is given up, counted and logged, never dropped silently.

The counts per account/region live in the digest checkpoint, so
``auditcorr sources`` can read them from a stopped daemon's store and
``/metrics`` continues them across restarts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from connectors.base import JSON, Metric
from connectors.cloudtrail.keys import stamp, stamp_of

RETRY_FOR = timedelta(days=7)
"""How long a listed file missing from the bucket is looked for again, from when it was
first found missing."""


class Due(NamedTuple):
    """What a poll does with the missing keys."""

    fetch: list[str]
    """Still looked for."""
    given_up: list[str]
    """Missing for ``RETRY_FOR`` or longer: no longer looked for, from now on."""


@dataclass
class Reconciliation:
    """How the digests of one account/region compared with what the source read."""

    digests: int = 0
    """Digests checked."""
    listed: int = 0
    """Log files those digests list."""
    fetched: int = 0
    """Listed files the source had not read, fetched afterwards."""
    missing: dict[str, datetime] = field(default_factory=dict)
    """Keys of listed files neither read nor found in the bucket yet, with when each was
    first found missing."""
    given_up: int = 0
    """Listed files no longer looked for after ``RETRY_FOR``."""

    @classmethod
    def from_json(cls, value: JSON | None, now: datetime) -> Reconciliation:
        """The counts from a digest checkpoint; keys saved without the time they were first
        found missing (a plain list, before that was kept) count as missing since ``now``."""
        value = value or {}
        missing = {}
        for entry in value.get("missing", []):
            if isinstance(entry, str):
                missing[entry] = now
            else:
                missing[str(entry["key"])] = datetime.fromisoformat(entry["since"])
        return cls(
            int(value.get("digests", 0)),
            int(value.get("listed", 0)),
            int(value.get("fetched", 0)),
            missing,
            int(value.get("given_up", 0)),
        )

    def as_json(self) -> JSON:
        return {
            "digests": self.digests,
            "listed": self.listed,
            "fetched": self.fetched,
            "missing": [
                {"key": key, "since": _iso(self.missing[key])} for key in sorted(self.missing)
            ],
            "given_up": self.given_up,
        }

    def add_listed(self, digests: int, listed: list[str], unread: list[str], now: datetime) -> None:
        """Count a digest check; ``unread`` are its files the source never read, found
        missing at ``now`` unless they already were."""
        self.digests += digests
        self.listed += len(listed)
        for key in unread:
            self.missing.setdefault(key, now)

    def to_fetch(self, now: datetime) -> Due:
        """The missing keys first found missing less than ``RETRY_FOR`` before ``now``; the
        others are given up: taken off the list and counted."""
        given_up = sorted(k for k, since in self.missing.items() if now - since >= RETRY_FOR)
        for key in given_up:
            del self.missing[key]
        self.given_up += len(given_up)
        return Due(sorted(self.missing), given_up)

    def found(self, key: str) -> None:
        del self.missing[key]
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
            Metric(
                "cloudtrail_files_given_up_total",
                self.given_up,
                labels,
                "Listed log files given up after a week missing from the bucket",
            ),
        ]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


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
