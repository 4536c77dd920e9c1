"""What the command modules share: how a command registers, and the exit statuses.

Each module in ``daemon/cli/`` registers its command with ``register(commands)``,
listed once in ``main.REGISTER``; ``Commands`` gives every command its ``--config``
option the same way, so one ``--config`` works with all of them.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Final, Literal

from daemon.config import Config

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_CONFIG: Final = 2
DEFAULT_CONFIG: Final = "/etc/auditcorr/config.toml"

Handler = Callable[[argparse.Namespace, Config], int]
"""A command's work: its arguments and the config file, read and checked before."""
ConfigFreeHandler = Callable[[argparse.Namespace, Config | None], int]
"""A command that needs no config file: it gets one only when ``--config`` was given."""


class Commands:
    """The subcommands of one parser (``auditcorr``, ``auditcorr rules``), each added with
    its handler and a ``--config`` option.

    ``inherits_config``: the subcommands of a command that also runs alone (``alerts
    retry``), whose ``--config`` may come before their name.
    """

    def __init__(
        self,
        parser: argparse.ArgumentParser,
        *,
        required: bool = False,
        inherits_config: bool = False,
    ) -> None:
        self._commands = parser.add_subparsers(
            title="commands", metavar="COMMAND", required=required
        )
        self._inherits_config = inherits_config

    def add(
        self,
        name: str,
        handler: Handler,
        help_text: str,
        *,
        description: str | None = None,
        config_read: Literal["always", "never"] = "always",
    ) -> argparse.ArgumentParser:
        """A command that takes a config file (``$AUDITCORR_CONFIG`` or the default).

        ``config_read="never"`` hands the handler None: it reads ``args.config`` itself
        (``doctor`` reports an invalid config as one of its findings)."""
        sub = self._parser(name, help_text, description)
        # SUPPRESS under a command that runs alone (``alerts retry``): a --config given
        # before the subcommand's name is not overwritten by this default.
        default = (
            argparse.SUPPRESS
            if self._inherits_config
            else os.environ.get("AUDITCORR_CONFIG", DEFAULT_CONFIG)
        )
        sub.add_argument(
            "--config",
            "-c",
            default=default,
            help=f"config file (default: $AUDITCORR_CONFIG or {DEFAULT_CONFIG})",
        )
        sub.set_defaults(handler=handler, config_read=config_read)
        return sub

    def add_config_free(
        self,
        name: str,
        handler: ConfigFreeHandler,
        help_text: str,
        *,
        description: str | None = None,
    ) -> argparse.ArgumentParser:
        """A command that needs no config file; ``--config`` has no default, and a file
        given is read and checked as by every command, so an operator can pass it
        everywhere."""
        sub = self._parser(name, help_text, description)
        sub.add_argument(
            "--config",
            "-c",
            help="config file: this command needs none, but checks the one given like every"
            " command",
        )
        sub.set_defaults(handler=handler, config_read="if_given")
        return sub

    def group(self, name: str, help_text: str) -> Commands:
        """A command made of subcommands (``rules list``, ``api hash-token``) that runs
        nothing alone."""
        return Commands(self._parser(name, help_text, None), required=True)

    def _parser(
        self, name: str, help_text: str, description: str | None
    ) -> argparse.ArgumentParser:
        return self._commands.add_parser(name, help=help_text, description=description or help_text)
