"""Output ``rocketchat``: a Rocket.Chat incoming webhook, the alert as a coloured attachment."""

from __future__ import annotations

from typing import Literal

from connectors.http import ChatOutput, HttpOutputConfig
from connectors.messages import chat


class RocketchatConfig(HttpOutputConfig):
    type: Literal["rocketchat"] = "rocketchat"


class RocketchatOutput(ChatOutput):
    config_model = RocketchatConfig
    render = staticmethod(chat.attachment)
