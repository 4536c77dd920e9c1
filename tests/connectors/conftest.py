"""AWS connectors in the contract tests run against a moto server, never real AWS."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "aws"))

from motoserver import client, fake_aws_credentials, moto_endpoint

__all__ = ["fake_aws_credentials", "moto_endpoint"]

DOCS = Path(__file__).resolve().parents[2] / "docs" / "sources"


@pytest.fixture(autouse=True)
def aws_origin(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, fake_aws_credentials: None
) -> None:
    """For an AWS connector: point boto3 at moto and create the example's bucket, group or queue."""
    type_name = getattr(request.node, "callspec", None) and request.node.callspec.params.get(
        "type_name"
    )
    if not isinstance(type_name, str) or not type_name.startswith("cloudtrail_"):
        return
    if type_name == "cloudtrail_files":
        return
    endpoint = request.getfixturevalue("moto_endpoint")
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    page = (DOCS / f"{type_name}.md").read_text()
    for bucket in re.findall(r'^bucket = "([^"]+)"', page, re.M):
        client("s3", endpoint).create_bucket(Bucket=bucket)
    for group in re.findall(r'^log_group = "([^"]+)"', page, re.M):
        logs = client("logs", endpoint)
        if not logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]:
            logs.create_log_group(logGroupName=group)
    for url in re.findall(r'^queue_url = "([^"]+)"', page, re.M):
        client("sqs", endpoint).create_queue(QueueName=url.rpartition("/")[2])
