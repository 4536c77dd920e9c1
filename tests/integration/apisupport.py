"""Helpers for the HTTP API tests: a daemon holding the demo data, and requests to it."""

from __future__ import annotations

import contextlib
import shutil
import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from itsupport import EXAMPLES, Daemon, Workspace, wait_for

from daemon.api.auth import hash_token

DEMO = EXAMPLES / "demo"
TOKENS = {"reader": "reader-token-1234567890", "admin": "admin-token-1234567890"}
"""Role -> token the demo daemon accepts (the config holds only their hashes)."""


def api_config(
    workspace: Workspace, *, listen: str, extra: str = "", timezone: str = "UTC"
) -> None:
    """The demo as a source, and an ``[api]`` section with a reader and an admin token."""
    # A copy, so tests can add files to it.
    shutil.copytree(DEMO, workspace.data, dirs_exist_ok=True)
    text = workspace.config_text({"demo": {"path": workspace.data, "poll_interval_secs": 0.5}})
    text = text.replace("[daemon]\n", f'[daemon]\ntimezone = "{timezone}"\n', 1)
    lines = ["", "[api]", f'listen = "{listen}"', extra]
    for role, token in TOKENS.items():
        lines += ["[[api.tokens]]", f'name = "{role}-holder"', f'role = "{role}"']
        lines.append(f'hash = "{hash_token(token)}"')
    workspace.config.write_text(text + "\n".join(lines) + "\n")


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class ApiDaemon:
    daemon: Daemon

    @property
    def workspace(self) -> Workspace:
        return self.daemon.workspace

    url: str = field(init=False)
    port: int = field(init=False)

    def __post_init__(self) -> None:
        self.daemon.wait_started()
        (entry,) = wait_for(
            "the API to listen", lambda: self.daemon.events("api_listening"), timeout=20
        )
        self.url = entry["url"].replace("0.0.0.0", "127.0.0.1")
        self.port = int(self.url.rstrip("/").rpartition(":")[2])

    def wait_ingested(self) -> None:
        wait_for(
            "the demo to be stored",
            lambda: self.daemon.events("events_stored"),
            timeout=60,
            context=self.daemon.tail,
        )

    def get(
        self,
        path: str,
        *,
        token: str | None = None,
        base: str | None = None,
        context: ssl.SSLContext | None = None,
        method: str = "GET",
        body: bytes | None = None,
    ) -> Response:
        request = urllib.request.Request((base or self.url).rstrip("/") + path, method=method)
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
        )
        try:
            with opener.open(request, data=body, timeout=30) as answer:
                return Response(answer.status, dict(answer.headers), answer.read())
        except urllib.error.HTTPError as err:
            return Response(err.code, dict(err.headers), err.read())


def outward_address() -> str | None:
    """This machine's address on a non-loopback interface, if it has one."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_DGRAM)) as probe:
        try:
            probe.connect(("203.0.113.1", 9))  # UDP connect sends nothing: it only picks a route
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if address.startswith("127.") or address == "0.0.0.0" else address


@contextlib.contextmanager
def serve_demo(
    root: Path, *, listen: str, extra: str = "", timezone: str = "UTC"
) -> Iterator[ApiDaemon]:
    """``auditcorr run`` on the demo with ``[api]``; yields once the demo is stored."""
    workspace = Workspace(root)
    api_config(workspace, listen=listen, extra=extra, timezone=timezone)
    with served(workspace, "api") as api:
        yield api


@contextlib.contextmanager
def served(workspace: Workspace, name: str) -> Iterator[ApiDaemon]:
    """``auditcorr run`` on ``workspace``'s config; yields once what it reads is stored."""
    daemon = Daemon(workspace, name).start()
    try:
        api = ApiDaemon(daemon)
        api.wait_ingested()
        yield api
    finally:
        daemon.kill_group()
