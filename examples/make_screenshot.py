"""Remake docs/images/timeline.png: the web timeline on the demo, in headless Chromium.

Run from the top of the repository after changing the page or the demo:

    .venv/bin/python examples/make_screenshot.py [--query 'ip:203.0.113.66'] [-o FILE]

It copies config.toml and examples/ to a temporary folder, backfills the demo there,
starts ``auditcorr run`` with the API on a free loopback port, waits until it is
ready, and has Debian's ``chromium`` (``apt-get install chromium``) take the picture.
Nothing in ./state is touched.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WINDOW = "1440,900"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def demo_config(root: Path, port: int) -> Path:
    """The repository's config.toml over a copy of the demo, its state and API moved."""
    for folder in ("demo", "changes"):
        shutil.copytree(REPO / "examples" / folder, root / "examples" / folder)
    text = (REPO / "config.toml").read_text()
    moved = text.replace('state_dir = "state"', f'state_dir = "{root / "state"}"', 1)
    moved = moved.replace('listen = "127.0.0.1:8080"', f'listen = "127.0.0.1:{port}"', 1)
    if moved.count(str(root)) != 1 or f":{port}" not in moved:
        sys.exit("config.toml no longer has the state_dir and [api] listen lines this script moves")
    config = root / "config.toml"
    config.write_text(moved)
    return config


def cli(*args: str, cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "daemon.cli", *args],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_ready(url: str, daemon: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if daemon.poll() is not None:
            sys.exit(f"auditcorr run exited with status {daemon.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    sys.exit(f"the daemon was not ready at {url} within {seconds:.0f} s")


def screenshot(url: str, out: Path) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        sys.exit("no chromium on PATH (Debian: apt-get install chromium)")
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                f"--window-size={WINDOW}",
                "--virtual-time-budget=8000",
                f"--screenshot={out}",
                url,
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--query", help="a search to type into the page, e.g. ip:203.0.113.66")
    parser.add_argument("-o", "--output", type=Path, default=REPO / "docs/images/timeline.png")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        root = Path(work)
        port = free_port()
        config = demo_config(root, port)
        if cli("backfill", "--config", str(config), cwd=root).wait() != 0:
            sys.exit("auditcorr backfill failed on the demo")
        daemon = cli("run", "--config", str(config), cwd=root)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_ready(base, daemon)
            hash_ = f"#{urllib.parse.urlencode({'q': args.query})}" if args.query else ""
            screenshot(f"{base}/{hash_}", args.output.resolve())
        finally:
            daemon.terminate()
            daemon.wait(timeout=30)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
