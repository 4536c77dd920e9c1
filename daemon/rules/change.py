"""Which events change something: the candidates of the ``unapproved_change`` rule.

``unapproved_change`` raises an alert for a change-class event that no
approved change record covers.  This module answers the first half; the
coverage query of the change records answers the second.  The rule
(``builtin/changes.yml``) selects the events of logsource
``{product: auditcorr, category: change}``, for which ``is_change_class``
holds; detection (``hits.HitMaker.hits``) gives each hit of ``CHANGE_RULE``
the event's coverage facts, and ``unapproved.Approvals`` drops the covered
ones where alerts are made, so an uncovered one's alert names the nearest
records in ``Alert.context``.

Change-class events:

* CloudTrail: a successful write (``readOnly`` false, no ``errorCode``) that
  is not in ``BENIGN_WRITES``: sign-ins and session credentials are writes to
  CloudTrail but change nothing an operator approves.  A failed write
  changed nothing.
* A successful ``sudo`` command.
* On a host: user, group and password changes; package installs, removals and
  upgrades; services started, stopped, enabled, disabled or restarted (the
  ``event.action`` values of the on-prem ECS contract), and the auditd records
  of account changes.
"""

from __future__ import annotations

from typing import Any, Final

CHANGE_RULE: Final = "unapproved_change"

BENIGN_WRITES: Final = frozenset(
    {
        # Signing in and out of the console and the access portal.
        "ConsoleLogin",
        "Logout",
        "SwitchRole",
        "ExitRole",
        "RenewRole",
        "CheckMfa",
        "CredentialVerification",
        "CredentialChallenge",
        "UserAuthentication",
        # Session credentials: every role use and federation makes one.
        "AssumeRole",
        "AssumeRoleWithSAML",
        "AssumeRoleWithWebIdentity",
        "GetSessionToken",
        "GetFederationToken",
        "GetRoleCredentials",
        "CreateToken",
        "RegisterClient",
        "StartDeviceAuthorization",
        # Data-plane calls CloudTrail marks as writes that change no configuration.
        "Decrypt",
        "Encrypt",
        "GenerateDataKey",
        "GenerateDataKeyWithoutPlaintext",
        "ReEncrypt",
        "Sign",
        "Verify",
        "SendCommand",
        "StartSession",
        "ResumeSession",
        "TerminateSession",
        "CreateLogStream",
        "PutLogEvents",
    }
)
"""CloudTrail writes that are not changes: sign-ins, session credentials,
cryptographic and session data-plane calls."""

HOST_CHANGES: Final = frozenset(
    {
        "user_created",
        "user_deleted",
        "user_modified",
        "group_created",
        "group_deleted",
        "group_modified",
        "password_changed",
        "package_installed",
        "package_removed",
        "package_upgraded",
        "service_started",
        "service_stopped",
        "service_enabled",
        "service_disabled",
        "service_restarted",
        # auditd record types of account changes
        "add_user",
        "del_user",
        "add_group",
        "del_group",
        "user_mgmt",
        "grp_mgmt",
        "user_chauthtok",
    }
)


def is_change_class(doc: dict[str, Any]) -> bool:
    """True when the event (an ECS document) changes something an approval should cover."""
    event = doc.get("event") or {}
    dataset = event.get("dataset")
    if dataset == "aws.cloudtrail":
        original = doc.get("original") or {}
        read_only = original.get("readOnly")
        if read_only is True or str(read_only).lower() == "true":
            return False
        if original.get("errorCode") or event.get("outcome") == "failure":
            return False
        return original.get("eventName") not in BENIGN_WRITES
    action = event.get("action")
    if action == "sudo":
        return bool(event.get("outcome") == "success")
    return action in HOST_CHANGES and event.get("outcome") != "failure"
