"""The console output: what an operator reads on stdout (or stderr), as its docs page shows it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from deliverysupport import delivering, make_alert, queue, wait_until

from connectors.base import Notification, OutputContext
from connectors.outputs.console import ConsoleConfig, ConsoleOutput
from daemon.store.sqlite import SqliteStore

PAGE = Path(__file__).resolve().parents[3] / "docs" / "outputs" / "console.md"


def documented_block() -> str:
    """The first ```text block under "What it sends" on the docs page."""
    section = PAGE.read_text().split("## What it sends", 1)[1]
    found = re.search(r"```text\n(.*?)```", section, re.S)
    assert found, "console.md shows what it prints in a ```text block"
    return found.group(1)


@pytest.mark.parametrize("endpoint", ["stdout", "stderr"])
async def test_an_alert_prints_the_documented_block(
    store: SqliteStore, capfd: pytest.CaptureFixture[str], endpoint: str
) -> None:
    """Through the delivery service, one alert prints the docs page's block (its alert id
    aside) once, then a blank line, on the configured stream only."""
    outputs = {"screen": ConsoleConfig(type="console", endpoint=endpoint)}
    alert = make_alert()
    queue(store, outputs, [alert])
    async with delivering(store, outputs, timezone="Asia/Tokyo"):
        await wait_until(lambda: store.deliveries("sent"))
    out, err = capfd.readouterr()
    printed, other = (out, err) if endpoint == "stdout" else (err, out)
    expected = re.sub(r"alert: [0-9a-f]{32}", f"alert: {alert.id}", documented_block())
    assert printed.count(expected + "\n") == 1, printed
    assert "Console login without MFA" not in other


async def test_a_summary_prints_one_line_per_alert_under_its_headline(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A summary is a headline with the count and worst severity, then one line per alert."""
    first, second = make_alert(0), make_alert(1, severity="critical", title="Root login")
    summary = Notification("summary", [first.to_json(), second.to_json()], "group-key")
    output = ConsoleOutput(ConsoleConfig(type="console"), OutputContext("screen", "Asia/Tokyo"))
    async with output:
        await output.send(summary)
    assert capsys.readouterr().out == (
        "[CRITICAL] 2 alerts (summary over the rate limit)\n"
        "  HIGH Console login without MFA — alice @ 111111111111/ap-northeast-1,"
        " 2026-11-20 18:00:30 Asia/Tokyo\n"
        "  CRITICAL Root login — alice @ 111111111111/ap-northeast-1,"
        " 2026-11-20 18:01:30 Asia/Tokyo\n"
        "\n"
    )
