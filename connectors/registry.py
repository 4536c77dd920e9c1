"""The one table that maps a config ``type`` to its connector class.

Imports are lazy, so a client library (boto3, aiomqtt) loads only when a
connector that needs it is configured.  Adding a connector adds one line here.
"""

from __future__ import annotations

import importlib
from typing import Any

SOURCES: dict[str, str] = {
    "cloudtrail_files": "connectors.cloudtrail_files:CloudtrailFilesSource",
    "cloudtrail_s3": "connectors.cloudtrail_s3:CloudtrailS3Source",
    "cloudtrail_sqs": "connectors.cloudtrail_sqs:CloudtrailSqsSource",
    "cloudtrail_eventbridge": "connectors.cloudtrail_eventbridge:CloudtrailEventbridgeSource",
    "cloudtrail_cloudwatch": "connectors.cloudtrail_cloudwatch:CloudtrailCloudwatchSource",
}

OUTPUTS: dict[str, str] = {}


def load(table: dict[str, str], type_name: str) -> Any:
    """The class registered for ``type_name``; KeyError when there is none."""
    module_name, _, class_name = table[type_name].partition(":")
    return getattr(importlib.import_module(module_name), class_name)
