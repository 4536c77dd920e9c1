"""Output ``teams``: a Microsoft Teams workflow webhook, the alert as an Adaptive Card."""

from __future__ import annotations

from typing import Literal

from connectors.http import ChatOutput, HttpOutputConfig
from connectors.messages import chat


class TeamsConfig(HttpOutputConfig):
    type: Literal["teams"] = "teams"


class TeamsOutput(ChatOutput):
    config_model = TeamsConfig
    render = staticmethod(chat.adaptive_card)
