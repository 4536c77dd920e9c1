"""CloudTrail log files straight from the trail's S3 bucket.

Lists ``AWSLogs/[o-ORG/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/`` per account and
region (both discovered from the bucket when not configured) and reads new
objects with bounded parallelism, in delivery order.

CloudTrail files can appear minutes after later-named ones, so a listing that
starts after the newest key read (StartAfter alone) would skip them for good.
Each account/region keeps a lookback window instead: every key whose delivery
stamp is within ``lookback_secs`` of the newest one read is listed again, and
the names already read in that window are part of the checkpoint, committed
with the events of each file.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import orjson
import structlog
from pydantic import Field

from connectors.aws.access import AwsAccess, AwsAccessConfig
from connectors.aws.checks import Probe
from connectors.aws.s3objects import ObjectGoneError, list_folders, list_keys, read_object
from connectors.aws.source import AwsSource
from connectors.base import Checkpoint, Emit, Metric, PermanentError, RawBatch
from connectors.cloudtrail.digests import (
    ChainState,
    DigestCheck,
    DigestChecker,
    FileResult,
    PublicKeys,
    integrity_event,
)
from connectors.cloudtrail.keys import (
    day_range,
    is_log_file,
    parse_stamp,
    stamp,
    stamp_of,
)
from connectors.cloudtrail.reconcile import RETRY_FOR, Reconciliation, settled_before, unread
from connectors.config import CloudtrailSourceConfig, ExistingFile

log = structlog.get_logger()

TRACKED_SPAN = timedelta(days=1)
"""Names read are kept for reconciliation at most this long (when digests stop coming)."""
DIGEST_KEY = "digest:"
"""Prefix of the digest checkpoints' keys: ``digest:ACCOUNT/REGION``."""


class CloudtrailS3Config(CloudtrailSourceConfig, AwsAccessConfig):
    type: Literal["cloudtrail_s3"] = "cloudtrail_s3"
    bucket: str = Field(min_length=3, max_length=63)
    """The trail's bucket."""
    prefix: str = ""
    """The trail's S3 key prefix (the part before ``AWSLogs/``), if it has one."""
    organization_id: str | None = Field(default=None, pattern=r"^o-[a-z0-9]{10,32}$")
    """Read only this organization's folder; default: every ``o-...`` folder found."""
    accounts: list[str] = Field(default_factory=list)
    """Read only these account ids; default: every account found in the bucket."""
    regions: list[str] = Field(default_factory=list)
    """Read only these regions; default: every region found per account."""
    poll_interval_secs: float = Field(default=60.0, gt=0, le=3600)
    start: datetime | None = None
    """First run: read files delivered from this time on; default: everything."""
    lookback_secs: int = Field(default=3600, ge=0, le=7 * 86400)
    """Keys delivered this long before the newest one read are listed again (late files)."""
    max_parallel_gets: int = Field(default=16, ge=1, le=64)
    max_object_bytes: int = Field(default=256 * 1024 * 1024, gt=0)
    """Larger objects are quarantined unread."""
    verify_digests: bool = False
    """Also verify each new digest file; failures become integrity events."""
    digest_public_keys: list[ExistingFile] = Field(default_factory=list)
    """PEM public keys to verify digests with instead of CloudTrail's ListPublicKeys."""


@dataclass
class Stream:
    """Where one account/region got to: the newest stamp and the names read near it."""

    account: str
    region: str
    folder: str
    """``.../AWSLogs/[o-ORG/]ACCOUNT/CloudTrail/REGION/``"""
    high: str | None = None
    recent: set[str] = field(default_factory=set)
    read: set[str] | None = None
    """With ``verify_digests``: names read that no checked digest listed yet."""
    tracked: str = ""
    """The delivery stamp from which ``read`` holds every name read."""

    @property
    def key(self) -> str:
        return f"{self.account}/{self.region}"

    def load(self, value: dict[str, Any]) -> None:
        self.high = value.get("high")
        self.recent = set(value.get("recent", []))
        if "read" in value:
            self.read, self.tracked = set(value["read"]), str(value.get("tracked", ""))

    def track(self, start: datetime, lookback: timedelta) -> None:
        """Keep the names read from now on (from ``start`` on the first run), for the
        digests to be compared with."""
        if self.read is not None:
            return
        self.read = set(self.recent)
        self.tracked = stamp(self.floor(lookback) or start)

    def settle(self, before: str) -> None:
        """Forget the names delivered before ``before``: no digest still to come lists them."""
        if self.read is not None:
            self.tracked = max(self.tracked, before)
            self.read = {n for n in self.read if (stamp_of(n) or "") >= self.tracked}

    def floor(self, lookback: timedelta) -> datetime | None:
        return parse_stamp(self.high) - lookback if self.high else None

    def mark(self, name: str, lookback: timedelta) -> Checkpoint:
        """Record ``name`` as read; the checkpoint to commit with its events."""
        found = stamp_of(name)
        if found and (self.high is None or found > self.high):
            self.high = found
        self.recent.add(name)
        if self.high:
            low = stamp(parse_stamp(self.high) - lookback)
            self.recent = {n for n in self.recent if (stamp_of(n) or self.high) >= low}
        value: dict[str, Any] = {"high": self.high, "recent": sorted(self.recent)}
        if self.read is not None:
            if self.high:
                self.settle(stamp(parse_stamp(self.high) - TRACKED_SPAN))
            if (found or "") >= self.tracked:
                self.read.add(name)
            value |= {"read": sorted(self.read), "tracked": self.tracked}
        return Checkpoint(self.key, value)


@dataclass(frozen=True, slots=True)
class Pending:
    stream: Stream
    key: str
    name: str
    order: str


class CloudtrailS3Source(AwsSource):
    config_model = CloudtrailS3Config
    config: CloudtrailS3Config

    def threads(self) -> int:
        return self.config.max_parallel_gets + 1

    async def open(self) -> None:
        self._s3: Any = await self.call(self.aws.client, "s3")
        self._streams: dict[str, Stream] = {}
        self._log = log.bind(bucket=self.config.bucket)
        self._chains: dict[str, ChainState] = {}
        self.results: list[FileResult] = []
        """Every digest check result of this run (``auditcorr verify-digests`` prints them)."""
        self._reconciled: dict[str, Reconciliation] = {}
        if self._reconciling:
            now = datetime.now(UTC)
            for key, value in self.context.checkpoints.items():
                if key.startswith(DIGEST_KEY) and "reconciliation" in value:
                    saved = Reconciliation.from_json(value["reconciliation"], now)
                    self._reconciled[key.removeprefix(DIGEST_KEY)] = saved

    @property
    def _reconciling(self) -> bool:
        """Digests are compared with the files read: the continuous check."""
        return self.config.verify_digests and not self._ranged

    def metrics(self) -> list[Metric]:
        return [
            metric
            for key, counts in sorted(self._reconciled.items())
            for metric in counts.metrics(*key.split("/", 1))
        ]

    @property
    def _ranged(self) -> bool:
        return self.context.since is not None or self.context.until is not None

    async def run(self, emit: Emit) -> None:
        lookback = timedelta(seconds=self.config.lookback_secs)
        while True:
            for stream in await self.call(self._discover, self._s3):
                if stream.key not in self._streams:
                    if not self._ranged:
                        stream.load(dict(self.context.checkpoints.get(stream.key, {})))
                    if self._reconciling:
                        stream.track(self._digests_from(datetime.now(UTC)), lookback)
                    self._streams[stream.key] = stream
            found = await self.call(self._listing, list(self._streams.values()), lookback)
            if found:
                self._log.info("s3_objects_found", count=len(found))
            async for item, payload in self._read_all(found):
                await self._emit_file(item.stream, item.key, payload, emit)
            if self.config.verify_digests:
                await self.verify_digests(emit)
            if self.context.mode == "backfill":
                return
            await asyncio.sleep(self.config.poll_interval_secs)

    def _digests_from(self, now: datetime) -> datetime:
        """Where the first digest check starts."""
        return self.config.start or now - timedelta(hours=2)

    async def _emit_file(
        self, stream: Stream, key: str, payload: bytes | PermanentError, emit: Emit
    ) -> None:
        """One log file's payload, with the checkpoint that marks it read."""
        lookback = timedelta(seconds=self.config.lookback_secs)
        name = key.rpartition("/")[2]
        checkpoints = [] if self._ranged else [stream.mark(name, lookback)]
        origin = f"s3://{self.config.bucket}/{key}"
        if isinstance(payload, PermanentError):
            batch = RawBatch("cloudtrail", origin, b"", checkpoints, error=str(payload))
        else:
            batch = RawBatch("cloudtrail", origin, payload, checkpoints)
        await emit(batch)

    async def verify_digests(self, emit: Emit) -> None:
        """Check the digests delivered since the last check; failures go on the timeline.

        In a ranged backfill, the digests that end within the range; otherwise
        those after the last one verified (checkpoint ``digest:ACCOUNT/REGION``),
        starting at ``start`` or two hours back on the first run.  In the
        continuous check, the files the new digests list are then reconciled with
        the files read.
        """
        checker = await self.call(self._checker)
        now = datetime.now(UTC)
        for stream in await self.call(self._discover, self._s3):
            name = f"{DIGEST_KEY}{stream.key}"
            chain = self._chains.get(name)
            if chain is None:
                saved = {} if self._ranged else self.context.checkpoints.get(name, {})
                chain = ChainState(saved.get("key"), saved.get("signature"), saved.get("end"))
                self._chains[name] = chain
            if self._ranged:
                low = self.context.since or datetime.min.replace(tzinfo=UTC)
                high = self.context.until or now
            else:
                first = self._digests_from(now)
                low = (_parse(chain.end) + timedelta(seconds=1)) if chain.end else first
                high = now
            check = await self.call(
                checker.check,
                account=stream.account,
                region=stream.region,
                logs_folder=stream.folder,
                since=low,
                until=high,
                chain=chain,
            )
            after = self._chains[name] = check.chain
            self.results += check.results
            failed = [r for r in check.results if r.failed]
            self._log.info(
                "digests_verified",
                stream=stream.key,
                files=len(check.results),
                failed=len(failed),
            )
            value: dict[str, Any] = after.__dict__.copy()
            counted = self._streams.get(stream.key)
            if self._reconciling and counted is not None:
                counts = self._reconciled.setdefault(stream.key, Reconciliation())
                before = counts.as_json()
                await self._reconcile(counted, check, counts, emit)
                value["reconciliation"] = counts.as_json()
                changed = value["reconciliation"] != before
            else:
                changed = False
            checkpoints = [] if self._ranged else [Checkpoint(name, value)]
            if failed or (checkpoints and (after.end != chain.end or changed)):
                payload = orjson.dumps([integrity_event(r) for r in failed])
                origin = f"s3://{self.config.bucket}/{stream.folder}"
                await emit(RawBatch("ecs", origin, payload, checkpoints))

    async def _reconcile(
        self, stream: Stream, check: DigestCheck, counts: Reconciliation, emit: Emit
    ) -> None:
        """Fetch the files ``check``'s digests list that the source did not read."""
        assert stream.read is not None
        now = datetime.now(UTC)
        counts.add_listed(
            check.digests, check.listed, unread(check.listed, stream.read, stream.tracked), now
        )
        due = counts.to_fetch(now)
        if due.given_up:
            self._log.warning(
                "missing_files_given_up",
                stream=stream.key,
                count=len(due.given_up),
                keys=due.given_up,
                reason=f"listed by a digest, not in the bucket for {RETRY_FOR.days} days",
            )
        fetched = 0
        for key in due.fetch:
            try:
                payload: bytes | PermanentError = await self.call(
                    read_object,
                    self._s3,
                    self.config.bucket,
                    key,
                    max_bytes=self.config.max_object_bytes,
                )
            except ObjectGoneError:
                continue
            except PermanentError as err:
                payload = err
            counts.found(key)
            fetched += 1
            await self._emit_file(stream, key, payload, emit)
        if check.chain.end:
            stream.settle(settled_before(_parse(check.chain.end)))
        self._log.info(
            "digests_reconciled",
            stream=stream.key,
            digests=check.digests,
            listed=len(check.listed),
            fetched=fetched,
            missing=len(counts.missing),
        )

    def probes(self, access: AwsAccess) -> list[Probe]:
        s3, bucket = access.client("s3"), self.config.bucket
        root = f"{self.config.prefix.strip('/')}/AWSLogs/".lstrip("/")

        def listing() -> str:
            page = s3.list_objects_v2(Bucket=bucket, Prefix=root, MaxKeys=1)
            return f"s3://{bucket}/{root}: {'not empty' if page.get('KeyCount') else 'empty'}"

        def reading() -> str:
            for stream in self._discover(s3):
                entry = next(iter(list_keys(s3, bucket, stream.folder)), None)
                if entry is not None:
                    key = str(entry["Key"])
                    size = len(read_object(s3, bucket, key, max_bytes=self.config.max_object_bytes))
                    return f"read s3://{bucket}/{key} ({size} bytes)"
            return "no log file to read yet"

        probes = [
            Probe(
                f"s3:ListBucket on {bucket}/{root}",
                listing,
                f"the role needs s3:ListBucket on arn:aws:s3:::{bucket} (docs/aws.md)",
            ),
            Probe(
                f"s3:GetObject on {bucket}",
                reading,
                f"the role needs s3:GetObject on arn:aws:s3:::{bucket}/{root}* (docs/aws.md)",
            ),
        ]
        if self.config.verify_digests and not self.config.digest_public_keys:
            cloudtrail = access.client("cloudtrail")

            def keys() -> str:
                now = datetime.now(UTC)
                found = cloudtrail.list_public_keys(StartTime=now - timedelta(days=1), EndTime=now)
                return f"{len(found.get('PublicKeyList', []))} public keys"

            hint = 'the role needs cloudtrail:ListPublicKeys (Resource "*") to verify digests'
            probes.append(Probe("cloudtrail:ListPublicKeys", keys, hint))
        return probes

    def _checker(self) -> DigestChecker:
        files = self.config.digest_public_keys
        cloudtrail = None if files else self.aws.client("cloudtrail")
        return DigestChecker(self._s3, self.config.bucket, PublicKeys(cloudtrail, files))

    async def _read_all(
        self, found: list[Pending]
    ) -> AsyncIterator[tuple[Pending, bytes | PermanentError]]:
        """Objects in order, at most ``max_parallel_gets`` read ahead (bounded memory)."""
        window: collections.deque[tuple[Pending, asyncio.Future[bytes | PermanentError]]]
        window = collections.deque()
        items = iter(found)
        try:
            while True:
                while len(window) < self.config.max_parallel_gets:
                    item = next(items, None)
                    if item is None:
                        break
                    window.append((item, asyncio.ensure_future(self.call(self._get, item.key))))
                if not window:
                    return
                item, future = window.popleft()
                yield item, await future
        finally:
            for _, pending in window:
                pending.cancel()

    def _get(self, key: str) -> bytes | PermanentError:
        try:
            return read_object(
                self._s3, self.config.bucket, key, max_bytes=self.config.max_object_bytes
            )
        except PermanentError as err:
            return err

    # -- listing (worker threads) -------------------------------------------

    def _discover(self, s3: Any) -> list[Stream]:
        """Account/region folders of the bucket, narrowed by the config."""
        config = self.config
        root = f"{config.prefix.strip('/')}/AWSLogs/".lstrip("/")
        if config.organization_id:
            bases = [f"{root}{config.organization_id}/"]
        else:
            children = list_folders(s3, config.bucket, root)
            bases = [f"{root}{c}/" for c in children if c.startswith("o-")]
            if any(c.isdigit() for c in children):
                bases.append(root)
        streams: list[Stream] = []
        for base in bases:
            accounts = config.accounts or [
                a for a in list_folders(s3, config.bucket, base) if a.isdigit()
            ]
            for account in accounts:
                trail = f"{base}{account}/CloudTrail/"
                regions = config.regions or list_folders(s3, config.bucket, trail)
                streams += [Stream(account, r, f"{trail}{r}/") for r in regions]
        return streams

    def _listing(self, streams: Iterable[Stream], lookback: timedelta) -> list[Pending]:
        """Log files not read yet, in delivery order across every account/region."""
        days = day_range(self.context.since, self.context.until)
        found: list[Pending] = []
        for stream in streams:
            floor = None if self._ranged else stream.floor(lookback)
            if floor is None and not self._ranged and self.config.start is not None:
                floor = self.config.start
            low = days[0] if days else (floor.date() if floor else None)
            high = days[1] if days else None
            low_stamp = stamp(floor) if floor else ""
            for entry in self._keys(stream, low, high, low_stamp):
                key = str(entry["Key"])
                name = key.rpartition("/")[2]
                order = stamp_of(name) or ""
                if not is_log_file(key) or name in stream.recent or order < low_stamp:
                    continue
                found.append(Pending(stream, key, name, order))
        found.sort(key=lambda p: (p.order, p.key))
        return found

    def _keys(
        self, stream: Stream, low: date | None, high: date | None, low_stamp: str
    ) -> Iterable[dict[str, Any]]:
        """The stream's keys in the day folders ``low`` to ``high``, after ``low_stamp`` on
        the first day.  One listing (keys sort by day), not a call per day folder: a
        stream quiet since long ago would otherwise cost a call per day at every poll."""
        after = None
        if low is not None and low > date.min:
            after = f"{stream.folder}{low:%Y/%m/%d}"
            if low_stamp:
                after += f"/{stream.account}_CloudTrail_{stream.region}_{low_stamp}"
        end = None
        if high is not None and high < date.max:
            end = f"{stream.folder}{high + timedelta(days=1):%Y/%m/%d}/"
        for entry in list_keys(self._s3, self.config.bucket, stream.folder, start_after=after):
            if end is not None and str(entry["Key"]) >= end:
                return
            yield entry


class DigestCheckSource(CloudtrailS3Source):
    """Only the digest check of a ``cloudtrail_s3`` source, for ``auditcorr verify-digests``."""

    async def run(self, emit: Emit) -> None:
        await self.verify_digests(emit)


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
