"""``auditcorr verify-digests`` asks the registry which source types can check digests."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from daemon.config import load_config
from daemon.digests import verify_digests

REPO = Path(__file__).resolve().parents[2]


async def test_a_source_type_without_digest_checks_is_refused_by_name() -> None:
    """A cloudtrail_files source cannot check digests: the error names the types that can."""
    config = load_config(REPO / "config.toml")
    with pytest.raises(ValueError, match=r"cloudtrail_files, which cannot check digests") as err:
        await verify_digests(
            config, "demo_trail", since=datetime(2026, 1, 1, tzinfo=UTC), until=None
        )
    assert "(cloudtrail_s3 can)" in str(err.value)
