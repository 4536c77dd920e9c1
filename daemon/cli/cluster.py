"""``auditcorr cluster status``: the members of a cluster, its leader, their sources' lag."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Final

import orjson

from daemon.cli.base import EXIT_OK, Commands
from daemon.config import Config

EXIT_NO_CLUSTER: Final = 1


def register(commands: Commands) -> None:
    cluster = commands.add("cluster", _cluster, "the daemons sharing this PostgreSQL store")
    cluster.add_argument("action", choices=["status"], help="status: members, leader, lag")
    cluster.add_argument("--json", action="store_true", help="JSON output")


def _cluster(args: argparse.Namespace, config: Config) -> int:
    if config.store.type != "postgresql" or config.store.dsn is None:
        print('no cluster: the store is not PostgreSQL ([store] type = "postgresql")')
        return EXIT_NO_CLUSTER
    from daemon.cluster.members import listing
    from daemon.store.postgres import connect

    with connect(config.store.dsn.reveal(), readonly=True) as db:
        members = listing(db, config.cluster.failover_secs, datetime.now(UTC))
    leaders = [entry["member"] for entry in members if entry["leader"]]
    if args.json:
        report = {"leader": leaders[0] if leaders else None, "members": members}
        print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
        return EXIT_OK
    print(f"leader: {leaders[0] if leaders else 'none'}")
    for entry in members:
        role = "leader" if entry["leader"] else entry["state"]
        print(
            f"{entry['member']} ({entry['host']} pid {entry['pid']}): {role},"
            f" last seen {entry['last_seen']}"
        )
        for name, info in entry["sources"].items():
            lag = "-" if info["lag_secs"] is None else f"{info['lag_secs']:.0f}s"
            print(f"  {name}: lag {lag}, checkpoint {info['checkpoint_at'] or '-'}")
    return EXIT_OK
