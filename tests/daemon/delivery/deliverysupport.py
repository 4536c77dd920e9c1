"""Helpers for delivery and output tests: alerts made by hand, an HTTP receiver with a script
of answers, and the fixtures (a store, receivers, brokers, certificates) the conftests share."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import socket
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import orjson
import pytest
import trustme
from aiohttp import web
from testdata import need

from connectors.config import ConnectorConfig
from connectors.outputs.webhook import WebhookConfig
from daemon.alert import Alert, Evidence, Severity, alert_id
from daemon.delivery.service import DeliveryService
from daemon.delivery.worker import Backoff
from daemon.logtypes import normalize_record
from daemon.routing import routed, routes
from daemon.store.sqlite import SqliteStore

FAST = Backoff(base_secs=0.05, cap_secs=0.2)
T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def make_alert(
    n: int = 0,
    *,
    rule: str = "console_login_without_mfa",
    severity: Severity = "high",
    tags: list[str] | None = None,
    environment: str = "cloud",
    title: str = "Console login without MFA",
) -> Alert:
    start = T0 + timedelta(minutes=n)
    return Alert(
        id=alert_id(rule, {"group": str(n)}, start, f"ev-{n}"),
        rule_id=rule,
        title=title,
        severity=severity,
        environment=environment,  # type: ignore[arg-type]
        first_seen=start,
        last_seen=start + timedelta(seconds=30),
        tags=tags if tags is not None else ["attack.initial_access", "attack.t1078.004"],
        actors=["alice"],
        group={"cloud.account.id": "111111111111", "cloud.region": "ap-northeast-1"},
        evidence=[
            Evidence(
                id=f"ev-{n}",
                timestamp=start,
                dataset="aws.cloudtrail",
                action="ConsoleLogin",
                message="alice がMFAなしでログイン",
            )
        ],
        description="A console login succeeded without MFA.",
    )


def queue(store: SqliteStore, outputs: Mapping[str, ConnectorConfig], alerts: list[Alert]) -> int:
    return store.write_alerts(routed(alerts, routes(outputs)))


Answer = Callable[[web.Request], Awaitable[web.StreamResponse]]


def status(code: int, headers: dict[str, str] | None = None) -> Answer:
    async def answer(request: web.Request) -> web.StreamResponse:
        return web.Response(status=code, text=f"status {code}", headers=headers or {})

    return answer


def hang(seconds: float) -> Answer:
    async def answer(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(seconds)
        return web.Response(status=200)

    return answer


@dataclass
class Received:
    at: float
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class Receiver:
    """A real aiohttp server on 127.0.0.1:<ephemeral>; answers from ``script`` first, then 200.

    Every request is recorded, also those answered with an error.
    """

    script: list[Answer] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)
    accepted: list[Received] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    tls: ssl.SSLContext | None = None

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self.tls)
        await site.start()
        port = self._runner.addresses[0][1]
        scheme = "https" if self.tls else "http"
        self.url = f"{scheme}://127.0.0.1:{port}/hook"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        record = Received(loop.time(), dict(request.headers), await request.read())
        self.requests.append(record)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            answer = self.script.pop(0) if self.script else None
            response = await answer(request) if answer else web.Response(text="ok")
        finally:
            self.in_flight -= 1
        if response.status == 200:
            self.accepted.append(record)
            self.arrived.set()
        return response

    async def wait_for(self, count: int, within_secs: float = 30.0) -> None:
        async with asyncio.timeout(within_secs):
            while len(self.accepted) < count:
                self.arrived.clear()
                await self.arrived.wait()


@contextlib.asynccontextmanager
async def delivering(
    store: SqliteStore,
    outputs: Mapping[str, ConnectorConfig],
    *,
    timezone: str = "UTC",
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Any:
    """The delivery service running in the background for the block, on its own connection."""
    own = SqliteStore(store.path, retention_days=0, normalize=normalize_record)
    service = DeliveryService(own, outputs, timezone=timezone, backoff=FAST, clock=clock)
    task = asyncio.create_task(service.run())
    try:
        yield service
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        own.close()


async def wait_until(predicate: Callable[[], object], within_secs: float = 30.0) -> None:
    """Poll a condition on the store (which has no notifications) until it holds."""
    async with asyncio.timeout(within_secs):
        while not predicate():  # noqa: ASYNC110 - the store cannot signal an event
            await asyncio.sleep(0.05)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True)
class TrustedCa:
    """PEM files of a private CA: its certificate, a server certificate and key it issued for
    127.0.0.1, and another CA's certificate (the wrong one to trust)."""

    ca_file: Path
    other_ca_file: Path
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        """The TLS context of a server presenting the issued certificate."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


def password_file(workdir: Path, users: Mapping[str, str]) -> Path:
    """A mosquitto password file holding ``users``, written by ``mosquitto_passwd -b``."""
    tool = need("mosquitto_passwd")
    path = workdir / "mosquitto.passwd"
    path.touch(mode=0o600)
    for name, password in users.items():
        subprocess.run([tool, "-b", str(path), name, password], check=True, capture_output=True)
    return path


class Mosquitto:
    """A real broker on an ephemeral port; ``stop``/``start`` make an outage.

    With ``tls`` the listener speaks only TLS, with the CA's server certificate; with
    ``users`` (name -> password) it takes only those logins, from a password file made by
    ``mosquitto_passwd``, and refuses anonymous clients.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        tls: TrustedCa | None = None,
        users: Mapping[str, str] | None = None,
    ) -> None:
        self.binary = need("mosquitto")
        self.port = free_port()
        self.config = workdir / "mosquitto.conf"
        lines = [
            f"listener {self.port} 127.0.0.1",
            # Run as the test's user (as root it would switch to "mosquitto" and
            # could not write its state into the test's private directory).
            f"user {getpass.getuser()}",
            # Sessions survive a restart, so a subscriber misses nothing sent while it was away.
            f"persistence true\npersistence_location {workdir}/",
        ]
        if tls is not None:
            lines += [f"certfile {tls.cert_file}", f"keyfile {tls.key_file}"]
        if users:
            lines += ["allow_anonymous false", f"password_file {password_file(workdir, users)}"]
        else:
            lines.append("allow_anonymous true")
        self.config.write_text("\n".join(lines) + "\n")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.2),
            ):
                return
            time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


def webhook(receiver: Receiver, **extra: object) -> dict[str, WebhookConfig]:
    """One webhook output named ``hook`` posting to ``receiver``."""
    config = WebhookConfig.model_validate(
        {"type": "webhook", "endpoint": receiver.url, "timeout_secs": 1, **extra}
    )
    return {"hook": config}


# -- fixtures, re-exported by the conftests of the delivery and output tests --


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    opened = SqliteStore(tmp_path / "timeline.db", retention_days=0, normalize=normalize_record)
    yield opened
    opened.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with Receiver() as running:
        yield running


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    broker = Mosquitto(tmp_path)
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (cert, key): the client trusts it as its CA file."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            need("openssl"),
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture(scope="session")
def trusted_ca(tmp_path_factory: pytest.TempPathFactory) -> TrustedCa:
    """A private CA (trustme) with a server certificate for 127.0.0.1, and a second CA that
    signed nothing here: the wrong ``ca_file`` for a client."""
    folder = tmp_path_factory.mktemp("ca")
    ca, stranger = trustme.CA(), trustme.CA()
    issued = ca.issue_cert("127.0.0.1")
    files = TrustedCa(
        ca_file=folder / "ca.pem",
        other_ca_file=folder / "other-ca.pem",
        cert_file=folder / "server.pem",
        key_file=folder / "server.key",
    )
    ca.cert_pem.write_to_path(str(files.ca_file))
    stranger.cert_pem.write_to_path(str(files.other_ca_file))
    issued.cert_chain_pems[0].write_to_path(str(files.cert_file))
    issued.private_key_pem.write_to_path(str(files.key_file))
    return files
