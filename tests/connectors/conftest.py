"""Secrets that connector docs examples name as ``env:`` references."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def example_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDITCORR_CHANGES_TOKEN", "example-token")
    monkeypatch.setenv("SERVICENOW_PASSWORD", "example-password")
