"""Helpers shared by the normalizer tests."""

from __future__ import annotations

from typing import Any


def flat(node: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """An ECS document as dotted field names, the way rules and queries name fields."""
    out: dict[str, Any] = {}
    for key, value in node.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
