"""Change records pushed to the daemon's HTTP server: ``POST /api/v1/changes``.

A ticket system (or a script) posts one record or a list in their JSON form
with the source's bearer token.  The whole request is validated first and
refused with a JSON error naming every problem (400), a wrong token (401) or
an oversized body (413); accepted records are answered only once they are
committed to the store, so a 200 means they are on the timeline.  Posting
the same record again is harmless (its version is recognized); posting it
with changed content adds a version and keeps the old one in its history.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from typing import Any, Literal

import structlog
from pydantic import Field

from connectors import jsonlimits
from connectors.base import (
    ConfigError,
    Emit,
    IntakeRequest,
    IntakeResponse,
    RawBatch,
    Source,
)
from connectors.config import SecretStr, SourceConfig
from connectors.contracts.change_record import InvalidChangeRecordError, parse_record

log = structlog.get_logger()

LOG_TYPE = "change"


class ChangesHttpConfig(SourceConfig):
    type: Literal["changes_http"] = "changes_http"
    token: SecretStr
    """Bearer token clients must send (``Authorization: Bearer <token>``)."""
    path: str = Field(default="/api/v1/changes", pattern=r"^/[A-Za-z0-9/_.-]*$")
    """Where the daemon's HTTP server accepts records."""
    max_body_bytes: int = Field(default=1024 * 1024, gt=0, le=64 * 1024 * 1024)
    """Larger requests are refused with 413."""
    max_records: int = Field(default=1000, gt=0)
    """More records in one request are refused with 400."""


def _error(status: int, message: str, **extra: Any) -> IntakeResponse:
    return IntakeResponse(status, {"error": message, **extra})


class ChangesHttpSource(Source):
    config_model = ChangesHttpConfig
    config: ChangesHttpConfig

    def __init__(self, config: Any, context: Any) -> None:
        super().__init__(config, context)
        self._emit: Emit | None = None
        self._log_fields: dict[str, object] = {}
        self.refused = 0
        """Requests refused (400, 401, 413) since the source started."""

    async def run(self, emit: Emit) -> None:
        if self.context.mode == "backfill":
            return  # records are pushed; there is nothing to read back
        intake = self.context.intake
        if intake is None:
            raise ConfigError(
                f"sources.{self.context.source_id}",
                "changes_http needs the daemon's HTTP server",
                hint="add an [api] section",
            )
        self._emit = emit
        self._log_fields = structlog.contextvars.get_contextvars()
        remove = intake.route(
            "POST", self.config.path, self.handle, max_body_bytes=self.config.max_body_bytes
        )
        log.info("intake_listening", path=self.config.path)
        try:
            await asyncio.Event().wait()
        finally:
            remove()

    async def handle(self, request: IntakeRequest) -> IntakeResponse:
        """Validate, hand to the pipeline, answer once committed."""
        # The API's tasks serve requests: the source's log fields (its component) come along.
        with structlog.contextvars.bound_contextvars(**self._log_fields):
            emit = self._emit
            if emit is None:
                return _error(503, "not ready")
            checked = self._check(request)
            if isinstance(checked, IntakeResponse):
                await self._refuse(request, checked, emit)
                return checked
            committed = await emit(
                RawBatch(LOG_TYPE, self._origin(request), json.dumps(checked).encode())
            )
            await committed
            ids = [record["id"] for record in checked]
            log.info("records_received", count=len(ids))
            return IntakeResponse(200, {"accepted": len(ids), "ids": ids})

    async def _refuse(self, request: IntakeRequest, answer: IntakeResponse, emit: Emit) -> None:
        """Count and log a refused request; keep a 400's body in quarantine."""
        self.refused += 1
        log.warning(
            "request_refused",
            peer=request.peer,
            status=answer.status,
            reason=answer.body["error"],
        )
        if answer.status != 400:
            return
        reason = f"refused: {answer.body['error']}"
        problems = answer.body.get("problems")
        if problems:
            reason += ": " + json.dumps(problems)
        kept = await emit(RawBatch(LOG_TYPE, self._origin(request), request.body, [], reason))
        await kept

    def _origin(self, request: IntakeRequest) -> str:
        return f"{request.method} {request.path} from {request.peer}"

    def _check(self, request: IntakeRequest) -> list[Any] | IntakeResponse:
        """The request's records, or the error response that refuses it."""
        header = next((v for k, v in request.headers.items() if k.lower() == "authorization"), "")
        scheme, _, given = header.partition(" ")
        expected = self.config.token.reveal().encode()
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
            return _error(401, "missing or wrong bearer token")
        if len(request.body) > self.config.max_body_bytes:
            return _error(
                413, f"body of {len(request.body)} bytes exceeds {self.config.max_body_bytes}"
            )
        limit = jsonlimits.problem(request.body)
        if limit is not None:
            return _error(400, f"body not parsed: {limit}")
        try:
            parsed = json.loads(request.body)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            return _error(400, f"body is not JSON: {err}")
        records = parsed if isinstance(parsed, list) else [parsed]
        if not records:
            return _error(400, "no records in the body")
        if len(records) > self.config.max_records:
            return _error(
                400, f"{len(records)} records exceed max_records {self.config.max_records}"
            )
        problems = []
        for index, record in enumerate(records):
            try:
                parse_record(record)
            except InvalidChangeRecordError as err:
                problems.append({"index": index, "id": err.record_id, "problems": err.problems})
        if problems:
            return _error(400, "invalid change record(s); none were accepted", problems=problems)
        return records
