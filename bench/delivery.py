"""Alert delivery latency through the outbox, per channel, against a direct send.

    python bench/delivery.py --alerts 10000 --rates 200,400,800 --runs 3

For each rate, alerts are queued at that steady rate with ``Store.write_alerts``
(the call the correlator makes, one committed transaction per alert, followed
by ``DeliveryService.wake``) for two outputs at once: a ``webhook`` to a local
aiohttp receiver and ``mqtt`` to a local mosquitto with a subscriber.  Latency
is from the start of the store write to the receiver or subscriber getting
the message.  The baseline, measured in the same run at the same rate, sends
the same alerts straight through the same output objects (both channels at
once, one alert after the other), without outbox, store or worker: the ratio
shows what durability costs.

Prints one JSON object: p50/p99 in milliseconds per rate and channel (medians
over --runs) and the ratio of outbox p99 to the direct-send p99.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt
import structlog
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from connectors.base import Notification, OutputContext  # noqa: E402
from connectors.config import OutputConfig  # noqa: E402
from connectors.mqtt import MqttConfig, MqttOutput  # noqa: E402
from connectors.webhook import WebhookConfig, WebhookOutput  # noqa: E402
from daemon.alert import Alert, Evidence, alert_id  # noqa: E402
from daemon.delivery.routing import routes  # noqa: E402
from daemon.delivery.service import DeliveryService  # noqa: E402
from daemon.store.sqlite import SqliteStore  # noqa: E402

T0 = datetime(2026, 11, 20, tzinfo=UTC)
Arrivals = dict[str, dict[str, float]]
"""Per channel: alert id -> arrival time (perf_counter)."""


def make_alert(run: int, n: int) -> Alert:
    start = T0 + timedelta(seconds=n)
    return Alert(
        id=alert_id("bench_rule", f"{run}-{n}", start),
        rule_id="bench_rule",
        title="Benchmark alert",
        severity="high",
        environment="cloud",
        first_seen=start,
        last_seen=start,
        actors=["alice"],
        group={"cloud.account.id": "111111111111", "cloud.region": "us-east-1"},
        evidence=[Evidence(f"ev-{n}", start, "aws.cloudtrail", "ConsoleLogin", "login")],
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def receivers(
    arrivals: Arrivals, mqtt_port: int
) -> tuple[web.AppRunner, str, asyncio.Task[None]]:
    async def hook(request: web.Request) -> web.Response:
        await request.read()
        arrivals["webhook"][request.headers["Idempotency-Key"]] = time.perf_counter()
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    ready = asyncio.Event()

    async def subscribe() -> None:
        async with aiomqtt.Client(
            "127.0.0.1", mqtt_port, protocol=aiomqtt.ProtocolVersion.V5
        ) as client:
            await client.subscribe("bench/#", qos=1)
            ready.set()
            async for message in client.messages:
                assert message.properties is not None
                key = dict(message.properties.UserProperty)["idempotency-key"]
                arrivals["mqtt"][key] = time.perf_counter()

    task = asyncio.create_task(subscribe())
    await ready.wait()
    return runner, url, task


async def paced(
    count: int, rate: float, step: Callable[[int], Awaitable[dict[str, float]]]
) -> dict[str, float]:
    """Call ``step(n)`` at a steady rate; returns when each alert id started."""
    started: dict[str, float] = {}
    begin = time.perf_counter()
    for n in range(count):
        delay = begin + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        started.update(await step(n))
    return started


async def settle(arrivals: Arrivals, started: dict[str, float], within: float = 120) -> None:
    deadline = time.perf_counter() + within
    while time.perf_counter() < deadline:
        if all(len(got) >= len(started) for got in arrivals.values()):
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"not every alert arrived: {[len(v) for v in arrivals.values()]}")


def latencies(arrivals: Arrivals, started: dict[str, float]) -> dict[str, dict[str, float]]:
    out = {}
    for channel, got in arrivals.items():
        values = [(got[key] - began) * 1000 for key, began in started.items()]
        out[channel] = {"p50_ms": percentile(values, 0.5), "p99_ms": percentile(values, 0.99)}
    return out


def configs(url: str, mqtt_port: int) -> dict[str, OutputConfig]:
    return {
        "webhook": WebhookConfig.model_validate(
            {"type": "webhook", "endpoint": url, "concurrency": 16}
        ),
        "mqtt": MqttConfig.model_validate(
            {
                "type": "mqtt",
                "endpoint": f"mqtt://127.0.0.1:{mqtt_port}",
                "topic": "bench/{rule}",
                "concurrency": 16,
            }
        ),
    }


async def outbox_run(
    run: int, count: int, rate: float, mqtt_port: int, folder: Path
) -> dict[str, dict[str, float]]:
    arrivals: Arrivals = {"webhook": {}, "mqtt": {}}
    db = folder / f"outbox-{run}-{rate}.db"
    writer = SqliteStore(db, retention_days=0)
    reader = SqliteStore(db, retention_days=0)
    runner, url, subscriber = await receivers(arrivals, mqtt_port)
    outputs = configs(url, mqtt_port)
    route = routes(outputs)
    service = DeliveryService(reader, outputs)
    delivery = asyncio.create_task(service.run())
    await asyncio.sleep(0.5)

    async def step(n: int) -> dict[str, float]:
        alert = make_alert(run, n)
        began = time.perf_counter()
        await asyncio.to_thread(writer.write_alerts, [alert], route)
        service.wake()
        return {alert.id: began}

    try:
        started = await paced(count, rate, step)
        await settle(arrivals, started)
    finally:
        delivery.cancel()
        subscriber.cancel()
        await asyncio.gather(delivery, subscriber, return_exceptions=True)
        await runner.cleanup()
        writer.close()
        reader.close()
    return latencies(arrivals, started)


async def direct_run(
    run: int, count: int, rate: float, mqtt_port: int
) -> dict[str, dict[str, float]]:
    arrivals: Arrivals = {"webhook": {}, "mqtt": {}}
    runner, url, subscriber = await receivers(arrivals, mqtt_port)
    outputs = configs(url, mqtt_port)
    hook = WebhookOutput(outputs["webhook"], OutputContext("webhook"))
    broker = MqttOutput(outputs["mqtt"], OutputContext("mqtt"))
    async with hook, broker:

        async def step(n: int) -> dict[str, float]:
            alert = make_alert(run, n).to_json()
            began = time.perf_counter()
            note = Notification("alert", [alert], alert["id"])
            await asyncio.gather(hook.send(note), broker.send(note))
            return {alert["id"]: began}

        started = await paced(count, rate, step)
        await settle(arrivals, started)
    subscriber.cancel()
    await asyncio.gather(subscriber, return_exceptions=True)
    await runner.cleanup()
    return latencies(arrivals, started)


def median_of(runs: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    return {
        channel: {
            key: round(statistics.median(r[channel][key] for r in runs), 1)
            for key in ("p50_ms", "p99_ms")
        }
        for channel in runs[0]
    }


async def bench(args: argparse.Namespace, folder: Path, mqtt_port: int) -> dict[str, object]:
    figures: dict[str, object] = {}
    for rate in args.rates:
        outbox = [
            await outbox_run(r, args.alerts, rate, mqtt_port, folder) for r in range(args.runs)
        ]
        direct = [await direct_run(r, args.alerts, rate, mqtt_port) for r in range(args.runs)]
        through, straight = median_of(outbox), median_of(direct)
        figures[f"{rate:g}_per_sec"] = {
            "outbox": through,
            "direct": straight,
            "p99_ratio_to_direct": {
                channel: round(
                    through[channel]["p99_ms"] / max(straight[channel]["p99_ms"], 0.1), 1
                )
                for channel in through
            },
        }
        print(json.dumps({f"{rate:g}_per_sec": figures[f"{rate:g}_per_sec"]}), file=sys.stderr)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=2000)
    parser.add_argument("--rates", type=lambda s: [float(x) for x in s.split(",")], default=[200.0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    # Per-alert log lines would cost more than the deliveries being measured.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    logging.getLogger("mqtt").setLevel(logging.ERROR)
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        port = free_port()
        conf = folder / "mosquitto.conf"
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
        broker = subprocess.Popen([mosquitto, "-c", str(conf)], stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.5)
            figures = asyncio.run(bench(args, folder, port))
        finally:
            broker.terminate()
            broker.wait()
    print(
        json.dumps(
            {
                "alerts_per_run": args.alerts,
                "runs": args.runs,
                "machine": f"{platform.machine()}, {os.cpu_count()} cpu",
                "python": platform.python_version(),
                "figures": figures,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
