"""new_terms and baseline rules: alerts on a benign stretch of weeks, engine cost, state size.

    python bench/behaviour.py --events 1000000 --days 21 --runs 3 [--parts state weeks]

In the same run:

* weeks: ``--days`` of benign activity (CloudTrail from examples/ctgen.py; a
  role's nightly job reading 30 secrets within ten minutes, each night under
  another session name; on-prem logins and sudo of accounts on their usual
  hosts), normalized once, untimed.  The built-in pack of this tree and the
  one on ``main`` (``git show``) each run over it (``HitMaker.hits`` then
  ``Correlator.feed`` in rounds of 1,000 hits): alerts per day after the
  learning window, per rule, and ``secrets_read_burst`` on both;
* cost: the medians of --runs of both, and their ratio (target <= 1.3);
* state: the built-in rules' learned state for an organisation of 5,000
  principals, 300 actions and 300 hosts (every account on every host, every
  principal reading secrets and signing in from three addresses), as Python
  memory (tracemalloc) and as the SQLite table the correlator commits it to.

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))

import ctgen  # noqa: E402

from daemon.alert import Evidence  # noqa: E402
from daemon.model import format_timestamp  # noqa: E402
from daemon.normalize import cloudtrail  # noqa: E402
from daemon.rules import BUILTIN  # noqa: E402
from daemon.rules.correlate import Correlator  # noqa: E402
from daemon.rules.hits import Hit, HitMaker  # noqa: E402
from daemon.rules.learned import Learner  # noqa: E402
from daemon.rules.loader import Loaded, load_rules  # noqa: E402

START = datetime(2026, 10, 1, tzinfo=UTC)
LEARNING = 14
"""Days the built-in new_terms and baseline rules learn."""


def nightly_secrets(days: int) -> list[dict[str, Any]]:
    """A reporting role's job: 30 different secrets within ten minutes at 02:00, nightly."""
    records = []
    for day in range(days):
        session = f"botocore-session-{1_700_000_000 + day * 86_400}"
        for n in range(30):
            moment = START + timedelta(days=day, hours=2, seconds=n * 19)
            records.append(
                {
                    "eventVersion": "1.08",
                    "eventTime": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "eventID": f"nightly-{day}-{n}",
                    "eventName": "GetSecretValue",
                    "eventSource": "secretsmanager.amazonaws.com",
                    "eventType": "AwsApiCall",
                    "awsRegion": "eu-west-1",
                    "sourceIPAddress": "10.1.2.3",
                    "recipientAccountId": "111111111111",
                    "readOnly": True,
                    "requestParameters": {"secretId": f"reports/db-{n}"},
                    "userIdentity": {
                        "type": "AssumedRole",
                        "principalId": f"AROAEXAMPLE:{session}",
                        "arn": f"arn:aws:sts::111111111111:assumed-role/nightly-report/{session}",
                        "accountId": "111111111111",
                        "sessionContext": {
                            "sessionIssuer": {
                                "type": "Role",
                                "userName": "nightly-report",
                                "arn": "arn:aws:iam::111111111111:role/nightly-report",
                            }
                        },
                    },
                }
            )
    return records


def onprem(count: int, days: int, seed: int) -> list[dict[str, Any]]:
    """Logins and sudo of 40 accounts, each on its own four of 30 hosts."""
    rng = random.Random(seed)
    hosts = [f"srv{n:02d}" for n in range(30)]
    accounts = {f"user{n:02d}": rng.sample(hosts, 4) for n in range(40)}
    names = sorted(accounts)
    docs = []
    for number in range(count):
        moment = START + timedelta(seconds=number * days * 86_400 / count)
        user = rng.choice(names)
        host = rng.choice(accounts[user])
        sudo = rng.random() < 0.3
        event: dict[str, Any] = {
            "id": f"onprem-{number}",
            "kind": "event",
            "dataset": "system.auth",
            "action": "sudo" if sudo else "ssh_login",
            "outcome": "success",
            "category": ["authentication"] if not sudo else ["process"],
            "type": ["start"],
        }
        docs.append(
            {
                "@timestamp": format_timestamp(moment),
                "event": event,
                "host": {"name": host},
                "user": {"name": user},
                "process": {"name": "sudo" if sudo else "sshd"},
                "message": f"{user} on {host}",
            }
        )
    return docs


def weeks(events: int, days: int, seed: int) -> list[dict[str, Any]]:
    cloud = events - events // 4
    records = list(ctgen.generate_records(cloud, start=START, span=timedelta(days=days), seed=seed))
    records += nightly_secrets(days)
    docs = [cloudtrail.normalize(record).to_document() for record in records]
    docs += onprem(events // 4, days, seed)
    docs.sort(key=lambda doc: doc["@timestamp"])
    return docs


def main_pack(out: Path) -> Path:
    """The built-in pack as ``main`` has it, written out with ``git show``."""
    folder = out / "main-pack"
    folder.mkdir(parents=True, exist_ok=True)
    names = subprocess.run(
        ["git", "ls-tree", "--name-only", "main", "daemon/rules/builtin/"],
        cwd=ROOT,
        capture_output=True,
        check=True,
        text=True,
    ).stdout.split()
    for name in names:
        text = subprocess.run(
            ["git", "show", f"main:{name}"], cwd=ROOT, capture_output=True, check=True
        ).stdout
        (folder / Path(name).name).write_bytes(text)
    return folder


def engine_run(loaded: Loaded, docs: list[dict[str, Any]]) -> tuple[float, list[Any]]:
    maker = HitMaker(loaded)
    correlator = Correlator(loaded)
    began = time.perf_counter()
    alerts: dict[str, Any] = {}
    batch: list[Hit] = []
    for doc in docs:
        batch.extend(maker.hits(doc, "bench"))
        if len(batch) >= 1000:
            alerts.update((alert.id, alert) for alert in correlator.feed(batch))
            batch = []
    alerts.update((alert.id, alert) for alert in correlator.feed(batch))
    return time.perf_counter() - began, list(alerts.values())


def per_day(alerts: list[Any], rules: set[str] | None = None) -> dict[str, Any]:
    """Alerts raised per day after the learning window (by first seen), by rule."""
    after = START + timedelta(days=LEARNING)
    late = [a for a in alerts if a.first_seen >= after and (rules is None or a.rule_id in rules)]
    days = Counter(a.first_seen.date().isoformat() for a in late)
    return {
        "per_day": dict(sorted(days.items())),
        "by_rule": dict(Counter(a.rule_id for a in late).most_common()),
    }


def state_size(folder: Path) -> dict[str, Any]:
    """The built-in rules' state for 5,000 principals, 300 actions and 300 hosts, committed
    to a SQLite table shaped like the correlator's every 2,000 hits, as a round would."""
    loaded = load_rules([BUILTIN])
    learner = Learner(loaded.behaviours)
    principals = [f"principal-{n}" for n in range(5_000)]
    hosts = [f"host-{n}" for n in range(300)]
    actions = [f"Action{n}" for n in range(300)]
    rng = random.Random(1)
    path = folder / "state.db"
    path.unlink(missing_ok=True)
    db = sqlite3.connect(path)
    db.execute("PRAGMA page_size = 8192")
    db.execute(
        "CREATE TABLE correlator_state (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID"
    )
    fed = 0

    def commit() -> None:
        rows = learner.changes()
        db.executemany(
            "INSERT OR REPLACE INTO correlator_state VALUES (?, ?)",
            [(row, value) for row, value in rows.items() if value is not None],
        )
        db.executemany(
            "DELETE FROM correlator_state WHERE key = ?",
            [(row,) for row, value in rows.items() if value is None],
        )
        db.commit()

    def feed(rule: str, **values: str) -> None:
        nonlocal fed
        fed += 1
        moment = START + timedelta(milliseconds=100 * fed)
        learner.feed(Hit(rule, Evidence(f"e{fed}", moment, "bench"), "bench", values))
        if fed % 2_000 == 0:
            commit()

    tracemalloc.start()
    for name in principals:
        user = {"user.name": name}
        for action in ("StartSession", "SendSSHPublicKey", "SendSerialConsoleSSHPublicKey"):
            feed("interactive_access_opened", **user, **{"event.action": action})
        for action in ("GetFederationToken", "CreateAccessKey", "CreateLoginProfile"):
            feed("credentials_minted", **user, **{"event.action": action})
        for address in range(3):
            feed("aws_console_login_success", **user, **{"source.ip": f"10.0.{address}.9"})
        feed("person_signed_in_to_aws", actor=name)
        for n in range(12):
            secret = f"{rng.choice(actions)}/{n}"
            feed("secret_value_read", **user, **{"requestParameters.secretId": secret})
        for host in hosts:
            feed("host_user_switched", **user, **{"host.name": host})
            feed("host_login", **user, **{"host.name": host})
    learner.prune(START + timedelta(milliseconds=100 * fed))  # the windows end; peaks stay
    commit()
    memory = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    db.execute("VACUUM")
    rows = db.execute("SELECT count(*) FROM correlator_state").fetchone()[0]
    db.close()
    return {
        "hits_fed": fed,
        "terms": {rule: len(terms) for rule, terms in learner.terms.items()},
        "groups": {rule: len(groups) for rule, groups in learner.groups.items()},
        "rows": rows,
        "memory_mb": round(memory / 1e6, 1),
        "sqlite_mb": round(os.path.getsize(path) / 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--days", type=int, default=21)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    parser.add_argument(
        "--parts", nargs="+", choices=("state", "weeks"), default=["state", "weeks"]
    )
    args = parser.parse_args()
    # stdout is the figures: the rules' one-off notices (rule_learning) stay out of it.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    figures: dict[str, Any] = {"date": datetime.now(UTC).date().isoformat()}
    figures["load_before"] = os.getloadavg()
    args.out.mkdir(parents=True, exist_ok=True)
    if "state" in args.parts:
        figures["state"] = state_size(args.out)
    if "weeks" in args.parts:
        figures.update(weeks_figures(args))
    figures["load_after"] = os.getloadavg()
    print(json.dumps(figures, indent=2))


def weeks_figures(args: argparse.Namespace) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    docs = weeks(args.events, args.days, args.seed)
    # The daemon never holds a million documents; frozen, the collector does not walk
    # them again and again, which would charge the pack that allocates more for them.
    gc.freeze()
    figures["events"] = len(docs)
    packs = {"main": load_rules([main_pack(args.out)]), "this": load_rules([BUILTIN])}
    timings: dict[str, list[float]] = {name: [] for name in packs}
    found: dict[str, list[Any]] = {}
    for _ in range(args.runs):  # interleaved, so drift in the machine's load hits both
        for name, loaded in packs.items():
            seconds, found[name] = engine_run(loaded, docs)
            timings[name].append(seconds)
    for name, alerts in found.items():
        figures[f"alerts_{name}"] = per_day(alerts)
        figures[f"secrets_read_burst_{name}"] = sum(
            alert.rule_id == "secrets_read_burst" for alert in alerts
        )
    behaviours = {rule.info.id for rule in packs["this"].behaviours}
    figures["alerts_this_new_rules"] = per_day(found["this"], behaviours)
    for name, runs in timings.items():
        figures[f"engine_{name}_events_per_sec"] = round(len(docs) / statistics.median(runs))
        figures[f"engine_{name}_runs"] = [round(len(docs) / seconds) for seconds in runs]
    figures["cost_this_over_main"] = round(
        figures["engine_main_events_per_sec"] / figures["engine_this_events_per_sec"], 3
    )
    return figures


if __name__ == "__main__":
    main()
