"""The API server's listening socket: TLS with the configured certificate, a port in use."""

from __future__ import annotations

import socket
import ssl
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import trustme
from apisupport import api_config, serve_demo
from itsupport import Workspace

pytestmark = pytest.mark.integration


def test_api_serves_https_with_the_configured_certificate(tmp_path: Path) -> None:
    """With cert_file/key_file the API answers HTTPS that verifies against the issuing CA."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert_path, key_path = tmp_path / "api.crt", tmp_path / "api.key"
    cert.cert_chain_pems[0].write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    extra = f'cert_file = "{cert_path}"\nkey_file = "{key_path}"'
    with serve_demo(tmp_path / "ws", listen="127.0.0.1:0", extra=extra) as api:
        assert api.url.startswith("https://127.0.0.1:")
        context = ssl.create_default_context()
        ca.configure_trust(context)
        answer = api.get("/api/v1/events?limit=1", context=context)
        assert answer.status == 200
        assert len(answer.json()["events"]) == 1
        with pytest.raises((urllib.error.URLError, ConnectionError)):  # plain HTTP is refused
            urllib.request.urlopen(api.url.replace("https", "http") + "healthz", timeout=5)


def test_a_port_in_use_stops_the_daemon_at_start(tmp_path: Path) -> None:
    """When [api] listen is taken, run exits with status 2 naming api.listen."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        workspace = Workspace(tmp_path)
        api_config(workspace, listen=f"127.0.0.1:{port}")
        result = workspace.cli("run", timeout=60)
    assert result.returncode == 2, str(result)
    assert f"api.listen: cannot listen on 127.0.0.1:{port}" in result.stderr
