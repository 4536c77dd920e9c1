"""``syslog_tcp``: the syslog listener on TCP (RFC 6587).

Newline framing or octet counting, decided per connection by its first byte
(see :mod:`connectors.syslog.framing`).  It acknowledges nothing upstream (RELP
does, ``syslog_relp``), so it never waits for a batch to be committed.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from connectors.config import ConnectorConfig
from connectors.syslog.stream import StreamListener, StreamSettings


class SyslogTcpConfig(StreamSettings):
    scheme: ClassVar[str] = "tcp"
    type: Literal["syslog_tcp"] = "syslog_tcp"


class SyslogTcpSource(StreamListener):
    config_model: ClassVar[type[ConnectorConfig]] = SyslogTcpConfig
    config: SyslogTcpConfig
