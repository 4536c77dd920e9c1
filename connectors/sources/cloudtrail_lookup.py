"""CloudTrail management events from the LookupEvents API (event history, 90 days).

For accounts without a trail bucket.  Each account/region is read on its own:
LookupEvents answers newest first, so the source reads a time slice completely
(paging with NextToken), then emits it oldest first.  A slice is the whole
stretch still to read, shorter when it holds more events than the source keeps
in memory.  The checkpoint of an account/region is the time it has read up to and
the eventIDs of the events at exactly that second, committed with the events.

Events can show in the event history a few minutes after later ones, so every
poll reads again from ``lookback_secs`` before the checkpoint; what was already
stored is recognized by its eventID.  LookupEvents allows 2 requests per second
per account and region: every call waits its turn, and throttling is retried
with exponential backoff and jitter (botocore's standard retry mode).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Literal

import structlog
from pydantic import Field, field_validator

from connectors.aws.access import AwsAccess, AwsAccessConfig
from connectors.aws.checks import Probe
from connectors.aws.source import AwsSource, Pacer
from connectors.base import JSON, Checkpoint, Emit
from connectors.cloudtrail.records import record_batches
from connectors.config import CloudtrailSourceConfig

log = structlog.get_logger()

HISTORY = timedelta(days=90)
"""How far back the event history goes."""
MAX_HELD = 20_000
"""Events of one slice held before a shorter slice is asked for (bounded memory)."""
BATCH = 500
ATTRIBUTES = {
    "EventId",
    "EventName",
    "ReadOnly",
    "Username",
    "ResourceType",
    "ResourceName",
    "EventSource",
    "AccessKeyId",
}


class CloudtrailLookupConfig(CloudtrailSourceConfig, AwsAccessConfig):
    type: Literal["cloudtrail_lookup"] = "cloudtrail_lookup"
    accounts: list[str] = Field(default_factory=list)
    """Account ids to read (with ``account_roles``); default: those of ``account_roles``,
    or the credentials' own account."""
    regions: list[str] = Field(default_factory=list)
    """Regions to read; default: ``region`` (or the environment's)."""
    start: datetime | None = None
    """First run: read events from this time on (at most 90 days back); default: an hour ago."""
    poll_interval_secs: float = Field(default=60.0, gt=0, le=3600)
    lookback_secs: int = Field(default=300, ge=0, le=86400)
    """Each poll reads again this far before the checkpoint (events that show up late)."""
    lookup_attributes: dict[str, str] = Field(default_factory=dict, max_length=1)
    """One filter LookupEvents applies, e.g. ``{EventSource = "iam.amazonaws.com"}``."""
    max_requests_per_sec: float = Field(default=2.0, gt=0, le=2)
    """Pace of LookupEvents calls per account and region; the API allows 2 per second."""

    @field_validator("start")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return value.replace(tzinfo=UTC) if value and value.tzinfo is None else value

    @field_validator("accounts")
    @classmethod
    def _check_accounts(cls, value: list[str]) -> list[str]:
        for account in value:
            if not (len(account) == 12 and account.isdigit()):
                raise ValueError(f"{account!r} is not a 12-digit account id")
        return value

    @field_validator("lookup_attributes")
    @classmethod
    def _check_attributes(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if key not in ATTRIBUTES:
                raise ValueError(f"{key!r} is not one of {', '.join(sorted(ATTRIBUTES))}")
        return value


@dataclass
class Cursor:
    """How far one account/region got: every event before ``time`` was emitted, and
    at ``time`` exactly those in ``ids`` (the checkpoint).  ``recent`` remembers, in
    memory only, what was emitted within the lookback, so a poll does not send it again."""

    key: str
    time: datetime
    ids: set[str] = field(default_factory=set)
    resumed: bool = False
    """Read before (a checkpoint or an earlier poll): the next poll looks back."""
    recent: dict[str, datetime] = field(default_factory=dict)

    @classmethod
    def load(cls, key: str, value: JSON) -> Cursor | None:
        if "time" not in value:
            return None
        at = datetime.fromisoformat(value["time"])
        return cls(key, at, set(value.get("ids", [])), resumed=True)

    def seen(self, at: datetime, event_id: str) -> bool:
        return event_id in self.recent or (at == self.time and event_id in self.ids)

    def advance(self, at: datetime, event_id: str = "") -> None:
        """Past the event ``event_id`` at ``at`` (or, without an id, up to ``at``)."""
        if at > self.time:
            self.time, self.ids = at, set()
        if event_id:
            self.recent[event_id] = at
            if at == self.time:
                self.ids.add(event_id)

    def forget_before(self, moment: datetime) -> None:
        self.recent = {k: at for k, at in self.recent.items() if at >= moment}

    def checkpoint(self) -> Checkpoint:
        return Checkpoint(self.key, {"time": self.time.isoformat(), "ids": sorted(self.ids)})


@dataclass(frozen=True, slots=True)
class Scope:
    """One account/region: its client and its own pace."""

    key: str
    client: Any
    pacer: Pacer


class CloudtrailLookupSource(AwsSource):
    config_model = CloudtrailLookupConfig
    config: CloudtrailLookupConfig

    def threads(self) -> int:
        return 4

    async def open(self) -> None:
        rate = self.config.max_requests_per_sec
        clients = await self.call(self._clients, self.aws)
        self._scopes = [Scope(key, client, Pacer(rate)) for key, client in clients]

    def _clients(self, access: AwsAccess) -> list[tuple[str, Any]]:
        """A CloudTrail client per account/region read, by checkpoint key (blocking)."""
        config = self.config
        accounts: list[str | None] = list(config.accounts or config.account_roles) or [None]
        regions: list[str | None] = list(config.regions) or [config.region]
        found = []
        for account in accounts:
            for region in regions:
                client = access.client("cloudtrail", account=account, region=region)
                name = str(client.meta.region_name)
                found.append((f"{account}/{name}" if account else name, client))
        return found

    def probes(self, access: AwsAccess) -> list[Probe]:
        hint = 'the role needs cloudtrail:LookupEvents (Resource "*") in that account'
        return [
            Probe(f"cloudtrail:LookupEvents in {key}", partial(_newest, client), hint)
            for key, client in self._clients(access)
        ]

    @property
    def _ranged(self) -> bool:
        return self.context.since is not None or self.context.until is not None

    async def run(self, emit: Emit) -> None:
        cursors = {scope.key: self._cursor(scope.key) for scope in self._scopes}
        while True:
            async with asyncio.TaskGroup() as group:
                for scope in self._scopes:
                    group.create_task(self._poll(scope, cursors[scope.key], emit))
            if self.context.mode == "backfill":
                return
            await asyncio.sleep(self.config.poll_interval_secs)

    def _cursor(self, key: str) -> Cursor:
        now = datetime.now(UTC)
        saved = (
            None if self._ranged else Cursor.load(key, dict(self.context.checkpoints.get(key, {})))
        )
        if saved is not None:
            return saved
        first = self.context.since or self.config.start or now - timedelta(hours=1)
        return Cursor(key, _at(max(first, now - HISTORY)))

    async def _poll(self, scope: Scope, cursor: Cursor, emit: Emit) -> None:
        """Read from the cursor (less the lookback) up to now, slice by slice."""
        now = datetime.now(UTC)
        end = _at(min(self.context.until or now, now))
        low = cursor.time
        if cursor.resumed:
            low = max(low - timedelta(seconds=self.config.lookback_secs), _at(now - HISTORY))
        cursor.resumed = True
        cursor.forget_before(low)
        emitted = 0
        span = end - low
        while low <= end:
            high = min(low + span, end)
            events = await self._lookup(scope, low, high)
            if events is None:
                span = max(span / 4, timedelta(seconds=1))
                continue
            emitted += await self._emit_slice(scope, cursor, high, events, emit)
            if len(events) < MAX_HELD / 8:
                span *= 2
            low = high + timedelta(seconds=1)
        log.info("lookup_polled", scope=scope.key, count=emitted, until=end.isoformat())

    async def _lookup(
        self, scope: Scope, low: datetime, high: datetime
    ) -> list[dict[str, Any]] | None:
        """Every event of ``[low, high]`` (both inclusive), newest first; None when
        there are more than ``MAX_HELD``: the caller asks for a shorter slice."""
        args: dict[str, Any] = {"StartTime": low, "EndTime": high, "MaxResults": 50}
        if self.config.lookup_attributes:
            args["LookupAttributes"] = [
                {"AttributeKey": k, "AttributeValue": v}
                for k, v in self.config.lookup_attributes.items()
            ]
        events: list[dict[str, Any]] = []
        while True:
            await scope.pacer.wait()
            page = await self.call(scope.client.lookup_events, **args)
            events += page.get("Events", [])
            token = page.get("NextToken")
            if not token:
                return events
            if len(events) > MAX_HELD and high > low:
                return None
            args["NextToken"] = token

    async def _emit_slice(
        self,
        scope: Scope,
        cursor: Cursor,
        high: datetime,
        events: list[dict[str, Any]],
        emit: Emit,
    ) -> int:
        """The slice's new events oldest first, in batches, each with the cursor after it.

        The end of the slice moves the cursor in memory only: after a restart
        the next poll asks for the quiet stretch since the last event in one call.
        """
        fresh = [
            e
            for e in reversed(events)
            if not cursor.seen(_at(e["EventTime"]), str(e.get("EventId", "")))
        ]
        origin = f"cloudtrail:LookupEvents/{scope.key}"
        count = 0
        for start in range(0, len(fresh), BATCH):
            chunk = fresh[start : start + BATCH]
            for event in chunk:
                cursor.advance(_at(event["EventTime"]), str(event.get("EventId", "")))
            checkpoints = [] if self._ranged else [cursor.checkpoint()]
            messages = (
                (str(e.get("EventId", "?")), str(e.get("CloudTrailEvent", ""))) for e in chunk
            )
            for batch in record_batches(origin, messages, checkpoints, what="CloudTrailEvent"):
                await emit(batch)
            count += len(chunk)
        cursor.advance(high)
        return count


def _newest(client: Any) -> str:
    """One LookupEvents call: the newest event in the history, for ``auditcorr doctor``."""
    events = client.lookup_events(MaxResults=1).get("Events", [])
    if not events:
        return "no events in the history"
    return f"newest event {_at(events[0]['EventTime']):%Y-%m-%d %H:%M:%S}Z"


def _at(value: datetime) -> datetime:
    """An event time as the cursor keeps it: UTC, whole seconds."""
    return value.astimezone(UTC).replace(microsecond=0)
