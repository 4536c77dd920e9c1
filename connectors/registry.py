"""The one table that maps a config ``type`` to its connector class.

Imports are lazy, so a client library (boto3, aiomqtt) loads only when a
connector that needs it is configured.  Adding a connector adds one line here
(and one in a capability table such as ``DIGEST_CHECKS`` if it has that
capability); the daemon names no connector module.
"""

from __future__ import annotations

import importlib
from typing import Any

SOURCES: dict[str, str] = {
    "cloudtrail_files": "connectors.sources.cloudtrail_files:CloudtrailFilesSource",
    "changes_files": "connectors.sources.changes_files:ChangesFilesSource",
    "changes_http": "connectors.sources.changes_http:ChangesHttpSource",
    "servicenow": "connectors.sources.servicenow:ServicenowSource",
    "syslog_udp": "connectors.sources.syslog_udp:SyslogUdpSource",
    "syslog_tcp": "connectors.sources.syslog_tcp:SyslogTcpSource",
    "syslog_tls": "connectors.sources.syslog_tls:SyslogTlsSource",
    "syslog_relp": "connectors.sources.syslog_relp:SyslogRelpSource",
    "syslog_file": "connectors.sources.syslog_file:SyslogFileSource",
    "auditd_file": "connectors.sources.auditd_file:AuditdFileSource",
    "journald": "connectors.sources.journald:JournaldSource",
    "cloudtrail_s3": "connectors.sources.cloudtrail_s3:CloudtrailS3Source",
    "cloudtrail_sqs": "connectors.sources.cloudtrail_sqs:CloudtrailSqsSource",
    "cloudtrail_eventbridge": "connectors.sources.cloudtrail_eventbridge:CloudtrailEventbridgeSource",  # noqa: E501 - one line per type
    "cloudtrail_cloudwatch": "connectors.sources.cloudtrail_cloudwatch:CloudtrailCloudwatchSource",
    "cloudtrail_lookup": "connectors.sources.cloudtrail_lookup:CloudtrailLookupSource",
    "gcp_audit_files": "connectors.sources.gcp_audit_files:GcpAuditFilesSource",
}

OUTPUTS: dict[str, str] = {
    "console": "connectors.outputs.console:ConsoleOutput",
    "webhook": "connectors.outputs.webhook:WebhookOutput",
    "slack": "connectors.outputs.slack:SlackOutput",
    "mattermost": "connectors.outputs.mattermost:MattermostOutput",
    "rocketchat": "connectors.outputs.rocketchat:RocketchatOutput",
    "teams": "connectors.outputs.teams:TeamsOutput",
    "mqtt": "connectors.outputs.mqtt:MqttOutput",
    "syslog": "connectors.outputs.syslog:SyslogOutput",
    "email": "connectors.outputs.email:EmailOutput",
}

DIGEST_CHECKS: dict[str, str] = {
    "cloudtrail_s3": "connectors.sources.cloudtrail_s3:DigestCheckSource",
}
"""Source types that can check CloudTrail digest files (``auditcorr verify-digests``):
the type -> a source class that runs only that check and keeps its ``results``."""


def load(table: dict[str, str], type_name: str) -> Any:
    """The class registered for ``type_name``; KeyError when there is none."""
    module_name, _, class_name = table[type_name].partition(":")
    return getattr(importlib.import_module(module_name), class_name)
