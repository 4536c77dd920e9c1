"""Output ``console``: readable alert blocks on stdout or stderr (the demo uses it)."""

from __future__ import annotations

import sys
from typing import Literal
from zoneinfo import ZoneInfo

from connectors.base import Notification, Output
from connectors.config import OutputConfig
from connectors.messages.text import text_lines


class ConsoleConfig(OutputConfig):
    type: Literal["console"] = "console"
    endpoint: Literal["stdout", "stderr"] = "stdout"
    alert_url: str | None = None
    """Link to the alert in the web timeline, with ``{id}``."""


class ConsoleOutput(Output):
    config_model = ConsoleConfig
    config: ConsoleConfig

    async def send(self, notification: Notification) -> None:
        stream = sys.stdout if self.config.endpoint == "stdout" else sys.stderr
        lines = text_lines(notification, ZoneInfo(self.context.timezone), self.config.alert_url)
        # A few lines to a terminal or journald: small enough to write in the loop.
        stream.write("\n".join(lines) + "\n\n")
        stream.flush()
