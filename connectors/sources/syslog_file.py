"""``syslog_file``: a syslog file (``/var/log/auth.log``) tailed across rotation.

Tailing, checkpoints and rotation are :mod:`connectors.filetail`'s; this type
adds the syslog settings (the timezone of timestamps that carry none).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from connectors.config import ConnectorConfig
from connectors.filetail import LogFileConfig, LogFileSource
from connectors.syslog.batch import SyslogSettings


class SyslogFileConfig(LogFileConfig, SyslogSettings):
    type: Literal["syslog_file"] = "syslog_file"


class SyslogFileSource(LogFileSource):
    config_model: ClassVar[type[ConnectorConfig]] = SyslogFileConfig
    config: SyslogFileConfig
    log_type = "syslog"

    def timezone(self) -> str:
        return self.config.timezone
