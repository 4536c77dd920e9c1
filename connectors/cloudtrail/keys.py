"""The key layout CloudTrail delivers to S3, shared by the file and S3 sources.

``[PREFIX/]AWSLogs/[o-ORG/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/
ACCOUNT_CloudTrail_REGION_YYYYMMDDTHHMMZ_RANDOM.json.gz``; digests live beside
it under ``CloudTrail-Digest``.  The stamp in a file name is its delivery
time, so names sort in delivery order within a day folder, while a late file
can still show up after later-named ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

_DAY = re.compile(r"/(\d{4})/(\d{2})/(\d{2})/")
_STAMP = re.compile(r"_(\d{8}T\d{4}Z)_")
_LAYOUT = re.compile(
    r"AWSLogs/(?:(?P<org>o-[a-z0-9]{10,32})/)?(?P<account>\d{12})/(?P<kind>CloudTrail(?:-Digest)?)/"
    r"(?P<region>[a-z0-9-]+)/(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/(?P<name>[^/]+)$"
)
SUFFIXES = (".json.gz", ".json")
DIGEST = "CloudTrail-Digest"
STAMP_FORMAT = "%Y%m%dT%H%MZ"


@dataclass(frozen=True, slots=True)
class TrailKey:
    """What a delivered object's key says about it."""

    account: str
    region: str
    day: date
    name: str
    digest: bool
    organization: str | None

    @property
    def stream(self) -> str:
        """The account/region pair this key belongs to."""
        return f"{self.account}/{self.region}"


def parse_key(key: str) -> TrailKey | None:
    """The parts of a CloudTrail log or digest key; None for keys of another shape."""
    found = _LAYOUT.search(key)
    if found is None:
        return None
    try:
        day = date(int(found["y"]), int(found["m"]), int(found["d"]))
    except ValueError:
        return None
    return TrailKey(
        found["account"],
        found["region"],
        day,
        found["name"],
        found["kind"] == DIGEST,
        found["org"],
    )


def is_log_file(key: str) -> bool:
    """A CloudTrail log file's key (not a digest, not a folder marker)."""
    return key.endswith(SUFFIXES) and DIGEST not in key


def stamp_of(name: str) -> str | None:
    """The ``YYYYMMDDTHHMMZ`` delivery stamp in a file name, if it has one."""
    found = _STAMP.search(name)
    return found[1] if found else None


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(STAMP_FORMAT)


def parse_stamp(text: str) -> datetime:
    return datetime.strptime(text, STAMP_FORMAT).replace(tzinfo=UTC)


def day_of(path: str) -> date | None:
    """The ``YYYY/MM/DD`` folder of ``path`` (``/``-separated), if it has one."""
    found = _DAY.search("/" + path)
    if found is None:
        return None
    try:
        return date(int(found[1]), int(found[2]), int(found[3]))
    except ValueError:
        return None


def day_range(since: datetime | None, until: datetime | None) -> tuple[date, date] | None:
    """Day folders that can hold events of ``[since, until]``; None when unbounded.

    A file's folder is its delivery day; its events may be a little older.
    """
    if since is None and until is None:
        return None
    low = (since - timedelta(days=1)).date() if since else date.min
    high = (until + timedelta(days=1)).date() if until else date.max
    return low, high
