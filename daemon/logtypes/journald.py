"""The systemd journal (``journalctl -o json``): its entries are syslog's events, so
the syslog log type's logsources match them and the host contract answers for them."""

from __future__ import annotations

from daemon.logtypes import LogType, host
from daemon.normalize import journald

LOG_TYPE = LogType(
    name="journald",
    decode=journald.decode,
    normalize=journald.normalize,
    datasets=("system.auth", "system.syslog"),
    is_change=host.is_change,
    change_action=host.change_action,
    action_kinds=host.ACTION_KINDS,
)
