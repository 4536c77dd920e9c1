"""CloudTrail log files from a local directory tree.

Reads the layout AWS delivers to S3 (``AWSLogs/[o-ORG/]ACCOUNT/CloudTrail/
REGION/YYYY/MM/DD/*.json.gz``, e.g. synced with ``aws s3 sync``), plain
``.json`` files, or a flat directory, as every file-tree source does
(``connectors/filetree.py``): each file is one payload, checkpointed by its
size and modification time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from connectors.cloudtrail.keys import DIGEST, STAMP_FORMAT, SUFFIXES, stamp_of
from connectors.config import CloudtrailSourceConfig
from connectors.filetree import FileTreeConfig, FileTreeSource, Found


class CloudtrailFilesConfig(CloudtrailSourceConfig, FileTreeConfig):
    type: Literal["cloudtrail_files"] = "cloudtrail_files"


class CloudtrailFilesSource(FileTreeSource):
    config_model = CloudtrailFilesConfig
    config: CloudtrailFilesConfig
    log_type = "cloudtrail"
    suffixes = SUFFIXES

    def is_log(self, path: str) -> bool:
        """Log files, not the digests CloudTrail delivers beside them."""
        return super().is_log(path) and DIGEST not in path

    def delivery_order(self, item: Found) -> tuple[str, str]:
        """The delivery stamp in the name, else the modification time."""
        found = stamp_of(item.path.name)
        if found:
            return found, item.relative
        mtime = datetime.fromtimestamp(max(item.mtime_ns, 0) / 1e9, UTC)
        return mtime.strftime(STAMP_FORMAT), item.relative
