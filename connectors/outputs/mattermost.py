"""Output ``mattermost``: a Mattermost incoming webhook, the alert as a coloured attachment."""

from __future__ import annotations

from typing import Literal

from connectors.http import ChatOutput, HttpOutputConfig
from connectors.messages import chat


class MattermostConfig(HttpOutputConfig):
    type: Literal["mattermost"] = "mattermost"


class MattermostOutput(ChatOutput):
    config_model = MattermostConfig
    render = staticmethod(chat.attachment)
