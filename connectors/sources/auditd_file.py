"""``auditd_file``: the auditd log (``/var/log/audit/audit.log``) tailed across rotation.

Tailing, checkpoints and rotation are :mod:`connectors.filetail`'s; this type
keeps the records of one audit event in one payload.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar, Literal

from connectors.config import ConfigPath, ConnectorConfig
from connectors.filetail import LogFileConfig, LogFileSource

_AUDIT_EVENT = re.compile(rb"msg=audit\(\d+\.\d+:\d+\)")


class AuditdFileConfig(LogFileConfig):
    type: Literal["auditd_file"] = "auditd_file"
    path: ConfigPath = Path("/var/log/audit/audit.log")


class AuditdFileSource(LogFileSource):
    """``/var/log/audit/audit.log``: the records of one event are assembled by the normalizer."""

    config_model: ClassVar[type[ConnectorConfig]] = AuditdFileConfig
    log_type = "auditd"

    def whole_events(self, lines: list[bytes]) -> int:
        """Leave the records of the last event for the next payload when more lines
        follow, so a payload boundary does not split an event in two."""
        last = _AUDIT_EVENT.search(lines[-1]) if lines else None
        if last is None:
            return len(lines)
        keep = len(lines) - 1
        while keep > 0 and (found := _AUDIT_EVENT.search(lines[keep - 1])) and found[0] == last[0]:
            keep -= 1
        return keep or len(lines)
