"""The API over HTTPS with client certificates: ``cert_file``, ``key_file``, ``client_ca_file``."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import pytest
import trustme

from daemon.api.intake import IntakeRouter
from daemon.api.server import ApiServer
from daemon.config import ApiSection
from daemon.logtypes import normalize_record
from daemon.pipeline import Pipeline
from daemon.store.sqlite import SqliteStore


@pytest.fixture
async def mutual(tmp_path: Path) -> AsyncIterator[tuple[str, trustme.CA, trustme.CA]]:
    """An API server whose certificate the server CA issued, asking for client
    certificates of the client CA; yields its URL and both CAs."""
    server_ca, client_ca = trustme.CA(), trustme.CA()
    cert = server_ca.issue_cert("127.0.0.1")
    paths = {name: tmp_path / name for name in ("api.crt", "api.key", "clients.pem")}
    cert.cert_chain_pems[0].write_to_path(str(paths["api.crt"]))
    cert.private_key_pem.write_to_path(str(paths["api.key"]))
    client_ca.cert_pem.write_to_path(str(paths["clients.pem"]))
    settings = ApiSection.model_validate(
        {
            "listen": "127.0.0.1:0",
            "cert_file": paths["api.crt"],
            "key_file": paths["api.key"],
            "client_ca_file": paths["clients.pem"],
        },
        context={"base_dir": tmp_path},
    )
    store_path = tmp_path / "timeline.db"
    store = SqliteStore(store_path, retention_days=0, normalize=normalize_record)
    pipeline = Pipeline(store, {}, workers=1)
    server = ApiServer(
        settings,
        pipeline,
        IntakeRouter(),
        lambda: SqliteStore(
            store_path, retention_days=0, readonly=True, normalize=normalize_record
        ),
        ZoneInfo("UTC"),
        trail=pipeline,
    )
    try:
        async with server:
            yield server.url, server_ca, client_ca
    finally:
        store.close()


async def test_only_clients_with_a_certificate_of_the_client_ca_are_served(
    mutual: tuple[str, trustme.CA, trustme.CA],
) -> None:
    """With client_ca_file a client without a certificate fails the handshake; one with a
    certificate the client CA issued gets its answer over HTTPS."""
    url, server_ca, client_ca = mutual
    assert url.startswith("https://")
    context = ssl.create_default_context()
    server_ca.configure_trust(context)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientError):
            async with session.get(f"{url}healthz", ssl=context) as answer:
                await answer.read()
        client_ca.issue_cert("grafana.example.com").configure_cert(context)
        async with session.get(f"{url}healthz", ssl=context) as answer:
            assert answer.status == 200
            assert answer.headers["Strict-Transport-Security"].startswith("max-age=")
