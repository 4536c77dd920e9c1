"""cloudtrail_lookup against a LookupEvents server over real HTTP (STS through moto)."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from itsupport import Workspace, log_name, put_file, records_file
from lookupserver import OWN_ACCOUNT, LookupServer, record
from test_cloudtrail_s3_cli import write_config
from trail import Collector, run_source

import connectors.sources.cloudtrail_lookup as lookup_module
from connectors.base import RawBatch, SourceContext
from connectors.sources.cloudtrail_lookup import CloudtrailLookupConfig, CloudtrailLookupSource


def source(endpoint: str, checkpoints: dict[str, Any] | None = None, **settings: Any) -> Any:
    config = CloudtrailLookupConfig.model_validate(
        {
            "type": "cloudtrail_lookup",
            "endpoint_url": endpoint,
            "region": "us-east-1",
            "lookback_secs": 0,
            **settings,
        }
    )
    return CloudtrailLookupSource(config, SourceContext("ct_lookup", checkpoints or {}, "backfill"))


def history(server: LookupServer, n: int, *, prefix: str = "e", **where: str) -> list[str]:
    """``n`` events over the last 40 minutes, three at each second."""
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=40)
    ids = [f"{prefix}-{i:04d}" for i in range(n)]
    account, region = where.get("account", OWN_ACCOUNT), where.get("region", "us-east-1")
    server.add(
        account, region, [record(e, base + timedelta(seconds=i // 3)) for i, e in enumerate(ids)]
    )
    return ids


def emitted_in_order(batches: list[RawBatch]) -> list[str]:
    return [
        r["eventID"] for b in batches if not b.error for r in orjson.loads(b.payload)["Records"]
    ]


async def test_pages_are_read_oldest_first(lookup_server: LookupServer) -> None:
    """Several pages, newest first from the API, reach the pipeline oldest first, each once."""
    ids = history(lookup_server, 180)
    emit = Collector()
    await run_source(source(lookup_server.endpoint), emit)
    assert emitted_in_order(emit.batches) == ids
    tokens = [c.body.get("NextToken") for c in lookup_server.calls]
    assert len(tokens) == 4
    assert tokens[0] is None
    assert all(tokens[1:])
    assert set(emit.checkpoints()) == {"us-east-1"}


async def test_resume_after_a_crash_loses_and_repeats_nothing(
    lookup_server: LookupServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed after two committed batches; the restart from their checkpoint emits exactly
    the rest, although a second's events were split across batches."""
    monkeypatch.setattr(lookup_module, "BATCH", 10)
    ids = history(lookup_server, 95)

    class CrashError(Exception):
        pass

    committed = Collector()

    async def crashing(batch: RawBatch) -> Any:
        if len(committed.batches) == 2:
            raise CrashError
        return await committed(batch)

    with pytest.raises(ExceptionGroup) as crashed:
        await run_source(source(lookup_server.endpoint), crashing)
    assert crashed.group_contains(CrashError)
    first = emitted_in_order(committed.batches)
    assert first == ids[:20]
    assert committed.checkpoints()["us-east-1"]["ids"] == ["e-0018", "e-0019"]

    lookup_server.add(OWN_ACCOUNT, "us-east-1", [record("new", datetime.now(UTC))])
    rest = Collector()
    await run_source(source(lookup_server.endpoint, committed.checkpoints()), rest)
    assert emitted_in_order(rest.batches) == [*ids[20:], "new"]


async def test_accounts_regions_pace_and_filter(lookup_server: LookupServer) -> None:
    """Each account (through its role) and region is read on its own, at most 2 calls/s each."""
    accounts = {"111111111111": "reader", "222222222222": "reader"}
    roles = {a: f"arn:aws:iam::{a}:role/{name}" for a, name in accounts.items()}
    expected = set()
    for account in accounts:
        for region in ("us-east-1", "eu-west-1"):
            tag = f"{account[:1]}{region[:2]}"
            expected |= set(history(lookup_server, 110, prefix=tag, account=account, region=region))
    lookup_server.add(OWN_ACCOUNT, "us-east-1", [record("not-mine", datetime.now(UTC))])
    emit = Collector()
    await run_source(
        source(lookup_server.endpoint, account_roles=roles, regions=["us-east-1", "eu-west-1"]),
        emit,
    )
    assert emit.event_ids() == dict.fromkeys(expected, 1)
    assert set(emit.checkpoints()) == {
        f"{a}/{r}" for a in accounts for r in ("us-east-1", "eu-west-1")
    }
    for scope in {(c.account, c.region) for c in lookup_server.calls}:
        times = [c.at for c in lookup_server.calls if (c.account, c.region) == scope]
        assert len(times) == 3
        # Paced at the client: 0.5 s apart on leaving, 1 s from the first to the third.
        # Times are taken on arrival, where a loaded machine can delay the first call (new
        # connection, role) more than the last (0.73 s from first to last was seen); at
        # least one whole interval still shows, and unpaced the three would arrive within
        # a few milliseconds.
        assert times[-1] - times[0] >= 0.5, scope

    lookup_server.calls.clear()
    only = Collector()
    await run_source(
        source(lookup_server.endpoint, lookup_attributes={"EventId": "not-mine"}), only
    )
    assert set(only.event_ids()) == {"not-mine"}
    assert lookup_server.calls[0].body["LookupAttributes"] == [
        {"AttributeKey": "EventId", "AttributeValue": "not-mine"}
    ]


async def test_throttling_is_retried_with_backoff(lookup_server: LookupServer) -> None:
    """ThrottlingException answers are retried; every event still arrives once."""
    ids = history(lookup_server, 60)
    lookup_server.throttle = 2
    emit = Collector()
    began = asyncio.get_running_loop().time()
    await run_source(source(lookup_server.endpoint), emit)
    assert emitted_in_order(emit.batches) == ids
    assert [c.throttled for c in lookup_server.calls] == [True, True, False, False]
    assert asyncio.get_running_loop().time() - began < 30


def test_backfill_stores_an_event_also_read_from_files_once(
    lookup_server: LookupServer, tmp_path: Path
) -> None:
    """``auditcorr backfill`` with the API and a trail folder holding the same events: each once."""
    ids = history(lookup_server, 70)
    shared = [r for records in lookup_server.events.values() for r in records][:30]
    workspace = Workspace(tmp_path / "ws")
    put_file(workspace.data, log_name("a"), records_file(shared))
    lookup = {
        "type": "cloudtrail_lookup",
        "endpoint_url": lookup_server.endpoint,
        "region": "us-east-1",
    }
    files = {"type": "cloudtrail_files", "path": str(workspace.data)}
    write_config(workspace, {"ct_api": lookup, "ct_files": files})

    result = workspace.backfill()
    assert result.returncode == 0, str(result)
    assert sorted(workspace.timeline_ids()) == sorted(ids)
    again = workspace.backfill()
    assert again.returncode == 0, str(again)
    assert again.summary["stored"] == 0
    assert workspace.count() == 70


async def test_a_ranged_backfill_reads_the_range_only(lookup_server: LookupServer) -> None:
    """``backfill --since/--until``: only the events of the range, and no checkpoint."""
    ids = history(lookup_server, 90)
    first = datetime.fromisoformat(
        next(r for r in lookup_server.events[OWN_ACCOUNT, "us-east-1"] if r["eventID"] == ids[30])[
            "eventTime"
        ].replace("Z", "+00:00")
    )
    config = CloudtrailLookupConfig.model_validate(
        {"type": "cloudtrail_lookup", "endpoint_url": lookup_server.endpoint, "region": "us-east-1"}
    )
    context = SourceContext(
        "ct_lookup", {}, "backfill", since=first, until=first + timedelta(seconds=9)
    )
    emit = Collector()
    await run_source(CloudtrailLookupSource(config, context), emit)
    assert emitted_in_order(emit.batches) == ids[30:60]
    assert emit.checkpoints() == {}


async def test_following_polls_look_back_without_sending_events_again(
    lookup_server: LookupServer,
) -> None:
    """In ``run``, each poll reads the lookback again: a late event in it is picked up, the
    events already sent are not sent again."""
    ids = history(lookup_server, 40)
    config = CloudtrailLookupConfig.model_validate(
        {
            "type": "cloudtrail_lookup",
            "endpoint_url": lookup_server.endpoint,
            "region": "us-east-1",
            "poll_interval_secs": 0.2,
            "lookback_secs": 600,
        }
    )
    emit = Collector()
    source = CloudtrailLookupSource(config, SourceContext("ct_lookup", {}, "follow"))
    async with source:
        task = asyncio.create_task(source.run(emit))
        try:
            await emit.wait_for(1)
            late = datetime.now(UTC) - timedelta(minutes=3)
            lookup_server.add(OWN_ACCOUNT, "us-east-1", [record("late", late)])
            await emit.wait_for(2)
            polls = len(lookup_server.calls)
            await asyncio.sleep(1.5)
            assert len(lookup_server.calls) >= polls + 2, "more polls over the same lookback"
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    assert emit.event_ids() == dict.fromkeys([*ids, "late"], 1)
