"""Store fixtures parametrized over both engines: each test runs on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from storesupport import ENGINES, Engine, engine_for, open_for_workers

from daemon.store.base import Store


@pytest.fixture(scope="module", params=ENGINES)
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    """One engine per test module and parameter (PostgreSQL: one database for the module)."""
    with engine_for(request.param, tmp_path_factory) as found:
        yield found


@pytest.fixture
def place(engine: Engine) -> str:
    """Where this test's own store lives: a fresh file or schema."""
    return engine.place()


@pytest.fixture
def store(engine: Engine, place: str) -> Iterator[Store]:
    """An empty store of this test's own, on each engine."""
    opened = open_for_workers(engine, place)
    yield opened
    opened.close()
