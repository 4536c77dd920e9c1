"""SQS messages in the shapes S3, SNS, CloudTrail and EventBridge send."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote_plus

import orjson


def new_queue(sqs: Any) -> str:
    return str(sqs.create_queue(QueueName=f"q-{uuid.uuid4().hex[:10]}")["QueueUrl"])


def s3_notification(bucket: str, key: str) -> str:
    return orjson.dumps(
        {
            "Records": [
                {
                    "eventVersion": "2.1",
                    "eventSource": "aws:s3",
                    "eventName": "ObjectCreated:Put",
                    "s3": {
                        "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                        "object": {"key": quote_plus(key, safe="/"), "size": 100},
                    },
                }
            ]
        }
    ).decode()


def sns_wrapped(message: str) -> str:
    return orjson.dumps(
        {
            "Type": "Notification",
            "MessageId": str(uuid.uuid4()),
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:trail-files",
            "Message": message,
        }
    ).decode()


def cloudtrail_sns(bucket: str, keys: list[str]) -> str:
    return orjson.dumps({"s3Bucket": bucket, "s3ObjectKey": keys}).decode()


S3_TEST_EVENT = orjson.dumps(
    {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b", "RequestId": "r"}
).decode()


def eventbridge_event(record: dict[str, Any]) -> str:
    return orjson.dumps(
        {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "AWS API Call via CloudTrail",
            "source": "aws." + record.get("eventSource", "iam.amazonaws.com").split(".")[0],
            "account": record.get("recipientAccountId", "111111111111"),
            "time": record["eventTime"],
            "region": record.get("awsRegion", "us-east-1"),
            "resources": [],
            "detail": record,
        }
    ).decode()


def send_all(sqs: Any, queue_url: str, bodies: list[str]) -> None:
    for start in range(0, len(bodies), 10):
        entries = [
            {"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies[start : start + 10])
        ]
        sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)


def queue_depth(sqs: Any, queue_url: str) -> int:
    """Messages visible plus in flight."""
    found = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(found["ApproximateNumberOfMessages"]) + int(
        found["ApproximateNumberOfMessagesNotVisible"]
    )
