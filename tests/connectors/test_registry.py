"""The registry's tables: every entry loads, and capabilities belong to registered types."""

from __future__ import annotations

import pytest

from connectors import registry
from connectors.base import Output, Source


@pytest.mark.parametrize(
    ("table", "base"), [(registry.SOURCES, Source), (registry.OUTPUTS, Output)]
)
def test_every_type_loads_from_its_own_module(table: dict[str, str], base: type) -> None:
    """Each type's class is in the module named as the type, under sources/ or outputs/."""
    for type_name, target in table.items():
        assert target.partition(":")[0].rsplit(".", 1)[1] == type_name
        assert issubclass(registry.load(table, type_name), base)


def test_digest_checkers_are_sources_of_their_own_type() -> None:
    """A digest checker is its type's source reduced to the check, so it takes that config."""
    assert registry.DIGEST_CHECKS
    for type_name in registry.DIGEST_CHECKS:
        checker = registry.load(registry.DIGEST_CHECKS, type_name)
        assert issubclass(checker, registry.load(registry.SOURCES, type_name))
