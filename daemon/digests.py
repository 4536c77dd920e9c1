"""``auditcorr verify-digests``: check a cloudtrail_s3 source's digests over a time range.

The check runs as the digest part of the source itself, through the pipeline,
so its failures land on the timeline as integrity events exactly as in the
source's continuous check; the per-file results come back for the report.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from connectors import registry
from connectors.base import SourceContext
from connectors.cloudtrail.digests import FileResult
from connectors.config import ConnectorConfig
from daemon.config import Config
from daemon.pipeline import Pipeline, Stats
from daemon.store.open import open_store


async def verify_digests(
    config: Config, name: str, *, since: datetime, until: datetime | None
) -> tuple[Stats, list[FileResult]]:
    """Verify source ``name``'s digests that end in ``[since, until]``."""
    source_config = config.sources[name]
    if source_config.type not in registry.DIGEST_CHECKS:
        able = ", ".join(sorted(registry.DIGEST_CHECKS))
        raise ValueError(
            f"source {name!r} is a {source_config.type}, which cannot check digests ({able} can)"
        )
    checker = registry.load(registry.DIGEST_CHECKS, source_config.type)
    made: list[Any] = []

    def factory(settings: ConnectorConfig, context: SourceContext) -> Any:
        made.append(checker(settings, context))
        return made[-1]

    store = open_store(config.store_settings())
    pipeline = Pipeline(
        store,
        {name: source_config},
        mode="backfill",
        since=since,
        until=until,
        workers=1,
        factory=factory,
    )
    try:
        stats = await pipeline.run()
    finally:
        store.close()
    return stats, made[-1].results if made else []


def report(results: list[FileResult]) -> list[str]:
    """Lines for the terminal: every failure, then the count per status."""
    lines = [
        f"{r.status:15} {r.path}  {r.detail}".rstrip()
        for r in sorted(results, key=lambda r: (r.at, r.path))
        if r.failed
    ]
    counts = Counter(r.status for r in results)
    lines.append("digests: " + " ".join(f"{status}={n}" for status, n in sorted(counts.items())))
    return lines
