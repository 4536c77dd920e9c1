"""The ``[api]`` section is checked at start; ``auditcorr api hash-token`` makes tokens."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from aiohttp import web
from openapi_spec_validator import validate

from daemon.api.auth import hash_token
from daemon.api.openapi import OPERATIONS, document
from daemon.api.server import ROUTES
from daemon.cli.main import main
from daemon.config import ApiSection, ConfigFileError, load_config


def problems(tmp_path: Path, api: str) -> list[str]:
    path = tmp_path / "config.toml"
    path.write_text(f"[daemon]\nstate_dir = 'state'\n[api]\n{api}\n")
    with pytest.raises(ConfigFileError) as caught:
        load_config(path)
    return [str(problem) for problem in caught.value.errors]


def test_api_section_errors_name_the_key(tmp_path: Path) -> None:
    """A bad listen address, a half TLS pair, a plain token and a bad role are each reported."""
    (cert,) = problems(tmp_path, f"cert_file = '{tmp_path}'")
    assert cert.startswith("api.cert_file: no such file")
    (pair,) = problems(tmp_path, f"cert_file = '{__file__}'")
    assert "cert_file and key_file: both or neither" in pair
    (ca,) = problems(tmp_path, f"client_ca_file = '{__file__}'")
    assert "client_ca_file needs cert_file and key_file" in ca
    (host,) = problems(tmp_path, "allowed_hosts = ['api.example.com:8080']")
    assert host.startswith("api.allowed_hosts: expected a host name without port")
    (listen,) = problems(tmp_path, "listen = '8080'")
    assert listen.startswith("api.listen: expected host:port")
    found = problems(
        tmp_path,
        "[[api.tokens]]\nname = 'ops'\nrole = 'root'\nhash = 'plain-token'",
    )
    assert any(p.startswith("api.tokens.0.role:") for p in found)
    assert any(p.startswith("api.tokens.0.hash:") and "hash-token" in p for p in found)


def test_hash_token_makes_a_token_whose_hash_the_config_accepts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The printed TOML snippet loads, and its hash is the hash of the printed token."""
    assert main(["api", "hash-token"]) == 0
    out = capsys.readouterr().out
    token = out.splitlines()[0].removeprefix("token: ")
    snippet = out[out.index("[[api.tokens]]") :]
    path = tmp_path / "config.toml"
    path.write_text("[daemon]\nstate_dir = 'state'\n[api]\n" + snippet)
    config = load_config(path)
    assert config.api is not None
    assert config.api.tokens[0].hash == hash_token(token)
    monkeypatch.setattr("sys.stdin", io.StringIO(token + "\n"))
    assert main(["api", "hash-token", "--stdin"]) == 0
    assert capsys.readouterr().out.strip() == hash_token(token)


def test_openapi_document_lists_every_api_route() -> None:
    """Every route the server mounts (but the page and its files) is in the OpenAPI document."""
    paths = document(ApiSection())["paths"]
    mounted = {
        route.path
        for table in ROUTES
        for route in table
        if isinstance(route, web.RouteDef) and route.path != "/"
    }
    assert mounted - {"/api/v1/openapi.json"} == set(paths)


def test_openapi_document_is_valid_openapi_and_generated_from_the_models() -> None:
    """The generated document passes the OpenAPI validator; each route's query parameters
    are its model's fields, with ``[api] max_page_size`` bounding the page-sized limits."""
    settings = ApiSection(max_page_size=321)
    generated = document(settings)
    validate(generated)
    for path, operation in OPERATIONS.items():
        listed = generated["paths"][path]["get"]["parameters"]
        named = [p["name"] for p in listed if p["in"] == "query"]
        assert named == (list(operation.query.model_fields) if operation.query else []), path
    events = {p["name"]: p for p in generated["paths"]["/api/v1/events"]["get"]["parameters"]}
    assert events["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 321}
    assert events["outcome"]["schema"]["enum"] == ["success", "failure", "unknown"]
    alerts = {p["name"]: p for p in generated["paths"]["/api/v1/alerts"]["get"]["parameters"]}
    assert alerts["limit"]["schema"]["maximum"] == 1000
    page = generated["components"]["schemas"]["Page"]
    assert page["properties"]["events"]["items"] == {"$ref": "#/components/schemas/Event"}
