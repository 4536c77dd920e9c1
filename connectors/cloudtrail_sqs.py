"""CloudTrail log files announced by S3 event notifications on an SQS queue.

Each message names one or more new objects; they are read, their events
committed, and only then is the message deleted (see ``connectors.sqsqueue``).
Several daemons can share one queue: SQS hands each message to one of them,
and the rare repeat (a consumer dying before its delete) is recognized by
event id.  Digest files and S3's test event are deleted unread.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from pydantic import Field

from connectors.aws import AwsAccess, AwsAccessConfig, AwsSource
from connectors.aws_checks import Probe
from connectors.base import Emit, NormalizationError, PermanentError, RawBatch
from connectors.cloudtrail_keys import is_log_file
from connectors.config import CloudtrailSourceConfig
from connectors.s3notify import ObjectRef, announced_objects
from connectors.s3objects import read_object
from connectors.sqsqueue import RECEIVERS, Message, QueueReader, SqsQueueConfig, queue_probe

FETCHES = 16
"""Objects read at once, each held until the pipeline takes it: the bound on the
source's memory (``FETCHES`` x ``max_object_bytes``), and enough reads under way
that small objects arrive as fast as S3 serves them."""


class CloudtrailSqsConfig(CloudtrailSourceConfig, SqsQueueConfig, AwsAccessConfig):
    type: Literal["cloudtrail_sqs"] = "cloudtrail_sqs"
    max_object_bytes: int = Field(default=256 * 1024 * 1024, gt=0)
    """Larger objects are quarantined unread."""


class CloudtrailSqsSource(AwsSource):
    config_model = CloudtrailSqsConfig
    config: CloudtrailSqsConfig

    def threads(self) -> int:
        # The reads, plus the receives, deletes and visibility extensions beside them.
        return FETCHES + RECEIVERS + 4

    async def open(self) -> None:
        self._reader = QueueReader(self.config, self.aws, self.call, self.context.source_id)
        self._s3: Any = await self.call(self.aws.client, "s3")
        self._fetches = asyncio.Semaphore(FETCHES)

    def probes(self, access: AwsAccess) -> list[Probe]:
        # The buckets are known only from the messages, which doctor does not receive.
        return [queue_probe(access, self.config)]

    async def run(self, emit: Emit) -> None:
        async def handle(messages: list[Message]) -> list[asyncio.Future[None]]:
            found = await asyncio.gather(*(self._emit_message(m, emit) for m in messages))
            return [committed for futures in found for committed in futures]

        await self._reader.run(handle, until_empty=self.context.mode == "backfill")

    async def _emit_message(self, message: Message, emit: Emit) -> list[asyncio.Future[None]]:
        """Emit what one message holds: its log files, or the reason it is bad."""
        origin = f"{self.config.queue_url}#{message.get('MessageId', '?')}"
        try:
            refs = announced_objects(message.get("Body", ""))
        except NormalizationError as err:
            bad = RawBatch("cloudtrail", origin, b"", error=f"bad notification: {err.reason}")
            return [await emit(bad)]
        wanted = [ref for ref in refs if is_log_file(ref.key)]
        if len(wanted) < len(refs):
            self._reader.log.debug("objects_skipped", count=len(refs) - len(wanted))
        return list(await asyncio.gather(*(self._emit_object(ref, emit) for ref in wanted)))

    async def _emit_object(self, ref: ObjectRef, emit: Emit) -> asyncio.Future[None]:
        """Read one object and emit it at once: its slot is held until the pipeline took
        it, so the source holds at most ``FETCHES`` objects however many messages wait."""
        async with self._fetches:
            return await emit(await self._read(ref))

    async def _read(self, ref: ObjectRef) -> RawBatch:
        origin = f"s3://{ref.bucket}/{ref.key}"
        try:
            payload = await self.call(
                read_object, self._s3, ref.bucket, ref.key, max_bytes=self.config.max_object_bytes
            )
        except PermanentError as err:
            return RawBatch("cloudtrail", origin, b"", error=str(err))
        return RawBatch("cloudtrail", origin, payload)
