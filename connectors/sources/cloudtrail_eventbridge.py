"""CloudTrail events in real time: EventBridge rule -> SQS queue -> timeline.

An EventBridge rule on "AWS API Call via CloudTrail" (and the sign-in and
service event types) delivers each event seconds after the call, while S3
delivery takes 5-15 minutes.  The event's ``detail`` is the CloudTrail record
itself, so the records of one receive go to the CloudTrail normalizer as one
``{"Records": [...]}`` payload; the same event arriving later from S3 has the
same ``eventID`` and is not stored again.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

import orjson

from connectors.aws.access import AwsAccess, AwsAccessConfig
from connectors.aws.checks import Probe
from connectors.aws.source import AwsSource
from connectors.aws.sqsqueue import Message, QueueReader, SqsQueueConfig, queue_probe
from connectors.base import Emit, RawBatch
from connectors.config import CloudtrailSourceConfig

CLOUDTRAIL_SUFFIX = "via CloudTrail"
"""Ends every CloudTrail detail-type: "AWS API Call via CloudTrail", "AWS Console
Sign In via CloudTrail", "AWS Service Event via CloudTrail", ..."""


class CloudtrailEventbridgeConfig(CloudtrailSourceConfig, SqsQueueConfig, AwsAccessConfig):
    type: Literal["cloudtrail_eventbridge"] = "cloudtrail_eventbridge"


class CloudtrailEventbridgeSource(AwsSource):
    config_model = CloudtrailEventbridgeConfig
    config: CloudtrailEventbridgeConfig

    async def open(self) -> None:
        self._reader = QueueReader(self.config, self.aws, self.call)

    def probes(self, access: AwsAccess) -> list[Probe]:
        return [queue_probe(access, self.config)]

    async def run(self, emit: Emit) -> None:
        async def handle(messages: list[Message]) -> list[asyncio.Future[None]]:
            return [await emit(batch) for batch in self._batches(messages)]

        await self._reader.run(handle, until_empty=self.context.mode == "backfill")

    def _batches(self, messages: list[Message]) -> list[RawBatch]:
        """The CloudTrail records of ``messages`` as one payload; unreadable bodies apart."""
        records: list[Any] = []
        batches: list[RawBatch] = []
        skipped = 0
        for message in messages:
            origin = f"{self.config.queue_url}#{message.get('MessageId', '?')}"
            body = message.get("Body", "")
            try:
                event = orjson.loads(body)
            except orjson.JSONDecodeError as err:
                reason = f"message is not JSON: {err}"
                batches.append(RawBatch("cloudtrail", origin, body.encode(), error=reason))
                continue
            kind = event.get("detail-type", "") if isinstance(event, dict) else ""
            if isinstance(kind, str) and kind.endswith(CLOUDTRAIL_SUFFIX):
                records.append(event.get("detail"))
            else:
                skipped += 1
        if skipped:
            self._reader.log.info(
                "messages_skipped", count=skipped, reason="not a CloudTrail event"
            )
        if records:
            first = messages[0].get("MessageId", "?")
            origin = f"{self.config.queue_url}#{first}+{len(messages) - 1}"
            batches.append(RawBatch("cloudtrail", origin, orjson.dumps({"Records": records})))
        return batches
