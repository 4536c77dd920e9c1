"""Consuming an SQS queue so that a message is deleted only after its events are committed.

The queue is the checkpoint: a message that was received but not deleted
comes back after its visibility timeout, on this daemon or on another one
sharing the queue.  So a crash between reading and deleting loses nothing,
and the repeat it causes is recognized by event id in the store.  While a
message is being worked on (a large object being read, a busy store) its
visibility timeout is extended, so no other consumer takes it meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from pydantic import BaseModel, Field

from connectors.aws.access import AwsAccess
from connectors.aws.checks import Probe

log = structlog.get_logger()

IN_FLIGHT_RECEIVES = 4
"""Receives being worked on at once: the next receive need not wait for the store to
commit the previous one, while memory stays bounded to this many receives."""

Message = dict[str, Any]
Call = Callable[..., Awaitable[Any]]
"""Runs a boto3 call in the source's threads (``AwsSource.call``)."""
Handler = Callable[[list[Message]], Awaitable[list["asyncio.Future[None]"]]]
"""Emits what the messages hold; returns the futures that resolve on commit."""


class SqsQueueConfig(BaseModel):
    """Keys of every SQS-fed source (mixed into its config model)."""

    queue_url: str = Field(pattern=r"^https?://")
    """The queue's URL, as ``aws sqs get-queue-url`` prints it."""
    wait_time_secs: int = Field(default=20, ge=0, le=20)
    """Long polling: how long one ReceiveMessage waits for a message."""
    visibility_timeout_secs: int = Field(default=300, ge=2, le=43200)
    """How long a received message stays hidden from other consumers; extended while working."""
    max_messages: int = Field(default=10, ge=1, le=10)
    """Messages received at once (SQS allows at most 10)."""


class QueueReader:
    """Receives, hands messages to a handler, extends visibility, deletes after commit."""

    def __init__(self, config: SqsQueueConfig, access: AwsAccess, call: Call) -> None:
        self._config = config
        self._access = access
        self.call = call
        self._sqs: Any = None
        self.log = log.bind(queue=config.queue_url.rpartition("/")[2])

    async def run(self, handle: Handler, *, until_empty: bool) -> None:
        """Consume until cancelled, or (``until_empty``) until a receive finds nothing."""
        if self._sqs is None:
            self._sqs = await self.call(self._access.client, "sqs")
        config = self._config
        wait = min(config.wait_time_secs, 1) if until_empty else config.wait_time_secs
        slots = asyncio.Semaphore(IN_FLIGHT_RECEIVES)
        async with asyncio.TaskGroup() as group:
            while True:
                await slots.acquire()
                answer = await self.call(
                    self._sqs.receive_message,
                    QueueUrl=config.queue_url,
                    MaxNumberOfMessages=config.max_messages,
                    WaitTimeSeconds=wait,
                    VisibilityTimeout=config.visibility_timeout_secs,
                )
                messages: list[Message] = answer.get("Messages", [])
                if not messages:
                    slots.release()
                    if until_empty:
                        break  # what is in flight still finishes in the group
                    continue
                work = group.create_task(self._work(messages, handle))
                work.add_done_callback(lambda _: slots.release())

    async def _work(self, messages: list[Message], handle: Handler) -> None:
        keeper = asyncio.create_task(self._keep_invisible(messages))
        try:
            committed = await handle(messages)
            await asyncio.gather(*committed)
        finally:
            keeper.cancel()
        await self._delete(messages)

    async def _keep_invisible(self, messages: list[Message]) -> None:
        """Extend the visibility timeout at half its length until cancelled."""
        timeout = self._config.visibility_timeout_secs
        while True:
            await asyncio.sleep(timeout / 2)
            entries = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": timeout}
                for i, m in enumerate(messages)
            ]
            try:
                await self.call(
                    self._sqs.change_message_visibility_batch,
                    QueueUrl=self._config.queue_url,
                    Entries=entries,
                )
            except Exception as err:  # noqa: BLE001 - the work goes on; a repeat is harmless
                self.log.warning("visibility_extension_failed", error=str(err))
            else:
                self.log.debug("visibility_extended", count=len(messages), secs=timeout)

    async def _delete(self, messages: list[Message]) -> None:
        entries = [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
        ]
        answer = await self.call(
            self._sqs.delete_message_batch, QueueUrl=self._config.queue_url, Entries=entries
        )
        failed = answer.get("Failed", [])
        if failed:
            # Committed already: the message comes back and its events are duplicates.
            self.log.warning(
                "messages_not_deleted", count=len(failed), error=failed[0].get("Message")
            )


def queue_probe(access: AwsAccess, config: SqsQueueConfig) -> Probe:
    """``auditcorr doctor``: the queue is there and this role may look at it."""
    sqs = access.client("sqs")
    name = config.queue_url.rpartition("/")[2]

    def look() -> str:
        answer = sqs.get_queue_attributes(
            QueueUrl=config.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )
        waiting = answer.get("Attributes", {}).get("ApproximateNumberOfMessages", "?")
        return f"{name}: {waiting} messages waiting"

    hint = (
        "the role needs sqs:GetQueueAttributes, sqs:ReceiveMessage, sqs:DeleteMessage and"
        f" sqs:ChangeMessageVisibility on the queue {name} (docs/aws.md)"
    )
    return Probe(f"sqs:GetQueueAttributes on {name}", look, hint)
