"""Rule engine throughput: the built-in pack against built-in + all SigmaHQ aws and linux rules.

    python bench/rules.py --events 200000 --runs 3 --backfill-events 100000

In the same run:

* engine: realistic events (CloudTrail from examples/ctgen.py, plus on-prem
  auth/syslog/auditd events shaped as the syslog normalizers make them, one in
  four) are normalized to ECS documents once, untimed; then each timed run
  matches every document (``HitMaker.hits``) and correlates the hits
  (``Correlator.feed``), first with the built-in pack, then with the
  built-in pack plus every SigmaHQ rule under --sigma (aws and linux);
* backfill: ``auditcorr backfill`` of a CloudTrail tree into a fresh store,
  without rules, then with the built-in pack and the SigmaHQ rules.

Prints one JSON object: medians over --runs, and the ratios all/built-in
(engine cost, target <= 2) and backfill with/without rules (target >= 0.8).
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))

import ctgen  # noqa: E402

from daemon.model import format_timestamp  # noqa: E402
from daemon.normalize import cloudtrail  # noqa: E402
from daemon.rules import BUILTIN  # noqa: E402
from daemon.rules.correlate import Correlator  # noqa: E402
from daemon.rules.hits import HitMaker  # noqa: E402
from daemon.rules.loader import load_rules  # noqa: E402

START = datetime(2026, 10, 1, tzinfo=UTC)
SIGMA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sigma"


def onprem(count: int, seed: int) -> list[dict[str, Any]]:
    """Auth, syslog and auditd events in the on-prem ECS shape, mostly benign."""
    rng = random.Random(seed)
    users = ["alice", "bob", "carol", "dave", "deploy", "backup"]
    hosts = [f"db{n}" for n in range(8)] + [f"web{n}" for n in range(8)]
    docs = []
    for number in range(count):
        moment = format_timestamp(START + timedelta(seconds=number * 86_400 / count))
        user, host = rng.choice(users), rng.choice(hosts)
        ip = f"10.{rng.randrange(4)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        kind = rng.random()
        event: dict[str, Any] = {"id": f"onprem-{seed}-{number}", "kind": "event"}
        doc: dict[str, Any] = {"@timestamp": moment, "event": event, "host": {"name": host}}
        if kind < 0.4:
            outcome = "failure" if rng.random() < 0.1 else "success"
            event.update(dataset="system.auth", action="ssh_login", outcome=outcome)
            doc.update(
                process={"name": "sshd", "pid": 4000 + number % 1000},
                user={"name": user},
                source={"ip": ip, "port": 50000 + number % 10000},
                message=f"{'Accepted' if outcome == 'success' else 'Failed'} publickey for"
                f" {user} from {ip} port 50022 ssh2",
            )
        elif kind < 0.6:
            command = rng.choice(["/usr/bin/systemctl status nginx", "/usr/bin/apt update"])
            event.update(dataset="system.auth", action="sudo", outcome="success")
            doc.update(
                process={"name": "sudo", "command_line": command},
                user={"name": user, "effective": {"name": "root"}},
                system={"auth": {"sudo": {"command": command, "tty": "pts/0", "pwd": "/"}}},
                message=f"{user} : TTY=pts/0 ; PWD=/ ; USER=root ; COMMAND={command}",
            )
        elif kind < 0.85:
            unit = rng.choice(["nginx.service", "cron.service", "logrotate.service"])
            event.update(dataset="system.syslog", action="service_started")
            doc.update(process={"name": "systemd", "pid": 1}, service={"name": unit})
            doc["message"] = f"Started {unit}."
        else:
            exe = rng.choice(["/usr/bin/ls", "/usr/bin/cat", "/usr/bin/python3"])
            event.update(dataset="auditd.log", action="execve", outcome="success")
            doc.update(
                process={"executable": exe, "args": [exe, "-l"], "command_line": f"{exe} -l"},
                user={"name": user, "id": "1000"},
                auditd={"log": {"record_type": "SYSCALL", "exe": exe, "key": "exec"}},
                message=f"exe={exe}",
            )
        docs.append(doc)
    return docs


def documents(events: int, seed: int) -> list[dict[str, Any]]:
    cloud = events - events // 4
    records = ctgen.generate_records(cloud, start=START, span=timedelta(days=1), seed=seed)
    docs = [cloudtrail.normalize(record).to_document() for record in records]
    docs.extend(onprem(events // 4, seed))
    docs.sort(key=lambda doc: doc["@timestamp"])
    return docs


def engine_run(paths: list[str], docs: list[dict[str, Any]]) -> tuple[float, int, int]:
    loaded = load_rules(paths)
    maker = HitMaker(loaded)
    correlator = Correlator(loaded)
    began = time.perf_counter()
    hits = 0
    alerts = 0
    batch: list[Any] = []
    for doc in docs:
        batch.extend(maker.hits(doc, "bench"))
        if len(batch) >= 1000:
            hits += len(batch)
            alerts += len(correlator.feed(batch))
            batch = []
    hits += len(batch)
    alerts += len(correlator.feed(batch))
    return time.perf_counter() - began, hits, alerts


def backfill(tree: Path, work: Path, rules: list[str] | None) -> float:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    config = work / "config.toml"
    lines = [
        "[daemon]",
        f'state_dir = "{work / "state"}"',
        'log_format = "json"',
        "[store]",
        "retention_days = 0",
        "[rules]",
    ]
    if rules is None:
        lines.append("builtin = false")
    else:
        lines.append("paths = [" + ", ".join(json.dumps(path) for path in rules) + "]")
    lines += ["[sources.bench]", 'type = "cloudtrail_files"', f'path = "{tree}"']
    config.write_text("\n".join(lines) + "\n")
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "daemon.cli", "backfill", "--config", str(config)],
        capture_output=True,
        check=False,
    )
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"backfill failed: {done.stderr.decode()[-2000:]}")
    summary = dict(part.split("=", 1) for part in done.stdout.decode().split()[1:])
    return float(summary["stored"]) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--backfill-events", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--sigma", type=Path, default=SIGMA)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = parser.parse_args()

    sigma = [str(args.sigma / "aws"), str(args.sigma / "linux")]
    loaded_all = load_rules([BUILTIN, *sigma])
    docs = documents(args.events, args.seed)
    figures: dict[str, Any] = {
        "date": datetime.now(UTC).date().isoformat(),
        "machine": f"{platform.machine()}, {platform.python_version()}",
        "events": len(docs),
        "rules_builtin": len(load_rules([BUILTIN]).detections),
        "rules_all": len(loaded_all.detections) + len(loaded_all.correlations),
    }
    for name, paths in (("builtin", [BUILTIN]), ("all", [BUILTIN, *sigma])):
        runs = [engine_run(paths, docs) for _ in range(args.runs)]
        rates = [len(docs) / seconds for seconds, _, _ in runs]
        figures[f"engine_{name}_events_per_sec"] = round(statistics.median(rates))
        figures[f"engine_{name}_runs"] = [round(rate) for rate in rates]
        figures[f"engine_{name}_hits"] = runs[0][1]
        figures[f"engine_{name}_alerts"] = runs[0][2]
    figures["engine_cost_all_over_builtin"] = round(
        figures["engine_builtin_events_per_sec"] / figures["engine_all_events_per_sec"], 2
    )

    tree = args.out / f"rules-data-{args.backfill_events}-{args.seed}"
    if not (tree / ".complete").exists():
        shutil.rmtree(tree, ignore_errors=True)
        records = ctgen.generate_records(
            args.backfill_events, start=START, span=timedelta(days=1), seed=args.seed
        )
        ctgen.write_tree(tree, records, organization_id="o-bench00001")
        (tree / ".complete").write_text("ok")
    work = args.out / "rules-work"
    without, with_rules = [], []
    for _ in range(args.runs):  # interleaved, so drift in the machine's load hits both
        without.append(backfill(tree, work, None))
        with_rules.append(backfill(tree, work, [*sigma]))
    figures["backfill_events"] = args.backfill_events
    figures["backfill_without_rules_events_per_sec"] = round(statistics.median(without))
    figures["backfill_with_all_rules_events_per_sec"] = round(statistics.median(with_rules))
    figures["backfill_runs_without"] = [round(rate) for rate in without]
    figures["backfill_runs_with"] = [round(rate) for rate in with_rules]
    figures["backfill_ratio_with_over_without"] = round(
        figures["backfill_with_all_rules_events_per_sec"]
        / figures["backfill_without_rules_events_per_sec"],
        3,
    )
    shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
