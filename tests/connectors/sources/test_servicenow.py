"""The servicenow source against a local server speaking the Table API's documented format."""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from structlog.testing import capture_logs

from connectors.base import AuthError, RawBatch, SourceContext
from connectors.config import Secret
from connectors.sources.servicenow import ServicenowConfig, ServicenowSource
from daemon.logtypes import normalize_record
from daemon.pipeline import Pipeline
from daemon.store.sqlite import SqliteStore

USER, PASSWORD = "auditcorr", "pw"


def row(
    number: str, updated: str, *, state: str = "-2", mods: int = 1, who: str = "Alice Smith"
) -> dict[str, Any]:
    """A change_request row as sysparm_display_value=all returns it."""

    def cell(value: str, display: str | None = None) -> dict[str, str]:
        return {"display_value": display if display is not None else value, "value": value}

    states = {"-2": "Scheduled", "-1": "Implement", "4": "Canceled", "3": "Closed"}
    return {
        "sys_id": cell(f"sys{number}"),
        "number": cell(number),
        "short_description": cell(f"Work for {number}"),
        "state": cell(state, states.get(state, state)),
        "start_date": cell("2026-11-20 09:00:00", "2026-11-20 18:00:00"),
        "end_date": cell("2026-11-20 09:30:00", "2026-11-20 18:30:00"),
        "assigned_to": cell("6816f79cc0a8016401c5a33be04be441", who),
        "requested_by": cell("5137153cc611227c000bbd1bd8cd2005", "Dave Ops"),
        "cmdb_ci": cell("b0c25d1bc0a800090168be1bfcdcd759", "web01"),
        "sys_updated_on": cell(updated, updated),
        "sys_mod_count": cell(str(mods)),
    }


def failure(status: int, message: str, detail: str) -> web.Response:
    """An error answer in the Table API's format."""
    body = {"error": {"message": message, "detail": detail}, "status": "failure"}
    return web.json_response(body, status=status)


@dataclass
class FakeServicenow:
    rows: list[dict[str, Any]]
    requests: list[dict[str, str]] = field(default_factory=list)
    token: str | None = None
    """When set, only ``Authorization: Bearer <token>`` is let in; else Basic USER:PASSWORD."""
    readable: bool = True
    """False: the login is good but lacks the table's read role (HTTP 403)."""
    authorizations: list[str] = field(default_factory=list)
    """The Authorization header of every request, as sent."""

    async def table(self, request: web.Request) -> web.Response:
        sent = request.headers.get("Authorization", "")
        self.authorizations.append(sent)
        if self.token is not None:
            expected = f"Bearer {self.token}"
        else:
            expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if sent != expected:
            return failure(401, "User Not Authenticated", "Required to provide Auth information")
        if not self.readable:
            return failure(403, "User Not Authorized", "ACL restricts the table")
        query = dict(request.query)
        self.requests.append(query)
        found = re.search(r"sys_updated_on>=([0-9: -]+)", query.get("sysparm_query", ""))
        rows = [r for r in self.rows if not found or r["sys_updated_on"]["value"] >= found[1]]
        rows.sort(key=lambda r: (r["sys_updated_on"]["value"], r["sys_id"]["value"]))
        offset, limit = int(query.get("sysparm_offset", 0)), int(query.get("sysparm_limit", 10000))
        page = rows[offset : offset + limit]
        headers = {"X-Total-Count": str(len(rows))}
        if offset + limit < len(rows):
            following = request.url.with_query({**query, "sysparm_offset": str(offset + limit)})
            headers["Link"] = f'<{following}>;rel="next"'
        return web.json_response({"result": page}, headers=headers)


@pytest.fixture
async def servicenow() -> AsyncIterator[tuple[FakeServicenow, str]]:
    fake = FakeServicenow(
        [
            row("CHG0040001", "2026-11-19 10:00:00"),
            row("CHG0040002", "2026-11-19 10:00:00", state="-1"),
            row("CHG0040003", "2026-11-19 11:00:00", state="4"),
            row("CHG0040004", "2026-11-19 12:00:00", who="Bob Jones"),
            row("CHG0040005", "2026-11-19 12:30:00", state="3"),
        ]
    )
    app = web.Application()
    app.router.add_get("/api/now/table/change_request", fake.table)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield fake, f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


def config(url: str, **extra: Any) -> ServicenowConfig:
    values = {
        "type": "servicenow",
        "endpoint": url,
        "username": USER,
        "password": Secret(PASSWORD, "inline"),
        "page_size": 2,
        **extra,
    }
    return ServicenowConfig.model_validate(values)


async def backfill(
    cfg: ServicenowConfig, checkpoints: dict[str, Any] | None = None
) -> list[RawBatch]:
    emitted: list[RawBatch] = []

    async def emit(batch: RawBatch) -> Any:
        emitted.append(batch)

    async with ServicenowSource(
        cfg, SourceContext("snow", checkpoints or {}, mode="backfill")
    ) as source:
        await source.run(emit)
    return emitted


def records(batches: list[RawBatch]) -> list[dict[str, Any]]:
    return [r for b in batches for r in orjson.loads(b.payload)]


async def test_pages_are_read_and_rows_mapped(servicenow: tuple[FakeServicenow, str]) -> None:
    """Five rows, two per page: three payloads, each row in the record's JSON form."""
    fake, url = servicenow
    batches = await backfill(config(url))
    assert [len(orjson.loads(b.payload)) for b in batches] == [2, 2, 1]
    assert [q["sysparm_offset"] for q in fake.requests] == ["0", "2", "4"]
    assert fake.requests[0]["sysparm_query"] == "ORDERBYsys_updated_on^ORDERBYsys_id"
    found = records(batches)
    assert [(r["id"], r["state"]) for r in found] == [
        ("CHG0040001", "approved"),
        ("CHG0040002", "implementing"),
        ("CHG0040003", "cancelled"),
        ("CHG0040004", "approved"),
        ("CHG0040005", "completed"),
    ]
    assert found[0] == {
        "id": "CHG0040001",
        "title": "Work for CHG0040001",
        "state": "approved",
        "requested_by": "Dave Ops",
        "implementers": ["Alice Smith"],
        "window": {"start": "2026-11-20T09:00:00Z", "end": "2026-11-20T09:30:00Z"},
        "scope": {"hosts": ["web01"]},
        "updated": "2026-11-19T10:00:00Z",
        "version": 1,
        "url": f"{url}/nav_to.do?uri=change_request.do?sys_id=sysCHG0040001",
    }
    assert batches[-1].checkpoints[0].value == {
        "sys_updated_on": "2026-11-19 12:30:00",
        "sys_ids": ["sysCHG0040005"],
    }


async def test_the_watermark_resumes_and_finds_updates(
    servicenow: tuple[FakeServicenow, str],
) -> None:
    """From a committed watermark nothing is read twice; an updated row is read again."""
    fake, url = servicenow
    first = await backfill(config(url))
    mark = {"watermark": first[-1].checkpoints[0].value}
    assert records(await backfill(config(url), mark)) == []
    assert fake.requests[-1]["sysparm_query"].startswith("sys_updated_on>=2026-11-19 12:30:00^")
    fake.rows[0] = row("CHG0040001", "2026-11-20 09:40:00", state="3", mods=2)
    (updated,) = records(await backfill(config(url), mark))
    assert (updated["id"], updated["state"], updated["version"]) == ("CHG0040001", "completed", 2)


async def test_rows_of_one_second_across_pages_are_not_lost(
    servicenow: tuple[FakeServicenow, str],
) -> None:
    """Two rows share 10:00:00 and a page ends between them: the second still arrives."""
    _, url = servicenow
    batches = await backfill(config(url, page_size=1))
    assert len(records(batches)) == 5
    mark = {"watermark": batches[0].checkpoints[0].value}
    rest = records(await backfill(config(url), mark))
    assert [r["id"] for r in rest] == ["CHG0040002", "CHG0040003", "CHG0040004", "CHG0040005"]


async def test_a_custom_mapping_and_state_table(servicenow: tuple[FakeServicenow, str]) -> None:
    """Configured fields, states and query replace the defaults in the mapping and request."""
    fake, url = servicenow
    cfg = config(
        url,
        fields={
            "id": "number",
            "state": "state",
            "window_start": "start_date",
            "window_end": "end_date",
            "resources": "cmdb_ci",
        },
        states={"-2": "approved", "-1": "approved", "4": "rejected", "3": "completed"},
        query="type=normal",
    )
    found = records(await backfill(cfg))
    assert found[2]["state"] == "rejected"
    assert found[0]["scope"] == {"resources": ["web01"]}
    assert "implementers" not in found[0]
    assert fake.requests[0]["sysparm_query"] == "type=normal^ORDERBYsys_updated_on^ORDERBYsys_id"


async def test_wrong_credentials_are_an_auth_error(servicenow: tuple[FakeServicenow, str]) -> None:
    """A refused password is an AuthError naming the user and ServiceNow's reason."""
    _, url = servicenow
    with pytest.raises(AuthError) as refused:
        await backfill(config(url, password=Secret("wrong", "inline")))
    assert (
        str(refused.value) == "ServiceNow refused user 'auditcorr': HTTP 401 User Not Authenticated"
    )


def token_config(url: str) -> ServicenowConfig:
    """The source logging in with the bearer token in SNOW_TOKEN, as ``env:SNOW_TOKEN``."""
    return ServicenowConfig.model_validate(
        {"type": "servicenow", "endpoint": url, "token": "env:SNOW_TOKEN", "page_size": 2}
    )


async def test_the_bearer_token_from_env_is_sent(
    servicenow: tuple[FakeServicenow, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """token = "env:NAME": every request carries ``Authorization: Bearer`` and the value."""
    fake, url = servicenow
    fake.token = "oauth-access-token"
    monkeypatch.setenv("SNOW_TOKEN", "oauth-access-token")
    assert len(records(await backfill(token_config(url)))) == 5
    assert set(fake.authorizations) == {"Bearer oauth-access-token"}
    assert len(fake.authorizations) == 3


async def test_a_wrong_token_is_an_auth_error_that_names_where_it_came_from(
    servicenow: tuple[FakeServicenow, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 401 for the token is an AuthError naming its env: reference, never its value."""
    fake, url = servicenow
    fake.token = "oauth-access-token"
    monkeypatch.setenv("SNOW_TOKEN", "expired-token")
    with pytest.raises(AuthError) as refused:
        await backfill(token_config(url))
    assert str(refused.value) == (
        "ServiceNow refused the bearer token (env:SNOW_TOKEN): HTTP 401 User Not Authenticated"
    )
    assert fake.authorizations == ["Bearer expired-token"]


async def test_a_login_without_the_read_role_is_an_auth_error_naming_the_table(
    servicenow: tuple[FakeServicenow, str],
) -> None:
    """A 403 (login good, table not readable) is an AuthError that says which table."""
    fake, url = servicenow
    fake.readable = False
    with pytest.raises(AuthError) as denied:
        await backfill(config(url))
    assert str(denied.value) == (
        "ServiceNow denied user 'auditcorr' read access to table 'change_request':"
        " HTTP 403 User Not Authorized"
    )


async def test_a_refused_token_is_logged_as_an_auth_failure_without_the_secret(
    servicenow: tuple[FakeServicenow, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Through the real pipeline: each attempt logs source_failed with error_type AuthError
    and the reason, the backfill gives up on the source, and the token shows in no log."""
    fake, url = servicenow
    fake.token = "oauth-access-token"
    monkeypatch.setenv("SNOW_TOKEN", "expired-token")
    store = SqliteStore(tmp_path / "timeline.db", retention_days=0, normalize=normalize_record)
    try:
        with capture_logs() as logs:
            await Pipeline(store, {"snow": token_config(url)}, mode="backfill", workers=1).run()
    finally:
        store.close()
    failed = [entry for entry in logs if entry["event"] == "source_failed"]
    assert len(failed) == len(fake.authorizations) >= 2
    assert {(entry["error_type"], entry["log_level"]) for entry in failed} == {
        ("AuthError", "error")
    }
    assert "refused the bearer token (env:SNOW_TOKEN): HTTP 401" in failed[0]["error"]
    assert any(entry["event"] == "source_given_up" for entry in logs)
    assert "expired-token" not in repr(logs)


def test_credentials_are_required() -> None:
    """A config with neither a login nor a token is refused at load."""
    with pytest.raises(ValueError, match="username and password, or token"):
        ServicenowConfig.model_validate(
            {"type": "servicenow", "endpoint": "https://x.service-now.com"}
        )


async def test_records_reach_the_change_book(
    servicenow: tuple[FakeServicenow, str], tmp_path: Path
) -> None:
    """Through the real pipeline: every valid row is a current record with its window
    events; a row whose window ends before it starts is quarantined, the others land."""
    fake, url = servicenow
    backwards = row("CHG0040006", "2026-11-19 13:00:00")
    backwards["end_date"] = {"display_value": "", "value": "2026-11-20 08:00:00"}
    fake.rows.append(backwards)
    store = SqliteStore(tmp_path / "timeline.db", retention_days=0, normalize=normalize_record)
    try:
        await Pipeline(store, {"snow": config(url)}, mode="backfill", workers=1).run()
        current = store.change_records()
        assert [r["id"] for r in current] == [f"CHG004000{n}" for n in range(1, 6)]
        # approved, implementing, completed x2 open windows; the cancelled one does not.
        assert store.count() == 5 + 2 * 4
        assert store.checkpoints("snow")["watermark"]["sys_updated_on"] == "2026-11-19 13:00:00"
        (kept,) = store.quarantine()
        assert "change record 'CHG0040006': window ends" in kept.reason
    finally:
        store.close()
