"""What the syslog listeners publish on /metrics, bounded however many peers send."""

from __future__ import annotations

from connectors.base import SourceContext
from connectors.sources.syslog_tcp import SyslogTcpConfig, SyslogTcpSource
from connectors.sources.syslog_udp import SyslogUdpConfig, SyslogUdpSource
from connectors.syslog.listener import MAX_PEERS_COUNTED


def test_peers_beyond_the_cap_are_counted_as_other() -> None:
    """Past MAX_PEERS_COUNTED senders, new peers share one 'other' series per counter."""
    source = SyslogTcpSource(SyslogTcpConfig(listen="tcp:127.0.0.1:0"), SourceContext("in", {}))
    for n in range(MAX_PEERS_COUNTED + 50):
        source.counters(f"10.0.{n // 256}.{n % 256}").messages += 1
    messages = [m for m in source.metrics() if m.name == "syslog_messages_total"]
    assert len(messages) == MAX_PEERS_COUNTED + 1
    [other] = [m for m in messages if m.labels == {"peer": "other"}]
    assert other.value == 50
    assert sum(m.value for m in messages) == MAX_PEERS_COUNTED + 50


def test_each_transport_publishes_what_it_can_count() -> None:
    """UDP has drops and no connections; TCP has connections, open and rejected ones."""
    udp = SyslogUdpSource(SyslogUdpConfig(listen="udp:127.0.0.1:0"), SourceContext("u", {}))
    tcp = SyslogTcpSource(SyslogTcpConfig(listen="tcp:127.0.0.1:0"), SourceContext("t", {}))
    for source in (udp, tcp):
        counters = source.counters("192.0.2.1")
        counters.messages, counters.bytes = 3, 300
    udp_names = {m.name for m in udp.metrics()}
    tcp_names = {m.name for m in tcp.metrics()}
    assert "syslog_messages_dropped_total" in udp_names - tcp_names
    assert {"syslog_connections_total", "syslog_connections_open"} <= tcp_names - udp_names
    [sent] = [m for m in tcp.metrics() if m.name == "syslog_received_bytes_total"]
    assert (sent.value, sent.labels, sent.kind) == (300, {"peer": "192.0.2.1"}, "counter")
