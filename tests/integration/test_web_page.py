"""The web timeline in headless Chromium, against a daemon holding the demo.

Screenshots at 1280 px and at phone width go to ``$TEST_ARTIFACTS`` (default
``test-artifacts/`` in the repository) for a person to look at.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from apisupport import ApiDaemon, serve_demo
from cdp import Browser, find_chromium
from itsupport import REPO, log_name, put_file, records_file

pytestmark = pytest.mark.integration

ZONE = "Asia/Tokyo"
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", REPO / "test-artifacts")) / "web"
ROWS = "document.querySelectorAll('.event').length"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiDaemon]:
    find_chromium()
    with serve_demo(tmp_path_factory.mktemp("web"), listen="127.0.0.1:0", timezone=ZONE) as served:
        yield served


async def open_page(browser: Browser, api: ApiDaemon, fragment: str = "") -> None:
    await browser.send("Page.navigate", url=f"{api.url}{fragment}")
    await browser.wait_for("document.body && document.body.dataset.ready === 'true'")


async def test_page_shows_the_timeline_and_filters_it(api: ApiDaemon, tmp_path: Path) -> None:
    """Rows with lane badges and local times, a histogram; search, click-to-filter and Esc work."""
    async with Browser(tmp_path / "profile") as browser:
        await browser.viewport(1280, 900)
        await open_page(browser, api)
        assert await browser.evaluate(ROWS) == 100
        first = await browser.evaluate(
            "(() => { const r = document.querySelector('.event');"
            " return {time: r.querySelector('time').textContent,"
            " utc: r.querySelector('time').dateTime, title: r.querySelector('time').title,"
            " badge: r.querySelector('.badge').textContent,"
            " lane: r.querySelector('.badge').className}; })()"
        )
        utc = datetime.fromisoformat(first["utc"])
        assert first["time"] == f"{utc.astimezone(ZoneInfo(ZONE)):%Y-%m-%d %H:%M:%S}"
        assert first["title"] == f"{first['utc']} (UTC)"
        assert first["badge"].startswith("AWS ")
        assert first["lane"] == "badge cloud"
        assert await browser.evaluate("document.querySelectorAll('#chart rect').length") > 10
        await browser.wait_for("document.querySelectorAll('#alerts .alert-item').length > 0")
        sources = await browser.evaluate("document.querySelector('#sources').textContent")
        assert sources.startswith("demo")
        assert "377 stored" in sources
        await browser.screenshot(ARTIFACTS / "timeline-1280.png")

        # Keyboard: "/" focuses the search box, typing and Enter search.
        await browser.evaluate("document.activeElement.blur()")
        await browser.key("/", "/")
        assert await browser.evaluate("document.activeElement.id") == "q"
        await browser.send("Input.insertText", text="StopLogging")
        await browser.key("Enter", "\r")
        await browser.wait_for(f"{ROWS} === 1")
        assert await browser.evaluate("document.querySelector('.event .action').textContent") == (
            "StopLogging"
        )
        assert "text: StopLogging" in await browser.evaluate(
            "document.querySelector('#chips').textContent"
        )

        # Clicking the person adds a chip for them; removing the text chip leaves
        # all of mallory's events.
        await browser.evaluate("document.querySelector('.event .who .link').click()")
        await browser.wait_for("location.hash.includes('user=mallory')")
        await browser.evaluate("document.querySelector('.chip[data-filter=q] button').click()")
        expected = len(api.get("/api/v1/events?user=mallory").json()["events"])
        assert expected > 1
        await browser.wait_for(f"{ROWS} === {expected}")
        whos = await browser.evaluate(
            "[...document.querySelectorAll('.event .who')].map(e => e.textContent)"
        )
        assert set(whos) == {"mallory"}
        assert await browser.evaluate("location.hash") == "#user=mallory"

        # Esc clears every filter: the whole timeline again.
        await browser.evaluate("document.activeElement.blur()")
        await browser.key("Escape")
        await browser.wait_for(f"{ROWS} === 100 && location.hash === ''")

        # j moves through rows; Enter opens the event with its original record.
        await browser.key("j", "j")
        await browser.key("j", "j")
        focused = await browser.evaluate("document.activeElement.dataset.id")
        assert focused == await browser.evaluate(
            "document.querySelectorAll('.event')[1].dataset.id"
        )
        await browser.key("Enter", "\r")
        await browser.wait_for(
            "document.activeElement.querySelector('.details').textContent.includes('eventName')"
        )


async def test_an_alert_shows_its_evidence_and_coverage(api: ApiDaemon, tmp_path: Path) -> None:
    """Clicking an alert narrows the timeline to it, highlights its evidence event and
    tells below it whether a change record covered that event."""
    (alert,) = api.get("/api/v1/alerts?rule=cloudtrail_tampering").json()["alerts"]
    (evidence,) = alert["evidence"]
    async with Browser(tmp_path / "profile") as browser:
        await browser.viewport(1280, 900)
        await open_page(browser, api)
        button = f"document.querySelector('li[data-alert=\"{alert['id']}\"] .alert-item')"
        await browser.wait_for(f"!!{button}")
        await browser.evaluate(f"{button}.click()")
        await browser.wait_for("!!document.querySelector('.story:not([hidden]) .coverage')")
        marked = await browser.evaluate(
            "[...document.querySelectorAll('.event.evidence')].map(r => r.dataset.eventId)"
        )
        assert marked == [evidence["id"]]
        assert "since=" in await browser.evaluate("location.hash")
        assert await browser.evaluate("document.activeElement.dataset.eventId") == evidence["id"]
        story = await browser.evaluate("document.querySelector('.story:not([hidden])').textContent")
        assert "StopLogging" in story
        assert "not covered: no change record within a week" in story
        await browser.screenshot(ARTIFACTS / "alert-evidence-1280.png")


async def test_new_events_appear_while_the_page_is_open(api: ApiDaemon, tmp_path: Path) -> None:
    """A file dropped into the source shows up on the open page without a reload."""
    async with Browser(tmp_path / "profile") as browser:
        await browser.viewport(1280, 900)
        await open_page(browser, api)
        record = {
            "eventVersion": "1.09",
            "eventID": "6f1c2d3e-0000-4000-8000-live00000001",
            "eventTime": "2026-11-20T23:59:30Z",
            "eventSource": "iam.amazonaws.com",
            "eventName": "DeleteTrail",
            "awsRegion": "us-east-1",
            "recipientAccountId": "111111111111",
            "sourceIPAddress": "203.0.113.66",
            "userIdentity": {"type": "IAMUser", "userName": "mallory"},
        }
        put_file(api.workspace.data, log_name("live"), records_file([record]))
        await browser.wait_for(
            "document.querySelector('.event').classList.contains('fresh')"
            " && document.querySelector('.event .action').textContent === 'DeleteTrail'",
            within=20,
        )
        # The event came in alone; the alerts it raised may come with it as their own entries.
        fresh = await browser.evaluate(
            "[...document.querySelectorAll('.event.fresh')].map((row) => row.dataset.lane)"
        )
        assert sorted(lane for lane in fresh if lane != "alert") == ["cloud"]
        assert await browser.evaluate(ROWS) == 100 + len(fresh)


async def test_page_fits_a_phone(api: ApiDaemon, tmp_path: Path) -> None:
    """At 390 px the page has no horizontal scroll and still lists events."""
    async with Browser(tmp_path / "profile") as browser:
        await browser.viewport(390, 844, mobile=True)
        await open_page(browser, api, "#user=mallory")
        assert await browser.evaluate(ROWS) == len(
            api.get("/api/v1/events?user=mallory").json()["events"]
        )
        assert await browser.evaluate("document.documentElement.scrollWidth <= innerWidth")
        await browser.screenshot(ARTIFACTS / "timeline-phone.png")


async def test_the_histogram_ends_at_the_newest_event_read(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    """The daemon's own entry of today (its identity map recorded at start) is the newest
    row, yet the histogram ends at the newest event the sources brought (the demo day)."""
    find_chromium()
    people = '\n[[identity.people]]\nid = "alice"\nunix = ["alice"]\n'
    with serve_demo(tmp_path_factory.mktemp("own"), listen="127.0.0.1:0", extra=people) as api:
        newest = api.get("/api/v1/events?limit=1").json()["events"][0]["document"]
        assert newest["event"]["dataset"] == "auditcorr.audit"
        async with Browser(tmp_path / "profile") as browser:
            await browser.viewport(1280, 900)
            await open_page(browser, api)
            shown = await browser.evaluate("document.querySelector('#range').textContent")
    assert "\u2013 2026-11-20 23:" in shown, shown
