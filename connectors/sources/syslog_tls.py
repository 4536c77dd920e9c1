"""``syslog_tls``: the syslog listener on TLS (RFC 5425).

The stream listener of ``syslog_tcp`` with a server certificate and, when
``client_ca_file`` is set, client certificates required.
"""

from __future__ import annotations

import ssl
from typing import ClassVar, Literal

from connectors.config import ConfigPath, ConnectorConfig
from connectors.syslog.listener import server_tls
from connectors.syslog.stream import StreamListener, StreamSettings


class SyslogTlsConfig(StreamSettings):
    scheme: ClassVar[str] = "tls"
    type: Literal["syslog_tls"] = "syslog_tls"
    cert_file: ConfigPath
    """Server certificate chain (PEM); read when the listener starts."""
    key_file: ConfigPath
    """Private key of ``cert_file`` (PEM)."""
    client_ca_file: ConfigPath | None = None
    """When set, clients must present a certificate signed by this CA."""


class SyslogTlsSource(StreamListener):
    config_model: ClassVar[type[ConnectorConfig]] = SyslogTlsConfig
    config: SyslogTlsConfig

    def _tls(self) -> ssl.SSLContext:
        return server_tls(self.config.cert_file, self.config.key_file, self.config.client_ca_file)
