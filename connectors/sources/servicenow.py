"""Change requests polled from ServiceNow's Table API.

``GET /api/now/table/change_request`` ordered by ``sys_updated_on``, from a
watermark (the last ``sys_updated_on`` committed, with the ids already seen
at that second, since the API's times have whole seconds), page by page
(``sysparm_limit``/``sysparm_offset``).  Each page is one payload whose
checkpoint is the watermark after it, so a restart goes on where the
committed pages ended.  Rows are mapped to the change record's JSON form by
a configurable field mapping; ``sys_mod_count`` is the version.

See https://docs.servicenow.com/bundle/latest/page/integrate/inbound-rest/concept/c_TableAPI.html
"""

from __future__ import annotations

import asyncio
import json
from types import TracebackType
from typing import Any, Literal, Self

import aiohttp
import structlog
from pydantic import Field, model_validator

from connectors.base import (
    AuthError,
    Checkpoint,
    Emit,
    PermanentError,
    RawBatch,
    Source,
    TransientError,
)
from connectors.config import SecretStr, SourceConfig

log = structlog.get_logger()

LOG_TYPE = "change"
WATERMARK = "watermark"

DEFAULT_FIELDS = {
    "id": "number",
    "title": "short_description",
    "state": "state",
    "window_start": "start_date",
    "window_end": "end_date",
    "implementers": "assigned_to",
    "requested_by": "requested_by",
    "hosts": "cmdb_ci",
}
"""Record field -> ServiceNow column.  Also mappable: approved_by, aws_accounts,
aws_regions, resources, actions (comma-separated lists in the column)."""

DEFAULT_STATES = {
    # Numeric values of the change_request state choice list (Kingston and later).
    "-5": "requested",  # New
    "-4": "requested",  # Assess
    "-3": "requested",  # Authorize
    "-2": "approved",  # Scheduled
    "-1": "implementing",  # Implement
    "0": "completed",  # Review
    "3": "completed",  # Closed
    "4": "cancelled",  # Canceled
}

_LISTS = ("implementers", "hosts", "aws_accounts", "aws_regions", "resources", "actions")
_TEXTS = ("id", "title", "state", "requested_by", "approved_by")
_MAPPABLE = {*_TEXTS, *_LISTS, "window_start", "window_end"}


class ServicenowConfig(SourceConfig):
    type: Literal["servicenow"] = "servicenow"
    endpoint: str = Field(pattern=r"^https?://[^/\s]+/?$")
    """The instance, e.g. ``https://example.service-now.com``."""
    username: str | None = None
    password: SecretStr | None = None
    token: SecretStr | None = None
    """OAuth bearer token, instead of username and password."""
    table: str = Field(default="change_request", pattern=r"^[a-z0-9_]+$")
    query: str = ""
    """An encoded query ANDed to the watermark, e.g. ``type=normal``."""
    fields: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_FIELDS))
    """Record field -> ServiceNow column."""
    states: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_STATES))
    """ServiceNow state value -> record state."""
    page_size: int = Field(default=100, gt=0, le=10000)
    poll_interval_secs: float = Field(default=60.0, gt=0, le=86400)
    timeout_secs: float = Field(default=30.0, gt=0, le=600)

    @model_validator(mode="after")
    def _credentials(self) -> Self:
        if self.token is None and (self.username is None or self.password is None):
            raise ValueError("set username and password, or token")
        if self.token is not None and (self.username or self.password):
            raise ValueError("set username and password, or token, not both")
        unknown = sorted(set(self.fields) - _MAPPABLE)
        if unknown:
            raise ValueError(
                f"fields: unknown record field(s) {', '.join(unknown)}"
                f" (known: {', '.join(sorted(_MAPPABLE))})"
            )
        return self


class ServicenowSource(Source):
    config_model = ServicenowConfig
    config: ServicenowConfig

    def __init__(self, config: Any, context: Any) -> None:
        super().__init__(config, context)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        config = self.config
        headers = {"Accept": "application/json"}
        if config.token is not None:
            headers["Authorization"] = f"Bearer {config.token.reveal()}"
        elif config.username is not None and config.password is not None:
            headers["Authorization"] = aiohttp.encode_basic_auth(
                config.username, config.password.reveal()
            )
        self._session = aiohttp.ClientSession(
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=config.timeout_secs),
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()

    async def run(self, emit: Emit) -> None:
        mark = self.context.checkpoints.get(WATERMARK, {})
        since = str(mark.get("sys_updated_on", "")) or None
        seen = set(mark.get("sys_ids", []))
        while True:
            # One query per poll from the committed watermark, paged by offset;
            # the watermark advances with each page for the checkpoints.
            start = since
            offset = 0
            fetched = 0
            while True:
                rows = await self._page(start, offset)
                offset += len(rows)
                fresh = [row for row in rows if _value(row, "sys_id") not in seen]
                if fresh:
                    since, seen = _advance(since, seen, fresh)
                    mark = {"sys_updated_on": since, "sys_ids": sorted(seen)}
                    payload = json.dumps([self.record(row) for row in fresh]).encode()
                    await emit(
                        RawBatch(LOG_TYPE, self._origin, payload, [Checkpoint(WATERMARK, mark)])
                    )
                    fetched += len(fresh)
                if len(rows) < self.config.page_size:
                    break
            if fetched:
                log.info("records_fetched", count=fetched, watermark=since)
            if self.context.mode == "backfill":
                return
            await asyncio.sleep(self.config.poll_interval_secs)

    @property
    def _origin(self) -> str:
        return f"{self.config.endpoint.rstrip('/')}/api/now/table/{self.config.table}"

    async def _page(self, since: str | None, offset: int) -> list[dict[str, Any]]:
        assert self._session is not None  # __aenter__ opened it
        terms = [f"sys_updated_on>={since}"] if since else []
        if self.config.query:
            terms.append(self.config.query)
        params = {
            "sysparm_query": "^".join([*terms, "ORDERBYsys_updated_on", "ORDERBYsys_id"]),
            "sysparm_display_value": "all",
            "sysparm_exclude_reference_link": "true",
            "sysparm_limit": str(self.config.page_size),
            "sysparm_offset": str(offset),
        }
        try:
            async with self._session.get(self._origin, params=params) as response:
                if response.status in (401, 403):
                    raise AuthError(await self._refusal(response))
                if response.status == 429 or response.status >= 500:
                    raise TransientError(f"ServiceNow answered HTTP {response.status}")
                if response.status != 200:
                    raise PermanentError(f"ServiceNow answered HTTP {response.status}")
                body = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError) as err:
            raise TransientError(f"ServiceNow unreachable: {err}") from err
        result = body.get("result") if isinstance(body, dict) else None
        if not isinstance(result, list):
            raise PermanentError("ServiceNow answer has no 'result' list")
        return [row for row in result if isinstance(row, dict)]

    async def _refusal(self, response: aiohttp.ClientResponse) -> str:
        """What was refused, with ServiceNow's reason: the login (401) or the table (403).

        Names the credentials by user or by where the token comes from, never the secret.
        """
        config = self.config
        if config.token is not None:
            who = f"the bearer token ({config.token.reference})"
        else:
            who = f"user {config.username!r}"
        if response.status == 401:
            text = f"ServiceNow refused {who}: HTTP 401"
        else:
            text = f"ServiceNow denied {who} read access to table {config.table!r}: HTTP 403"
        reason = await _error_message(response)
        return f"{text} {reason}" if reason else text

    def record(self, row: dict[str, Any]) -> dict[str, Any]:
        """One change_request row in the change record's JSON form (not yet validated)."""
        fields = self.config.fields

        def text(name: str, *, display: bool = True) -> str | None:
            column = fields.get(name)
            return _value(row, column, display=display) if column else None

        record: dict[str, Any] = {"window": {}, "scope": {}}
        for name in _TEXTS:
            value = text(name, display=name != "state")
            if value:
                record[name] = value
        state = record.get("state")
        if state is not None:
            record["state"] = self.config.states.get(state, state.lower())
        for name in _LISTS:
            value = text(name)
            items = [part.strip() for part in (value or "").split(",") if part.strip()]
            target = record if name == "implementers" else record["scope"]
            if items:
                target[name] = items
        for name, key in (("window_start", "start"), ("window_end", "end")):
            value = text(name, display=False)
            if value:
                record["window"][key] = _utc(value)
        updated = _value(row, "sys_updated_on", display=False)
        if updated:
            record["updated"] = _utc(updated)
        count = _value(row, "sys_mod_count", display=False)
        if count and count.isdigit():
            record["version"] = int(count)
        sys_id = _value(row, "sys_id", display=False)
        if sys_id:
            base = self.config.endpoint.rstrip("/")
            record["url"] = f"{base}/nav_to.do?uri={self.config.table}.do?sys_id={sys_id}"
        return record


async def _error_message(response: aiohttp.ClientResponse) -> str | None:
    """``error.message`` of a Table API error answer (``{"error": {"message": ...}}``),
    read from at most 4 KiB of the body; None when the body is not such an answer."""
    try:
        body = json.loads(await response.content.read(4096))
    except (ValueError, aiohttp.ClientError, TimeoutError):
        return None
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return message[:200] if isinstance(message, str) and message else None


def _value(row: dict[str, Any], column: str, *, display: bool = False) -> str | None:
    """A column's value; with ``sysparm_display_value=all`` each is
    ``{"value": ..., "display_value": ...}`` (times in UTC in ``value``)."""
    cell = row.get(column)
    if isinstance(cell, dict):
        cell = cell.get("display_value" if display else "value")
    if cell is None or cell == "":
        return None
    return str(cell)


def _utc(value: str) -> str:
    """ServiceNow's ``YYYY-MM-DD HH:MM:SS`` values are UTC."""
    return value.replace(" ", "T") + "Z" if len(value) == 19 else value


def _advance(
    since: str | None, seen: set[str], rows: list[dict[str, Any]]
) -> tuple[str | None, set[str]]:
    """The watermark after ``rows`` (ordered by ``sys_updated_on``): the newest
    second, and the ids seen at exactly that second."""
    for row in rows:
        updated = _value(row, "sys_updated_on")
        sys_id = _value(row, "sys_id") or ""
        if updated is None:
            continue
        if updated != since:
            since, seen = updated, set()
        seen.add(sys_id)
    return since, seen
