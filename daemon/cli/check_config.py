"""``auditcorr check-config``: the config file validated, and a summary of what it sets up."""

from __future__ import annotations

import argparse

from daemon.cli.base import EXIT_OK, Commands
from daemon.config import Config


def register(commands: Commands) -> None:
    commands.add("check-config", _check_config, "validate the config file and print a summary")


def _store_where(config: Config) -> str:
    """The store's file, or its database's connection string without the password."""
    if config.store.type == "postgresql" and config.store.dsn is not None:
        from daemon.store.postgres import describe

        return describe(config.store.dsn.reveal()).removeprefix("postgresql ")
    return str(config.store_path)


def _check_config(args: argparse.Namespace, config: Config) -> int:
    print(f"{config.path}: valid")
    print(
        f"  store: {config.store.type} {_store_where(config)}"
        f" (retention {config.store.retention_days} days)"
    )
    print(f"  state_dir: {config.daemon.state_dir}  timezone: {config.daemon.timezone}")
    print(f"  sources: {len(config.sources)}")
    for name, source in config.sources.items():
        details = ", ".join(
            f"{key}={value}" for key, value in source.model_dump().items() if key != "type"
        )
        print(f"    {name}: {source.type} ({details})")
    print(f"  outputs: {len(config.outputs)}")
    for name, output in config.outputs.items():
        print(f"    {name}: {output.type}")
    print(f"  people in identity map: {len(config.identity.people)}")
    return EXIT_OK
