"""The change records a coverage query looks at."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

from connectors.changerecord import ChangeRecord, parse_record
from daemon.identity import IdentityMap


class ChangeBook:
    """Current versions of change records, with the identity map that says
    which person an implementer's name means.

    Build it from the store: ``ChangeBook.from_json(store.change_records(since=..., until=...),
    config.identity.identity_map())``.
    """

    def __init__(
        self, records: Iterable[ChangeRecord], identities: IdentityMap | None = None
    ) -> None:
        self.records = sorted(records, key=lambda r: (r.start, r.id))
        self.identities = identities or IdentityMap()

    @classmethod
    def from_json(
        cls, records: Iterable[dict[str, Any]], identities: IdentityMap | None = None
    ) -> ChangeBook:
        """From records in their JSON form (as the store returns them)."""
        return cls((parse_record(r) for r in records), identities)

    def __iter__(self) -> Iterator[ChangeRecord]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)

    def around(self, moment: datetime, horizon: timedelta) -> list[ChangeRecord]:
        """Records whose window comes within ``horizon`` of ``moment``."""
        return [r for r in self.records if r.start - horizon <= moment <= r.end + horizon]
