"""A moto server over real HTTP on an ephemeral port, and a fault-injecting proxy before it.

Imported by the conftest files of the test folders that talk to AWS.  Every
test runs with fake credentials and no shared AWS config, so nothing can reach
real AWS.
"""

from __future__ import annotations

import http.client
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

REGION = "us-east-1"

Fault = Callable[[str, str], tuple[int, bytes] | None]
"""(method, path) -> (status, body) to answer instead of moto, or None to pass on."""
Intercept = Callable[[str, str, Mapping[str, str]], tuple[int, bytes] | None]
"""Like ``Fault``, with the request's headers (``X-Amz-Target`` names JSON-protocol
calls); it may block its request's thread to hold the call."""


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(autouse=True)
def fake_aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ROLE_ARN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def client(service: str, endpoint: str) -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name=REGION)


@dataclass
class FaultProxy:
    """Forwards HTTP to moto; ``fault`` may answer a request itself (denied, throttled)."""

    upstream: str
    fault: Fault = lambda method, path: None
    intercept: Intercept = lambda method, path, headers: None
    seen: list[tuple[str, str, int]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def endpoint(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FaultProxy:
        proxy = self
        upstream = self.upstream.removeprefix("http://")

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                answer = proxy.intercept(self.command, self.path, self.headers) or proxy.fault(
                    self.command, self.path
                )
                if answer is not None:
                    status, data, headers = answer[0], answer[1], {"Content-Type": "text/xml"}
                else:
                    conn = http.client.HTTPConnection(upstream, timeout=30)
                    try:
                        conn.request(self.command, self.path, body, dict(self.headers.items()))
                        reply = conn.getresponse()
                        status, data = reply.status, reply.read()
                        headers = {
                            k: v
                            for k, v in reply.getheaders()
                            if k.lower()
                            not in {"transfer-encoding", "connection", "content-length"}
                        }
                    finally:
                        conn.close()
                proxy.seen.append((self.command, self.path, status))
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _relay  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def fault_proxy(moto_endpoint: str) -> Iterator[FaultProxy]:
    proxy = FaultProxy(moto_endpoint).start()
    yield proxy
    proxy.stop()


def s3_error(code: str, message: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
        f"<Message>{message}</Message><RequestId>T1</RequestId></Error>"
    ).encode()
