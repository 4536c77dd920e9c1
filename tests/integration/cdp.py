"""A headless Chromium driven over the DevTools protocol (no browser download needed).

Debian's ``chromium`` is started with a DevTools port; commands go over its
WebSocket with aiohttp, which the daemon already depends on.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import re
import shutil
import subprocess
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiohttp
from testdata import unavailable

_LISTENING = re.compile(rb"DevTools listening on (ws://\S+)")


def find_chromium() -> str:
    """The browser's path; skips (fails under CI=true) when there is none."""
    names = ("chromium", "chromium-browser", "google-chrome")
    found = next(filter(None, map(shutil.which, names)), None)
    if found is None:
        unavailable("no Chromium found (Debian: apt-get install chromium)")
    return found


class Browser:
    """``async with Browser(profile) as page``: one tab to navigate, evaluate and capture."""

    def __init__(self, profile: Path) -> None:
        self._profile = profile
        self._proc: subprocess.Popen[bytes] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._ids = itertools.count(1)

    async def __aenter__(self) -> Self:
        browser_url = await asyncio.wait_for(asyncio.to_thread(self._start), 30)
        port = browser_url.split("/")[2]
        self._session = aiohttp.ClientSession()
        async with self._session.get(f"http://{port}/json/list") as answer:
            targets = await answer.json(content_type=None)
        page = next(t for t in targets if t["type"] == "page")
        self._ws = await self._session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0)
        return self

    def _start(self) -> str:
        """Start the browser; returns its DevTools endpoint once it prints it."""
        self._proc = subprocess.Popen(
            [
                find_chromium(),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--hide-scrollbars",
                "--remote-debugging-port=0",
                f"--user-data-dir={self._profile}",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        assert self._proc.stderr is not None
        seen = b""
        for line in self._proc.stderr:
            seen += line
            found = _LISTENING.search(line)
            if found:
                return found.group(1).decode()
        raise RuntimeError(f"chromium exited without a DevTools endpoint:\n{seen.decode()[-2000:]}")

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._session is not None:
            await self._session.close()
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait(10)

    async def send(self, method: str, **params: Any) -> Any:
        assert self._ws is not None
        number = next(self._ids)
        await self._ws.send_json({"id": number, "method": method, "params": params})
        while True:
            message = await asyncio.wait_for(self._ws.receive_json(), 30)
            if message.get("id") == number:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    async def evaluate(self, expression: str) -> Any:
        result = await self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, within: float = 15) -> Any:
        """Evaluate until the value is truthy."""
        deadline = asyncio.get_running_loop().time() + within
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"timed out waiting for: {expression} (last: {value!r})")
            await asyncio.sleep(0.1)

    async def viewport(self, width: int, height: int, *, mobile: bool = False) -> None:
        await self.send(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=mobile,
        )

    async def key(self, key: str, text: str | None = None) -> None:
        """Press one key as a person does (keyDown with its text, then keyUp)."""
        codes = {"Enter": 13, "Escape": 27, "/": 191, "j": 74, "k": 75}
        down: dict[str, Any] = {"type": "keyDown", "key": key, "windowsVirtualKeyCode": codes[key]}
        if text is not None:
            down["text"] = text
        await self.send("Input.dispatchKeyEvent", **down)
        await self.send(
            "Input.dispatchKeyEvent", type="keyUp", key=key, windowsVirtualKeyCode=codes[key]
        )

    async def screenshot(self, path: Path) -> None:
        shot = await self.send("Page.captureScreenshot", format="png", captureBeyondViewport=False)
        data = base64.b64decode(shot["data"])

        def save() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

        await asyncio.to_thread(save)
