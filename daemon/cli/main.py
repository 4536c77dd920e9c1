"""The ``auditcorr`` command: the parser made of every command module, and the errors
every command reports the same way."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

from connectors.base import ConfigError
from daemon import __version__
from daemon.cli import (
    alerts,
    api,
    backfill,
    changes,
    check_config,
    cluster,
    doctor,
    export,
    migrate_store,
    quarantine,
    rules,
    run,
    sources,
    timeline,
    verify_digests,
    whois,
)
from daemon.cli.base import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, Commands
from daemon.config import Config, ConfigFileError, load_config
from daemon.logs import configure
from daemon.store.base import StoreUnavailableError
from daemon.store.schema import StoreUpgradeError

REGISTER: Final[tuple[Callable[[Commands], None], ...]] = (
    run.register,
    check_config.register,
    doctor.register,
    backfill.register,
    sources.register,
    cluster.register,
    timeline.register,
    quarantine.register,
    changes.register,
    whois.register,
    alerts.register,
    rules.register,
    export.register,
    verify_digests.register,
    migrate_store.register,
    api.register,
)
"""Every command, in the order ``auditcorr --help`` lists them."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return EXIT_CONFIG
    config: Config | None = None
    if args.config_read == "always" or (args.config_read == "if_given" and args.config):
        try:
            config = load_config(Path(args.config))
        except ConfigFileError as err:
            return _config_problems(err)
    configure(getattr(args, "log_format", None) or (config.daemon.log_format if config else "auto"))
    try:
        result: int = args.handler(args, config)
    except ConfigFileError as err:
        # A command that reads configs of its own (migrate-store --from/--to).
        return _config_problems(err)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader (head, less) went away: not an error.  Point stdout at
        # /dev/null so the interpreter's final flush does not complain.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except (ValueError, FileNotFoundError, ConfigError) as err:
        print(f"auditcorr: {err}", file=sys.stderr)
        return EXIT_CONFIG
    except (StoreUpgradeError, StoreUnavailableError) as err:
        print(f"auditcorr: {err}", file=sys.stderr)
        return EXIT_FAILED
    return result


def _config_problems(err: ConfigFileError) -> int:
    print(f"{err.path}: {len(err.errors)} problem(s) found", file=sys.stderr)
    for problem in err.errors:
        print(f"  {problem}", file=sys.stderr)
    return EXIT_CONFIG


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="auditcorr",
        description="Hybrid on-prem/cloud audit correlator: one timeline of CloudTrail, "
        "syslog and change records.",
    )
    parser.add_argument("--version", action="version", version=f"auditcorr {__version__}")
    commands = Commands(parser)
    for register in REGISTER:
        register(commands)
    return parser
