"""Event -> alert -> receiver latency through a running daemon, per channel.

    python bench/alerts.py --alerts 10000 --rates 50,100,200,400 --runs 3
    python bench/alerts.py --alerts 2000 --rates 100,200 --baseline ../main

For each rate, ``auditcorr run`` is started on a fresh state directory with a
``syslog_tcp`` source, the example rule ``examples/rules/ssh_login_accepted.yml``
(an alert per accepted SSH login and user; every injected login has its own
user, so each event raises its own alert) and two outputs: a ``webhook`` to a local aiohttp
receiver and ``mqtt`` (QoS 1) to a mosquitto the bench starts on a free port,
with a subscriber.  Logins are written to the TCP source at a steady rate;
latency runs from writing the line to the receiver or subscriber getting
the alert (one clock, this process).  ``--baseline TREE`` runs the same rates
with that source tree's daemon (``PYTHONPATH``) right before this one's, so
ratios come from the same run.

Prints one JSON object: p50/p99 in milliseconds per tree, rate and channel
(medians over --runs), the load average around each run, and the highest
rate at which p99 stayed under 250 ms on both channels.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiomqtt
import orjson
from aiohttp import web
from harness import free_port

ROOT = Path(__file__).resolve().parent.parent
P99_LIMIT_MS = 250.0
SETTLE_SECS = 60.0
WARM_UP = 10
"""Alerts sent and received before measuring (not counted)."""

RULE = ROOT / "examples" / "rules" / "ssh_login_accepted.yml"
"""Alerts on every accepted SSH login, one alert per user."""


class Arrivals:
    """Per channel: user name (one alert each) -> arrival time (perf_counter)."""

    def __init__(self) -> None:
        self.times: dict[str, dict[str, float]] = {"webhook": {}, "mqtt": {}}
        self._changed = asyncio.Event()

    def add(self, channel: str, payload: bytes) -> None:
        self.times[channel][orjson.loads(payload)["group"]["user.name"]] = time.perf_counter()
        self._changed.set()

    async def wait_for(self, count: int, within_secs: float) -> None:
        """Until every channel got ``count`` alerts or ``within_secs`` passed."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within_secs):
                while any(len(got) < count for got in self.times.values()):
                    self._changed.clear()
                    await self._changed.wait()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def config(folder: Path, url: str, mqtt_port: int, batch_ms: int) -> Path:
    path = folder / "config.toml"
    path.write_text(
        f"""
[daemon]
state_dir = "{folder / "state"}"
log_format = "json"
workers = 1

[store]
retention_days = 0

[sources.bench_in]
type = "syslog_tcp"
listen = "tcp:127.0.0.1:0"
batch_max_ms = {batch_ms}

[rules]
builtin = false
paths = ["{RULE}"]

[outputs.webhook]
type = "webhook"
endpoint = "{url}"
concurrency = 16

[outputs.mqtt]
type = "mqtt"
endpoint = "mqtt://127.0.0.1:{mqtt_port}"
topic = "bench/{{rule}}"
concurrency = 16
"""
    )
    return path


@contextlib.asynccontextmanager
async def receivers(arrivals: Arrivals, mqtt_port: int) -> AsyncIterator[str]:
    """The webhook receiver's URL while an aiohttp server and an MQTT subscriber record arrivals."""

    async def hook(request: web.Request) -> web.Response:
        arrivals.add("webhook", await request.read())
        return web.Response(text="ok")

    async def subscribe(ready: asyncio.Event) -> None:
        async with aiomqtt.Client(
            "127.0.0.1", mqtt_port, protocol=aiomqtt.ProtocolVersion.V5
        ) as client:
            await client.subscribe("bench/#", qos=1)
            ready.set()
            async for message in client.messages:
                arrivals.add("mqtt", message.payload)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    ready = asyncio.Event()
    subscriber = asyncio.create_task(subscribe(ready))
    try:
        await ready.wait()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    finally:
        subscriber.cancel()
        await asyncio.gather(subscriber, return_exceptions=True)
        await runner.cleanup()


@contextlib.asynccontextmanager
async def daemon(path: Path, tree: Path) -> AsyncIterator[int]:
    """``auditcorr run`` from ``tree`` while the block runs; yields the syslog port."""
    log = path.parent / "daemon.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "daemon.cli", "run", "--config", str(path)),
            cwd=path.parent,
            env={**os.environ, "PYTHONPATH": str(tree)},
            stdout=out,
            stderr=out,
        )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for line in log.read_bytes().splitlines():
                with contextlib.suppress(orjson.JSONDecodeError):
                    entry = orjson.loads(line)
                    if entry.get("event") == "listening":
                        yield int(entry["port"])
                        return
            if proc.returncode is not None:
                break
            await asyncio.sleep(0.1)
        raise RuntimeError("the daemon did not start")
    except BaseException:
        tail = [
            line for line in log.read_text(errors="replace").splitlines() if "alert" not in line
        ]
        print("daemon log (end):", *tail[-15:], sep="\n", file=sys.stderr)
        raise
    finally:
        proc.terminate()
        await proc.wait()


async def inject(port: int, count: int, rate: float, run: str) -> dict[str, float]:
    """Write ``count`` accepted logins at ``rate`` per second; returns when each was written."""
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    sent: dict[str, float] = {}
    begin = time.perf_counter()
    for n in range(count):
        delay = begin + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        user = f"u{run}x{n}"
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        message = f"Accepted password for {user} from 10.0.0.5 port 22 ssh2"
        writer.write(f"<38>1 {stamp} bastion sshd 812 - - {message}\n".encode())
        await writer.drain()
        sent[user] = time.perf_counter()
    writer.close()
    await writer.wait_closed()
    return sent


async def one_run(
    tree: Path, run: str, count: int, rate: float, mqtt_port: int, batch_ms: int
) -> dict[str, object]:
    arrivals = Arrivals()
    load_before = os.getloadavg()[0]
    async with contextlib.AsyncExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-alerts-")))
        url = await stack.enter_async_context(receivers(arrivals, mqtt_port))
        port = await stack.enter_async_context(
            daemon(config(folder, url, mqtt_port, batch_ms), tree)
        )
        # Warm up (worker processes started, connections open), then start counting.
        await inject(port, WARM_UP, WARM_UP, f"{run}w")
        await arrivals.wait_for(WARM_UP, SETTLE_SECS)
        arrivals.times = {channel: {} for channel in arrivals.times}
        sent = await inject(port, count, rate, run)
        await arrivals.wait_for(count, SETTLE_SECS)
    figures: dict[str, object] = {"load_avg": [round(load_before, 2), round(os.getloadavg()[0], 2)]}
    for channel, got in arrivals.times.items():
        values = [(got[user] - at) * 1000 for user, at in sent.items() if user in got]
        figures[channel] = {
            "p50_ms": round(percentile(values, 0.5), 1) if values else None,
            "p99_ms": round(percentile(values, 0.99), 1) if values else None,
            "missing": count - len(values),
        }
    print(json.dumps({"tree": str(tree), "rate": rate, "run": run, **figures}), file=sys.stderr)
    return figures


def median_of(runs: list[dict[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for channel in ("webhook", "mqtt"):
        values = [r[channel] for r in runs]
        out[channel] = {
            key: (
                round(statistics.median(v[key] for v in values), 1)  # type: ignore[index]
                if all(v[key] is not None for v in values)  # type: ignore[index]
                else None
            )
            for key in ("p50_ms", "p99_ms", "missing")
        }
    out["load_avg"] = [r["load_avg"] for r in runs]
    return out


def best_rate(per_rate: dict[str, dict[str, object]]) -> float | None:
    """The highest rate whose p99 stayed under the limit on both channels, nothing missing."""
    good = [
        float(rate)
        for rate, figures in per_rate.items()
        if all(
            figures[c]["p99_ms"] is not None  # type: ignore[index]
            and figures[c]["p99_ms"] < P99_LIMIT_MS  # type: ignore[index]
            and figures[c]["missing"] == 0  # type: ignore[index]
            for c in ("webhook", "mqtt")
        )
    ]
    return max(good) if good else None


async def bench(args: argparse.Namespace, mqtt_port: int) -> dict[str, object]:
    trees = ([args.baseline.resolve()] if args.baseline else []) + [ROOT]
    results: dict[str, dict[str, dict[str, object]]] = {str(t): {} for t in trees}
    for rate in args.rates:
        for tree in trees:
            runs = [
                await one_run(
                    tree,
                    f"{len(results[str(tree)])}r{r}",
                    args.alerts,
                    rate,
                    mqtt_port,
                    args.batch_ms,
                )
                for r in range(args.runs)
            ]
            results[str(tree)][f"{rate:g}"] = median_of(runs)
    return {
        tree: {"per_rate": per_rate, "best_rate_p99_under_250ms": best_rate(per_rate)}
        for tree, per_rate in results.items()
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument(
        "--rates",
        type=lambda s: [float(x) for x in s.split(",")],
        default=[50.0, 100.0, 200.0, 400.0],
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch-ms", type=int, default=10, help="the source's batch_max_ms")
    parser.add_argument("--baseline", type=Path, help="another source tree to compare with")
    args = parser.parse_args()
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    with tempfile.TemporaryDirectory(prefix="bench-mqtt-") as tmp:
        port = free_port()
        conf = Path(tmp) / "mosquitto.conf"
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
        broker = subprocess.Popen([mosquitto, "-c", str(conf)], stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.5)
            figures = asyncio.run(bench(args, port))
        finally:
            broker.terminate()
            broker.wait()
    print(
        json.dumps(
            {
                "date": datetime.now(UTC).date().isoformat(),
                "alerts_per_run": args.alerts,
                "runs": args.runs,
                "batch_max_ms": args.batch_ms,
                "machine": f"{platform.machine()}, {os.cpu_count()} cpu",
                "python": platform.python_version(),
                "trees": figures,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
