"""A change record's review in the web page (headless Chromium), on the bundled demo.

Screenshots go to ``$TEST_ARTIFACTS`` (default ``test-artifacts/``) like the timeline's.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from apisupport import ApiDaemon, served
from cdp import Browser, find_chromium
from itsupport import REPO, bundled_demo

pytestmark = pytest.mark.integration

ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", REPO / "test-artifacts")) / "web"
REVIEW = "document.querySelector('#review')"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiDaemon]:
    find_chromium()
    workspace = bundled_demo(tmp_path_factory.mktemp("web-review"))
    with served(workspace, "demo") as api:
        yield api


async def open_page(browser: Browser, api: ApiDaemon, fragment: str = "") -> None:
    await browser.send("Page.navigate", url=f"{api.url}{fragment}")
    await browser.wait_for("document.body && document.body.dataset.ready === 'true'")


async def test_a_change_badge_opens_its_review(demo: ApiDaemon, tmp_path: Path) -> None:
    """Clicking CHG0041207's badge shows its review: scope creep, the bucket policy out of
    scope with the reasons; clicking that event shows it on the timeline."""
    async with Browser(tmp_path / "profile") as browser:
        await browser.viewport(1280, 900)
        await open_page(browser, demo, "#q=CHG0041207")
        badge = "[...document.querySelectorAll('button.badge.change')]"
        await browser.wait_for(f"{badge}.length > 0")
        assert await browser.evaluate(f"{badge}[0].textContent") == "change CHG0041207"
        await browser.evaluate(f"{badge}[0].click()")
        await browser.wait_for(f"!!{REVIEW}.querySelector('.verdict')")
        assert await browser.evaluate(f"{REVIEW}.querySelector('.verdict').textContent") == (
            "scope creep"
        )
        assert "review=CHG0041207" in await browser.evaluate("location.hash")
        lines = await browser.evaluate(
            f"[...{REVIEW}.querySelectorAll('div:first-of-type li')].map(li => li.textContent)"
        )
        assert len(lines) == 3
        assert "ec2:StopInstances" in lines[0]
        assert lines[0].endswith("in scope")
        assert "s3:PutBucketPolicy" in lines[1]
        assert "out of scope: resource arn:aws:s3:::prod-assets-apn1 not in scope" in lines[1]
        await browser.screenshot(ARTIFACTS / "review-1280.png")

        key = await browser.evaluate(f"{REVIEW}.querySelectorAll('li[data-key]')[1].dataset.key")
        await browser.evaluate(f"{REVIEW}.querySelectorAll('li[data-key] button')[1].click()")
        await browser.wait_for(f"!!document.querySelector('.event.evidence[data-id=\"{key}\"]')")
        assert "since=" in await browser.evaluate("location.hash")
        assert await browser.evaluate(f"!{REVIEW}.hidden")


async def test_a_shared_review_link_opens_and_closes(demo: ApiDaemon, tmp_path: Path) -> None:
    """``#review=CHG0041211`` opens that review: not executed, nothing in or around its
    window; the close button hides it and drops it from the address."""
    async with Browser(tmp_path / "profile") as browser:
        await browser.viewport(1280, 900)
        await open_page(browser, demo, "#review=CHG0041211")
        await browser.wait_for(f"!!{REVIEW}.querySelector('.verdict')")
        text = await browser.evaluate(f"{REVIEW}.textContent")
        assert "not executed" in text
        assert "In the window, by the implementers (0)nothing" in text
        await browser.evaluate(f"{REVIEW}.querySelector('.close').click()")
        await browser.wait_for(f"{REVIEW}.hidden")
        assert "review=" not in await browser.evaluate("location.hash")
