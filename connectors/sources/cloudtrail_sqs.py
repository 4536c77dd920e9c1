"""CloudTrail log files announced by S3 event notifications on an SQS queue.

Each message names one or more new objects; they are read, their events
committed, and only then is the message deleted (see ``connectors.aws.sqsqueue``).
Several daemons can share one queue: SQS hands each message to one of them,
and the rare repeat (a consumer dying before its delete) is recognized by
event id.  Digest files and S3's test event are deleted unread.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from pydantic import Field

from connectors.aws.access import AwsAccess, AwsAccessConfig
from connectors.aws.checks import Probe
from connectors.aws.s3notify import ObjectRef, announced_objects
from connectors.aws.s3objects import read_object
from connectors.aws.source import AwsSource
from connectors.aws.sqsqueue import Message, QueueReader, SqsQueueConfig, queue_probe
from connectors.base import Emit, NormalizationError, PermanentError, RawBatch
from connectors.cloudtrail.keys import is_log_file
from connectors.config import CloudtrailSourceConfig


class CloudtrailSqsConfig(CloudtrailSourceConfig, SqsQueueConfig, AwsAccessConfig):
    type: Literal["cloudtrail_sqs"] = "cloudtrail_sqs"
    max_object_bytes: int = Field(default=256 * 1024 * 1024, gt=0)
    """Larger objects are quarantined unread."""


class CloudtrailSqsSource(AwsSource):
    config_model = CloudtrailSqsConfig
    config: CloudtrailSqsConfig

    def threads(self) -> int:
        return 12

    async def open(self) -> None:
        self._reader = QueueReader(self.config, self.aws, self.call)
        self._s3: Any = await self.call(self.aws.client, "s3")

    def probes(self, access: AwsAccess) -> list[Probe]:
        # The buckets are known only from the messages, which doctor does not receive.
        return [queue_probe(access, self.config)]

    async def run(self, emit: Emit) -> None:
        async def handle(messages: list[Message]) -> list[asyncio.Future[None]]:
            batches = await asyncio.gather(*(self._batches(m) for m in messages))
            return [await emit(batch) for found in batches for batch in found]

        await self._reader.run(handle, until_empty=self.context.mode == "backfill")

    async def _batches(self, message: Message) -> list[RawBatch]:
        """What one message holds, as payloads: its log files, or the reason it is bad."""
        origin = f"{self.config.queue_url}#{message.get('MessageId', '?')}"
        try:
            refs = announced_objects(message.get("Body", ""))
        except NormalizationError as err:
            return [RawBatch("cloudtrail", origin, b"", error=f"bad notification: {err.reason}")]
        wanted = [ref for ref in refs if is_log_file(ref.key)]
        if len(wanted) < len(refs):
            self._reader.log.debug("objects_skipped", count=len(refs) - len(wanted))
        return list(await asyncio.gather(*(self._read(ref) for ref in wanted)))

    async def _read(self, ref: ObjectRef) -> RawBatch:
        origin = f"s3://{ref.bucket}/{ref.key}"
        try:
            payload = await self.call(
                read_object, self._s3, ref.bucket, ref.key, max_bytes=self.config.max_object_bytes
            )
        except PermanentError as err:
            return RawBatch("cloudtrail", origin, b"", error=str(err))
        return RawBatch("cloudtrail", origin, payload)
