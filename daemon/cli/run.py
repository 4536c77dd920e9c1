"""``auditcorr run``: the daemon, following every source until stopped."""

from __future__ import annotations

import argparse
import asyncio

from daemon.cli.base import EXIT_OK, Commands
from daemon.config import Config


def register(commands: Commands) -> None:
    run = commands.add("run", _run, "run the daemon: follow every source until stopped")
    run.add_argument("--log-format", choices=["auto", "json", "console"])


def _run(args: argparse.Namespace, config: Config) -> int:
    from daemon.app import run_daemon

    asyncio.run(run_daemon(config))
    return EXIT_OK
