"""What connector docs examples need to start: secrets their ``env:`` references
name, an HTTP endpoint with nothing to read, and for AWS connectors a moto
server (never real AWS) holding the example's bucket or queue, or a LookupEvents
server."""

from __future__ import annotations

import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

sys.path.insert(0, str(Path(__file__).parent / "aws"))

from lookupserver import lookup_server
from motoserver import client, fake_aws_credentials, moto_endpoint

__all__ = ["fake_aws_credentials", "lookup_server", "moto_endpoint"]

DOCS = Path(__file__).resolve().parents[2] / "docs" / "sources"


@pytest.fixture(autouse=True)
def example_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDITCORR_CHANGES_TOKEN", "example-token")
    monkeypatch.setenv("SERVICENOW_PASSWORD", "example-password")


@pytest.fixture
async def empty_endpoint() -> AsyncIterator[str]:
    """A local HTTP server answering every GET with an empty result list."""

    async def empty(request: web.Request) -> web.Response:
        return web.json_response({"result": []})

    app = web.Application()
    app.router.add_get("/{tail:.*}", empty)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


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
    if type_name == "cloudtrail_lookup":  # moto has no LookupEvents
        monkeypatch.setenv("AWS_ENDPOINT_URL", request.getfixturevalue("lookup_server").endpoint)
        return
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
