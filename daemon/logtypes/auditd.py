"""The Linux audit log: records grouped into events by serial (``daemon/normalize/auditd.py``,
after Elastic's auditd mapping).  Sigma ``process_creation`` on ``linux`` is its
assembled EXECVE events."""

from __future__ import annotations

from daemon.logtypes import Logsource, LogType, host
from daemon.normalize import auditd

_PROCESS_FIELDS = {
    "Image": "process.executable",
    "CommandLine": "process.command_line",
    "CurrentDirectory": "process.working_directory",
    "ParentImage": "process.parent.executable",
    "ParentCommandLine": "process.parent.command_line",
    "User": "user.name",
    "LogonId": "user.audit.id",
}

LOG_TYPE = LogType(
    name="auditd",
    decode=auditd.decode,
    normalize=auditd.normalize,
    datasets=(auditd.DATASET,),
    logsources={
        ("linux", "auditd", None): Logsource(
            (auditd.DATASET,), fields={"type": "auditd.log.record_type"}, prefix="auditd.log"
        ),
        ("linux", None, "process_creation"): Logsource(
            (auditd.DATASET,), where={"event.action": "execve"}, fields=_PROCESS_FIELDS
        ),
    },
    is_change=host.is_change,
    change_action=host.change_action,
    action_kinds=host.ACTION_KINDS,
    file_payload=host.batch_payload,
)
