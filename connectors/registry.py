"""The one table that maps a config ``type`` to its connector class.

Imports are lazy, so a client library (boto3, aiomqtt) loads only when a
connector that needs it is configured.  Adding a connector adds one line here.
"""

from __future__ import annotations

import importlib
from typing import Any

SOURCES: dict[str, str] = {
    "cloudtrail_files": "connectors.cloudtrail_files:CloudtrailFilesSource",
    "changes_files": "connectors.changes_files:ChangesFilesSource",
    "changes_http": "connectors.changes_http:ChangesHttpSource",
    "servicenow": "connectors.servicenow:ServicenowSource",
    "syslog_udp": "connectors.syslog_net:SyslogUdpSource",
    "syslog_tcp": "connectors.syslog_net:SyslogTcpSource",
    "syslog_tls": "connectors.syslog_net:SyslogTlsSource",
    "syslog_relp": "connectors.syslog_relp:SyslogRelpSource",
    "syslog_file": "connectors.log_file:SyslogFileSource",
    "auditd_file": "connectors.log_file:AuditdFileSource",
    "journald": "connectors.journald:JournaldSource",
    "cloudtrail_s3": "connectors.cloudtrail_s3:CloudtrailS3Source",
    "cloudtrail_sqs": "connectors.cloudtrail_sqs:CloudtrailSqsSource",
    "cloudtrail_eventbridge": "connectors.cloudtrail_eventbridge:CloudtrailEventbridgeSource",
    "cloudtrail_cloudwatch": "connectors.cloudtrail_cloudwatch:CloudtrailCloudwatchSource",
    "cloudtrail_lookup": "connectors.cloudtrail_lookup:CloudtrailLookupSource",
    "gcp_audit_files": "connectors.sources.gcp_audit_files:GcpAuditFilesSource",
}

OUTPUTS: dict[str, str] = {
    "console": "connectors.console:ConsoleOutput",
    "webhook": "connectors.webhook:WebhookOutput",
    "slack": "connectors.slack:SlackOutput",
    "mattermost": "connectors.mattermost:MattermostOutput",
    "rocketchat": "connectors.rocketchat:RocketchatOutput",
    "teams": "connectors.teams:TeamsOutput",
    "mqtt": "connectors.mqtt:MqttOutput",
    "syslog": "connectors.syslog_output:SyslogOutput",
    "email": "connectors.email_output:EmailOutput",
}


def load(table: dict[str, str], type_name: str) -> Any:
    """The class registered for ``type_name``; KeyError when there is none."""
    module_name, _, class_name = table[type_name].partition(":")
    return getattr(importlib.import_module(module_name), class_name)
