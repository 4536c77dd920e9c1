"""Every registered connector keeps the contract: config, docs, lifecycle."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from connectors import registry
from connectors.base import OutputContext, RawBatch, SourceContext
from connectors.config import ConnectorConfig

DOCS = Path(__file__).resolve().parents[2] / "docs"
ROW = re.compile(r"^\|\s*`([a-z_]+)`\s*\|")


def _docs_page(kind: str, type_name: str) -> str:
    page = DOCS / kind / f"{type_name}.md"
    assert page.is_file(), f"{type_name} needs a docs page at {page}"
    return page.read_text()


def _example(page: str, tmp_path: Path, endpoint: str | None = None) -> dict[str, Any]:
    block = re.search(r"```toml\n(.*?)```", page, re.S)
    assert block, "the docs page needs a ```toml example"
    tables = tomllib.loads(block.group(1))
    (section,) = next(iter(tables.values())).values()
    # Paths in examples name real deployments; point them at a folder that exists,
    # and endpoints at a local server with nothing to read.
    local = {"path": str(tmp_path), "endpoint": endpoint}
    return {k: (local[k] if local.get(k) else v) for k, v in section.items()}


@pytest.mark.parametrize("type_name", sorted(registry.SOURCES))
def test_docs_table_lists_every_setting(type_name: str) -> None:
    """The settings table of a source's docs page names exactly the model's fields."""
    model: type[ConnectorConfig] = registry.load(registry.SOURCES, type_name).config_model
    page = _docs_page("sources", type_name)
    documented = {m.group(1) for line in page.splitlines() if (m := ROW.match(line))}
    assert documented == set(model.model_fields)


@pytest.mark.parametrize("type_name", sorted(registry.SOURCES))
def test_example_config_round_trips(type_name: str, tmp_path: Path) -> None:
    """The docs example validates and survives dump and re-validation unchanged."""
    model: type[ConnectorConfig] = registry.load(registry.SOURCES, type_name).config_model
    section = _example(_docs_page("sources", type_name), tmp_path)
    config = model.model_validate(section)
    assert config.type == type_name
    again = model.model_validate(config.model_dump())
    assert again == config


@pytest.mark.parametrize("type_name", sorted(registry.SOURCES))
def test_unknown_key_is_rejected(type_name: str, tmp_path: Path) -> None:
    """A misspelled key is an error, never silently ignored."""
    model: type[ConnectorConfig] = registry.load(registry.SOURCES, type_name).config_model
    section = _example(_docs_page("sources", type_name), tmp_path)
    with pytest.raises(ValidationError, match="extra"):
        model.model_validate({**section, "pol_interval_secs": 5})


@pytest.mark.parametrize("type_name", sorted(registry.SOURCES))
async def test_enters_runs_and_exits_cleanly(
    type_name: str, tmp_path: Path, empty_endpoint: str
) -> None:
    """Opened on an empty origin in backfill mode, a source returns without emitting."""
    cls = registry.load(registry.SOURCES, type_name)
    page = _docs_page("sources", type_name)
    config = cls.config_model.model_validate(_example(page, tmp_path, empty_endpoint))
    emitted: list[RawBatch] = []

    async def emit(batch: RawBatch) -> Any:
        emitted.append(batch)

    async with cls(config, SourceContext("contract", {}, mode="backfill")) as source:
        await source.run(emit)
    assert emitted == []


# -- outputs -------------------------------------------------------------------


def _output_example(type_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The validated docs example; secrets it names by ``env:NAME`` get stand-in values."""
    section = _example(_docs_page("outputs", type_name), tmp_path)
    for value in section.values():
        if isinstance(value, str) and value.startswith("env:"):
            monkeypatch.setenv(value[4:], "https://hooks.example.org/T000/B000/XXXX")
    model: type[ConnectorConfig] = registry.load(registry.OUTPUTS, type_name).config_model
    return model, section


@pytest.mark.parametrize("type_name", sorted(registry.OUTPUTS))
def test_output_docs_table_lists_every_setting(type_name: str) -> None:
    """The settings table of an output's docs page names exactly the model's fields."""
    model: type[ConnectorConfig] = registry.load(registry.OUTPUTS, type_name).config_model
    page = _docs_page("outputs", type_name)
    documented = {m.group(1) for line in page.splitlines() if (m := ROW.match(line))}
    assert documented == set(model.model_fields)


@pytest.mark.parametrize("type_name", sorted(registry.OUTPUTS))
def test_output_example_round_trips_and_rejects_unknown_keys(
    type_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The docs example validates, survives dump and re-validation, and a typo is an error."""
    model, section = _output_example(type_name, tmp_path, monkeypatch)
    config = model.model_validate(section)
    assert config.type == type_name
    assert model.model_validate(config.model_dump()) == config
    with pytest.raises(ValidationError, match="extra"):
        model.model_validate({**section, "min_severty": "high"})


@pytest.mark.parametrize("type_name", sorted(registry.OUTPUTS))
async def test_output_enters_and_exits_cleanly(
    type_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opened and closed without sending, an output touches no network and raises nothing."""
    model, section = _output_example(type_name, tmp_path, monkeypatch)
    cls = registry.load(registry.OUTPUTS, type_name)
    async with cls(model.model_validate(section), OutputContext("contract")):
        pass
