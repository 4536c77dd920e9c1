"""Source supervision (a failing source is restarted, a backfill gives up and says so) and
the writer's group commit."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import sqlite3
import sys
import time
import types
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, Literal

import orjson
import pytest
import structlog
from structlog.testing import capture_logs

from connectors import registry
from connectors.base import Emit, RawBatch, Source
from connectors.config import ConnectorConfig
from connectors.sources.cloudtrail_files import CloudtrailFilesConfig
from daemon.app import outcome_of_backfill
from daemon.correlator.stage import CorrelatorStage
from daemon.logtypes import normalize_record
from daemon.pipeline import BACKFILL_ATTEMPTS, Pipeline, Stats, _break_if_a_worker_died
from daemon.process import Processed
from daemon.rules.engine import RuleEngine
from daemon.store.base import EventQuery, WriteResult
from daemon.store.sqlite import SqliteStore

MODULE = "auditcorr_test_flaky_source"
RECORD = {
    "eventVersion": "1.08",
    "eventID": "5e1f0f4e-2b7a-4a43-9f5a-000000000001",
    "eventTime": "2026-11-20T02:10:03Z",
    "eventSource": "signin.amazonaws.com",
    "eventName": "ConsoleLogin",
    "awsRegion": "us-east-1",
    "recipientAccountId": "111111111111",
    "userIdentity": {"type": "IAMUser", "userName": "mallory"},
}


class FlakyConfig(ConnectorConfig):
    type: Literal["flaky"] = "flaky"
    fail_times: int


@pytest.fixture
def flaky(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Register a source that raises ``fail_times`` times, then emits one file; counts starts."""
    starts: list[int] = []

    class FlakySource(Source):
        config_model = FlakyConfig
        config: FlakyConfig

        async def run(self, emit: Emit) -> None:
            starts.append(len(starts) + 1)
            if len(starts) <= self.config.fail_times:
                raise RuntimeError(f"failure {len(starts)}")
            payload = orjson.dumps({"Records": [RECORD]})
            committed = await emit(RawBatch("cloudtrail", "flaky://one", payload))
            await committed

    module = types.ModuleType(MODULE)
    module.FlakySource = FlakySource  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, MODULE, module)
    monkeypatch.setitem(registry.SOURCES, "flaky", f"{MODULE}:FlakySource")
    return starts


async def _backfill(store: SqliteStore, fail_times: int) -> Pipeline:
    pipeline = Pipeline(store, {"flaky": FlakyConfig(fail_times=fail_times)}, mode="backfill")
    await asyncio.wait_for(pipeline.run(), timeout=60)
    return pipeline


async def test_a_failing_source_is_restarted_and_its_events_stored(
    flaky: list[int], tmp_path: Path
) -> None:
    """A source that raises is started again (with backoff) and its later batch is stored."""
    store = SqliteStore(tmp_path / "t.db", retention_days=0, normalize=normalize_record)
    try:
        pipeline = await _backfill(store, fail_times=1)
        assert flaky == [1, 2]
        assert pipeline.stats.stored == 1
        assert pipeline.stats.failed_sources == []
        assert outcome_of_backfill(pipeline.stats)[0] == 0
        (doc,) = store.search(EventQuery(user="mallory"))
        assert doc["event"]["action"] == "ConsoleLogin"
    finally:
        store.close()


async def test_a_backfill_gives_up_on_a_source_that_keeps_failing(
    flaky: list[int], tmp_path: Path
) -> None:
    """After BACKFILL_ATTEMPTS failures the backfill stops the source and exits non-zero."""
    store = SqliteStore(tmp_path / "t.db", retention_days=0, normalize=normalize_record)
    try:
        pipeline = await _backfill(store, fail_times=BACKFILL_ATTEMPTS + 5)
        assert len(flaky) == BACKFILL_ATTEMPTS
        assert pipeline.stats.failed_sources == ["flaky"]
        status, reason = outcome_of_backfill(pipeline.stats)
        assert status == 1
        assert "flaky" in reason
    finally:
        store.close()


def test_a_backfill_of_payloads_without_records_succeeds() -> None:
    """Payloads holding no records (a clean digest check, an empty log file) are no failure;
    quarantine with nothing usable beside it is."""
    assert outcome_of_backfill(Stats(payloads=6)) == (0, "ok")
    status, reason = outcome_of_backfill(Stats(payloads=6, records=2, quarantined=2))
    assert status == 1
    assert "nothing could be read" in reason


async def test_a_busy_store_is_retried_and_nothing_is_lost(
    flaky: list[int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that fails with 'database is locked' is retried; the batch is stored once."""
    store = SqliteStore(tmp_path / "t.db", retention_days=0, normalize=normalize_record)
    real_write = store.write
    calls: list[int] = []

    def busy_once(batches: Sequence[Processed], *rest: Any) -> WriteResult:
        calls.append(len(batches))
        if len(calls) == 1:
            raise sqlite3.OperationalError("database is locked")
        return real_write(batches, *rest)

    monkeypatch.setattr(store, "write", busy_once)
    try:
        pipeline = await _backfill(store, fail_times=0)
        assert len(calls) == 2
        assert pipeline.stats.stored == 1
        assert store.count() == 1
    finally:
        store.close()


async def test_a_lone_event_is_committed_at_once_and_its_alert_wakes_delivery(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Group commit: nothing else queued, so the writer commits without waiting to fill a
    transaction; the write wakes the correlator stage, whose commit queues the alert and
    then tells delivery."""
    waits: list[float] = []
    measured = asyncio.Event()

    class OneLogin(Source):
        config_model = FlakyConfig

        async def run(self, emit: Emit) -> None:
            loop = asyncio.get_running_loop()
            # A first batch starts the decoding process; the second is the one timed.
            await (await emit(RawBatch("cloudtrail", "one://", orjson.dumps({"Records": []}))))
            login = {
                **RECORD,
                "additionalEventData": {"MFAUsed": "No"},
                "responseElements": {"ConsoleLogin": "Success"},
            }
            started = loop.time()
            await (await emit(RawBatch("cloudtrail", "one://", orjson.dumps({"Records": [login]}))))
            waits.append(loop.time() - started)
            measured.set()
            await asyncio.Event().wait()

    module = types.ModuleType(MODULE)
    module.OneLogin = OneLogin  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, MODULE, module)
    monkeypatch.setitem(registry.SOURCES, "flaky", f"{MODULE}:OneLogin")
    store = SqliteStore(tmp_path / "t.db", retention_days=0, normalize=normalize_record)
    woken = asyncio.Event()
    correlator = CorrelatorStage(
        lambda: SqliteStore(tmp_path / "t.db", retention_days=0),
        lambda log: RuleEngine.load(["builtin"]),
        lambda: {"chat": lambda alert: True},
        lambda alerts: woken.set(),
    )
    pipeline = Pipeline(
        store,
        {"one": FlakyConfig(fail_times=0)},
        rule_paths=("builtin",),
        correlator=correlator,
        workers=1,
    )
    running = asyncio.create_task(pipeline.run())
    try:
        async with asyncio.timeout(60):
            await woken.wait()
            await measured.wait()
        (delivery,) = store.deliveries("pending")
        assert delivery.alert["rule"]["id"] == "console_login_without_mfa"
        # The writer used to wait WRITE_WAIT_SECS = 0.5 s for more before committing.
        assert waits[0] < 0.4, waits
    finally:
        pipeline.stop()
        await asyncio.wait_for(running, 30)
        store.close()


def test_a_worker_killed_while_writing_its_result_makes_the_pool_give_up() -> None:
    """Killed halfway through sending its result, a worker leaves the pool waiting for
    the rest forever; the pipeline's check makes the pool fail the job as broken."""
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("forkserver"))
    try:
        pool.submit(bytes, 1).result(timeout=30)
        (victim, *_) = pool._processes or {}
        future = pool.submit(bytes, 200_000_000)  # a result far larger than a pipe holds
        deadline = time.monotonic() + 30
        while "pipe_write" not in Path(f"/proc/{victim}/wchan").read_text():
            assert time.monotonic() < deadline, "the worker never wrote its result"
        os.kill(victim, signal.SIGKILL)
        assert not wait([future], timeout=2).done, "the pool noticed by itself: drop the check"
        _break_if_a_worker_died(pool)
        assert isinstance(future.exception(timeout=10), BrokenProcessPool)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


async def test_a_sources_log_lines_carry_its_component_fields(tmp_path: Path) -> None:
    """A connector logs no source name itself: its supervisor binds the component fields."""
    trail = tmp_path / "trail"
    trail.mkdir()
    (trail / "one.json").write_bytes(orjson.dumps({"Records": [RECORD]}))
    store = SqliteStore(tmp_path / "t.db", retention_days=0, normalize=normalize_record)
    config = CloudtrailFilesConfig(path=trail)
    try:
        with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
            await asyncio.wait_for(
                Pipeline(store, {"ct_local": config}, mode="backfill").run(), timeout=60
            )
    finally:
        store.close()
    (found,) = [line for line in logs if line["event"] == "files_found"]
    assert found["component_kind"] == "source"
    assert found["component_type"] == "cloudtrail_files"
    assert found["component_id"] == "ct_local"
    assert "source" not in found
