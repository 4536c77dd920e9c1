"""Metrics a running source publishes reach ``/metrics`` with its id as ``source`` label."""

from __future__ import annotations

import asyncio
import sys
import types
from pathlib import Path
from typing import ClassVar, Literal

import pytest
from metricsupport import samples, scrape, value

from connectors import registry
from connectors.base import Emit, Metric, Source
from connectors.config import ConnectorConfig
from daemon.logtypes import normalize_record
from daemon.pipeline import Pipeline
from daemon.store.sqlite import SqliteStore

MODULE = "auditcorr_test_counting_source"


class CountingConfig(ConnectorConfig):
    type: Literal["counting"] = "counting"


class CountingSource(Source):
    """Counts its polls and publishes the count while it waits to be cancelled."""

    config_model = CountingConfig
    polls = 0
    warm: ClassVar[list[str]] = []
    """Ids of the instances that have polled twice."""
    all_warm = asyncio.Event()

    async def run(self, emit: Emit) -> None:
        while True:
            self.polls += 1
            if self.polls == 2:
                self.warm.append(self.context.source_id)
                if len(self.warm) == 2:
                    self.all_warm.set()
            await asyncio.sleep(0.05)

    def metrics(self) -> list[Metric]:
        return [
            Metric("counting_polls_total", self.polls, {"zone": 'a"b'}, "Polls made"),
            Metric("counting_ratio", 0.25, kind="gauge"),
        ]


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType(MODULE)
    module.CountingSource = CountingSource  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, MODULE, module)
    monkeypatch.setitem(registry.SOURCES, "counting", f"{MODULE}:CountingSource")


async def test_running_sources_publish_their_metrics(counting: None, tmp_path: Path) -> None:
    """While it runs, the source's samples are exposed; once stopped, they are gone."""
    store = SqliteStore(tmp_path / "t.db", retention_days=0, normalize=normalize_record)
    pipeline = Pipeline(store, {"ct_a": CountingConfig(), "ct_b": CountingConfig()}, workers=1)
    task = asyncio.create_task(pipeline.run())
    try:
        await asyncio.wait_for(CountingSource.all_warm.wait(), 20)
        assert set(pipeline.running) == {"ct_a", "ct_b"}
        text = scrape(pipeline)
        lines = text.splitlines()
        assert "# HELP auditcorr_counting_polls_total Polls made." in lines
        assert "# TYPE auditcorr_counting_polls_total counter" in lines
        assert "# TYPE auditcorr_counting_ratio gauge" in lines
        found = samples(text)
        assert value(found, "auditcorr_counting_ratio", source="ct_a") == 0.25
        polls = {
            dict(labels)["source"]: (dict(labels)["zone"], count)
            for (name, labels), count in found.items()
            if name == "auditcorr_counting_polls_total"
        }
        assert set(polls) == {"ct_a", "ct_b"}
        assert all(zone == 'a"b' and count >= 2 for zone, count in polls.values())
        with pytest.raises(TypeError):
            pipeline.running["x"] = pipeline.running["ct_a"]  # type: ignore[index]
    finally:
        pipeline.stop()
        await asyncio.wait_for(task, 20)
        store.close()
    assert not pipeline.running
    assert "counting" not in scrape(pipeline)
