"""Output ``slack``: a Slack incoming webhook, the alert as Block Kit in a coloured attachment."""

from __future__ import annotations

from typing import Literal

from connectors.http import ChatOutput, HttpOutputConfig
from connectors.messages import chat


class SlackConfig(HttpOutputConfig):
    type: Literal["slack"] = "slack"


class SlackOutput(ChatOutput):
    config_model = SlackConfig
    render = staticmethod(chat.slack)
