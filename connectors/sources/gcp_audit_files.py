"""Google Cloud Audit Logs from a local directory tree: what a Cloud Logging sink writes.

A sink to Cloud Storage writes each audit log into its own folder tree
(``cloudaudit.googleapis.com/activity/YYYY/MM/DD/HH:MM:SS_HH:MM:SS_S0.json``,
likewise ``data_access``, ``system_event``, ``policy``), synced to the host,
e.g. with ``gcloud storage rsync``.  Files of LogEntry JSON, one per line or
as a JSON array, plain or gzip (``.json``, ``.json.gz``), are read as every
file-tree source reads them (``connectors/filetree.py``): each file is one
payload, checkpointed by its size and modification time.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from typing import Final, Literal

from connectors.cloudtrail.keys import day_of
from connectors.filetree import FileTreeConfig, FileTreeSource, Found

_HOUR: Final = re.compile(r"^(\d{2}:\d{2}:\d{2})_")
"""The start of the hour a sink's file covers, at the start of its name."""


class GcpAuditFilesConfig(FileTreeConfig):
    type: Literal["gcp_audit_files"] = "gcp_audit_files"


class GcpAuditFilesSource(FileTreeSource):
    config_model = GcpAuditFilesConfig
    config: GcpAuditFilesConfig
    log_type = "gcp_audit"
    suffixes = (".json.gz", ".json")

    def delivery_order(self, item: Found) -> tuple[str, str]:
        """The day folder and the hour in the name, as a sink writes them, else the
        modification time; the audit logs of one hour interleave."""
        day = day_of(item.relative.replace(os.sep, "/"))
        hour = _HOUR.match(item.path.name)
        if day is not None and hour is not None:
            return f"{day.isoformat()}T{hour[1]}", item.relative
        mtime = datetime.fromtimestamp(max(item.mtime_ns, 0) / 1e9, UTC)
        return mtime.strftime("%Y-%m-%dT%H:%M:%S"), item.relative
