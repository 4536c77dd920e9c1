"""CloudTrail's LookupEvents and ListPublicKeys over real HTTP, which moto does not implement.

An aiohttp server (in a thread of its own, so sync and async tests and CLI
subprocesses can all reach it) speaks the AWS JSON 1.1 protocol: ``POST /``
with ``X-Amz-Target: com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.
LookupEvents`` (or ``.ListPublicKeys``), the request and response shapes of
botocore's service model.  LookupEvents: newest events first, 50 per page at
most.  ListPublicKeys: the keys whose validity overlaps ``[StartTime, EndTime]``
(both default to now), the key as base64 of its PKCS#1 DER form.  Every other
request (S3, STS, ...) is passed on to the moto server, so one endpoint serves
a whole source; the access key each assumed role receives is remembered, which
tells the account a later call is made in.
"""

from __future__ import annotations

import asyncio
import base64
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from yarl import URL

_SERVICE = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101."
TARGET = f"{_SERVICE}LookupEvents"
KEYS_TARGET = f"{_SERVICE}ListPublicKeys"
_HOP_BY_HOP = {"content-length", "transfer-encoding", "connection", "date", "server"}
OWN_ACCOUNT = "123456789012"
"""The account of the plain test credentials (moto's default)."""
_CREDENTIAL = re.compile(r"Credential=([^/]+)/\d{8}/([a-z0-9-]+)/")
_ASSUMED_KEY = re.compile(r"<AccessKeyId>([^<]+)</AccessKeyId>")
_ROLE_ACCOUNT = re.compile(r"RoleArn=arn%3Aaws%3Aiam%3A%3A(\d{12})%3A")


@dataclass(frozen=True, slots=True)
class Call:
    """One LookupEvents request as the server saw it."""

    account: str
    region: str
    body: dict[str, Any]
    at: float
    """Loop time of arrival (seconds)."""
    throttled: bool


@dataclass(frozen=True, slots=True)
class PublicKey:
    """One of CloudTrail's digest signing keys as ListPublicKeys describes it."""

    der: bytes
    """PKCS#1 RSAPublicKey, DER."""
    valid_from: datetime
    valid_until: datetime
    fingerprint: str


@dataclass
class LookupServer:
    """Events per (account, region); ``throttle``: answer that many calls with throttling.

    ``public_keys``: what ListPublicKeys knows; ``keys_denied``: answer it with
    AccessDenied, as for a role without ``cloudtrail:ListPublicKeys``.
    """

    upstream: str
    events: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    throttle: int = 0
    calls: list[Call] = field(default_factory=list)
    public_keys: list[PublicKey] = field(default_factory=list)
    keys_denied: bool = False
    key_calls: list[dict[str, Any]] = field(default_factory=list)
    """ListPublicKeys request bodies, in order."""
    _accounts: dict[str, str] = field(default_factory=dict)
    _loop: asyncio.AbstractEventLoop | None = None
    _runner: web.AppRunner | None = None
    endpoint: str = ""

    def add(self, account: str, region: str, records: list[dict[str, Any]]) -> None:
        """CloudTrail records as the event history of ``account``/``region`` holds them."""
        self.events.setdefault((account, region), []).extend(records)

    def start(self) -> LookupServer:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        async def serve() -> None:
            app = web.Application(client_max_size=1 << 20)
            app.router.add_route("*", "/{tail:.*}", self._handle)
            self._runner = web.AppRunner(app)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            self.endpoint = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

        def main() -> None:
            assert self._loop is not None
            self._loop.run_until_complete(serve())
            ready.set()
            self._loop.run_forever()

        threading.Thread(target=main, daemon=True, name="lookup-server").start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        loop, runner = self._loop, self._runner
        if loop is None or runner is None:
            return
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        target = request.headers.get("X-Amz-Target")
        if target == KEYS_TARGET:
            return self._keys(orjson.loads(body or b"{}"))
        if target != TARGET:
            return await self._relay(request, body)
        found = _CREDENTIAL.search(request.headers.get("Authorization", ""))
        key, region = (found[1], found[2]) if found else ("", "")
        account = self._accounts.get(key, OWN_ACCOUNT)
        wanted = orjson.loads(body or b"{}")
        throttled = self.throttle > 0
        self.calls.append(
            Call(account, region, wanted, asyncio.get_running_loop().time(), throttled)
        )
        if throttled:
            self.throttle -= 1
            error = {"__type": "ThrottlingException", "message": "Rate exceeded"}
            return _json(error, status=400)
        return _json(self._page(self.events.get((account, region), []), wanted))

    def _page(self, records: list[dict[str, Any]], wanted: dict[str, Any]) -> dict[str, Any]:
        low = wanted.get("StartTime", 0)
        high = wanted.get("EndTime", 1e12)
        picked = []
        for record in records:
            at = datetime.fromisoformat(record["eventTime"].replace("Z", "+00:00")).timestamp()
            if low <= at <= high and _matches(record, wanted.get("LookupAttributes", [])):
                picked.append((at, record))
        # Newest first; within a second, the later added first.
        picked = [item for _, item in sorted(enumerate(picked), key=lambda p: (p[1][0], p[0]))]
        picked.reverse()
        offset = int(wanted.get("NextToken") or 0)
        size = min(int(wanted.get("MaxResults", 50)), 50)
        page = picked[offset : offset + size]
        answer: dict[str, Any] = {"Events": [_event(at, record) for at, record in page]}
        if offset + size < len(picked):
            answer["NextToken"] = str(offset + size)
        return answer

    def _keys(self, wanted: dict[str, Any]) -> web.Response:
        self.key_calls.append(wanted)
        if self.keys_denied:
            error = {"__type": "AccessDeniedException", "message": "not authorized"}
            return _json(error, status=400)
        now = datetime.now(UTC).timestamp()
        low, high = wanted.get("StartTime", now), wanted.get("EndTime", now)
        if low > high:
            error = {"__type": "InvalidTimeRangeException", "message": "StartTime after EndTime"}
            return _json(error, status=400)
        found = [
            {
                "Value": base64.b64encode(key.der).decode(),
                "ValidityStartTime": key.valid_from.timestamp(),
                "ValidityEndTime": key.valid_until.timestamp(),
                "Fingerprint": key.fingerprint,
            }
            for key in self.public_keys
            if key.valid_from.timestamp() <= high and low <= key.valid_until.timestamp()
        ]
        return _json({"PublicKeyList": found})

    async def _relay(self, request: web.Request, body: bytes) -> web.Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
        url = URL(f"{self.upstream}{request.raw_path}", encoded=True)
        async with (
            aiohttp.ClientSession(auto_decompress=False) as session,
            session.request(request.method, url, data=body, headers=headers) as reply,
        ):
            data = await reply.read()
            issued = _ASSUMED_KEY.search(data.decode(errors="replace"))
            role = _ROLE_ACCOUNT.search(body.decode(errors="replace"))
            if issued and role:
                self._accounts[issued[1]] = role[1]
            kept = {k: v for k, v in reply.headers.items() if k.lower() not in _HOP_BY_HOP}
            return web.Response(status=reply.status, body=data, headers=kept)


def _matches(record: dict[str, Any], attributes: list[dict[str, str]]) -> bool:
    fields = {"EventName": "eventName", "EventSource": "eventSource", "EventId": "eventID"}
    return all(record.get(fields[a["AttributeKey"]]) == a["AttributeValue"] for a in attributes)


def _event(at: float, record: dict[str, Any]) -> dict[str, Any]:
    return {
        "EventId": record["eventID"],
        "EventName": record.get("eventName", ""),
        "ReadOnly": "false",
        "EventTime": at,
        "EventSource": record.get("eventSource", ""),
        "Username": record.get("userIdentity", {}).get("userName", ""),
        "Resources": [],
        "CloudTrailEvent": orjson.dumps(record).decode(),
    }


def _json(document: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(
        status=status, body=orjson.dumps(document), content_type="application/x-amz-json-1.1"
    )


def record(
    event_id: str, at: datetime, account: str = OWN_ACCOUNT, region: str = "us-east-1"
) -> dict[str, Any]:
    """A CloudTrail management event as the event history returns it."""
    return {
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "IAMUser",
            "arn": f"arn:aws:iam::{account}:user/alice",
            "accountId": account,
            "userName": "alice",
        },
        "eventTime": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": "iam.amazonaws.com",
        "eventName": "ListUsers",
        "awsRegion": region,
        "sourceIPAddress": "198.51.100.7",
        "userAgent": "aws-cli/2.15",
        "requestParameters": None,
        "responseElements": None,
        "eventID": event_id,
        "readOnly": True,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account,
        "eventCategory": "Management",
    }


@pytest.fixture
def lookup_server(moto_endpoint: str) -> Iterator[LookupServer]:
    server = LookupServer(moto_endpoint).start()
    yield server
    server.stop()
