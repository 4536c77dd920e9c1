"""Fixtures for delivery tests: alerts, a store, and real HTTP receivers on ephemeral ports."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import trustme

sys.path.insert(0, str(Path(__file__).parent))

from deliverysupport import Mosquitto, Receiver, TrustedCa
from testdata import need

from daemon.logtypes import normalize_record
from daemon.store.sqlite import SqliteStore


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
