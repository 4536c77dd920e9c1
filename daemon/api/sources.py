"""``/api/v1/sources``: each source's state, lag, counts and last error."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from daemon.api.auth import needs
from daemon.api.replies import reply
from daemon.api.schemas import Source, Sources
from daemon.api.state import STATUS
from daemon.model import format_timestamp
from daemon.status import DaemonStatus


def source_rows(status: DaemonStatus) -> list[Source]:
    now = datetime.now(UTC)
    rows = []
    for name, config in status.configs.items():
        per = status.stats.source(name)
        rows.append(
            Source(
                id=name,
                type=config.type,
                state=per.state,
                newest=format_timestamp(per.newest) if per.newest else None,
                lag_secs=(now - per.newest).total_seconds() if per.newest else None,
                payloads=per.payloads,
                records=per.records,
                stored=per.stored,
                duplicates=per.duplicates,
                dropped=per.dropped,
                dropped_by=dict(sorted(per.dropped_by.items())),
                quarantined=per.quarantined,
                failed_payloads=per.failed_payloads,
                errors=per.errors,
                last_error=per.last_error,
            )
        )
    return rows


routes = web.RouteTableDef()


@routes.get("/api/v1/sources")
@needs("reader")
async def list_sources(request: web.Request) -> web.Response:
    return reply(Sources(sources=source_rows(request.app[STATUS])).body())
