"""Syslog: RFC 3164 and 5424 lines from files and listeners, with the auth lines of
sshd, sudo, su, login and PAM read as ``system.auth`` events (``daemon/normalize/``:
``syslog.py``, ``auth.py``, ``programs.py``).

``rules test`` reads every file no other log type claims as syslog, JSON files
(``*.json``, ``*.json.gz``) excepted: plain lines as a host writes them get the
header a syslog source adds (``host.batch_payload``).
"""

from __future__ import annotations

from daemon.logtypes import Logsource, LogType, host
from daemon.normalize import syslog

_AUTH = ("system.auth",)
_SYSLOG = ("system.syslog",)


def claims_file(name: str, head: bytes) -> bool:
    """Any file but JSON ones: the last resort of ``rules test``."""
    return not name.endswith((".json", ".json.gz"))


LOG_TYPE = LogType(
    name="syslog",
    decode=syslog.decode,
    normalize=syslog.normalize,
    datasets=_AUTH + _SYSLOG,
    logsources={
        # ``linux`` alone is the builtin syslog rules: auth and syslog.
        ("linux", None, None): Logsource(_AUTH + _SYSLOG),
        ("linux", "auth", None): Logsource(_AUTH),
        ("linux", "sshd", None): Logsource(_AUTH, where={"process.name": "sshd"}),
        ("linux", "sudo", None): Logsource(_AUTH, where={"process.name": "sudo"}),
        ("linux", "su", None): Logsource(_AUTH, where={"process.name": "su"}),
        ("linux", "syslog", None): Logsource(_SYSLOG),
        ("linux", "cron", None): Logsource(_SYSLOG, where={"process.name": "cron"}),
    },
    is_change=host.is_change,
    change_action=host.change_action,
    action_kinds=host.ACTION_KINDS,
    claims_file=claims_file,
    file_payload=host.batch_payload,
)
