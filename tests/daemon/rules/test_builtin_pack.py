"""Every built-in rule: events that must raise it and near misses that must not."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from connectors.syslog.batch import header
from daemon.alert import Alert
from daemon.model import format_timestamp
from daemon.normalize import Limits, cloudtrail, syslog
from daemon.rules.correlate import Correlator
from daemon.rules.hits import HitMaker
from daemon.rules.loader import BUILTIN, load_rules
from daemon.rules.offline import run_files

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[3]
LOADED = load_rules([BUILTIN])
_ids = itertools.count()


def at(minutes: float) -> str:
    return format_timestamp(T0 + timedelta(minutes=minutes))


def ct(name: str, minute: float = 0, source: str = "iam.amazonaws.com", **extra: Any) -> Any:
    record: dict[str, Any] = {
        "eventVersion": "1.08",
        "eventTime": at(minute).replace(".000000", ""),
        "eventID": f"ct-{next(_ids)}",
        "eventName": name,
        "eventSource": source,
        "eventType": "AwsApiCall",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "203.0.113.66",
        "recipientAccountId": "111111111111",
        "readOnly": False,
        "userIdentity": {
            "type": "IAMUser",
            "userName": "mallory",
            "arn": "arn:aws:iam::111111111111:user/mallory",
            "accountId": "111111111111",
        },
    }
    record.update(extra)
    return cloudtrail.normalize(record).to_document()


def host(
    dataset: str, action: str, minute: float = 0, outcome: str | None = None, **fields: Any
) -> dict[str, Any]:
    """An on-prem event with the ECS fields the syslog and auditd normalizers produce."""
    event: dict[str, Any] = {"id": f"h-{next(_ids)}", "dataset": dataset, "action": action}
    if outcome:
        event["outcome"] = outcome
    doc: dict[str, Any] = {"@timestamp": at(minute), "event": event, "host": {"name": "db1"}}
    for dotted, value in fields.items():
        node = doc
        *parents, leaf = dotted.split("__")
        for name in parents:
            node = node.setdefault(name, {})
        node[leaf] = value
    return doc


def ssh(minute: float, outcome: str, ip: str = "203.0.113.66", user: str = "root") -> Any:
    return host(
        "system.auth",
        "ssh_login",
        minute,
        outcome,
        process__name="sshd",
        source__ip=ip,
        user__name=user,
        event__category=["authentication"],
        event__type=["start"],
        message=f"{'Accepted' if outcome == 'success' else 'Failed'} password for {user}",
    )


def line(minute: float, text: str) -> Any:
    """A real syslog line (``HOST PROGRAM[PID]: MESSAGE``), normalized as the daemon does."""
    stamp = (T0 + timedelta(minutes=minute)).strftime("%b %d %H:%M:%S")
    payload = header(int(T0.timestamp()) * 10**9, "UTC") + f"{stamp} {text}".encode()
    [record] = syslog.decode(payload, Limits())
    return syslog.normalize(record).to_document()


ATTEMPTS_FROM_ONE_ADDRESS = (
    "bastion01 sshd[11]: Failed none for root from 203.0.113.66 port 4000 ssh2",
    "gw dropbear[12]: Bad password attempt for 'root' from 203.0.113.66:4001",
    "gw dropbear[13]: Login attempt for nonexistent user 'admin' from 203.0.113.66:4002",
    "ftp1 vsftpd(pam_unix)[14]: authentication failure; logname= uid=0 euid=0 tty= ruser= "
    "rhost=203.0.113.66",
    "console1 login[15]: FAILED LOGIN 1 FROM 203.0.113.66 FOR root, Authentication failure",
)
"""Five failure forms of five programs: each is one attempt."""
ECHOES_FROM_ONE_ADDRESS = (
    "bastion01 sshd[21]: error: maximum authentication attempts exceeded for root from "
    "203.0.113.66 port 4000 ssh2 [preauth]",
    "bastion01 sshd[22]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 "
    "tty=ssh ruser= rhost=203.0.113.66  user=root",
    "bastion01 sshd[23]: Disconnected from invalid user admin 203.0.113.66 port 4003 [preauth]",
    "bastion01 sshd[24]: error: PAM: Authentication failure for root from 203.0.113.66",
    "bastion01 sshd[25]: User root from 203.0.113.66 not allowed because not listed in AllowUsers",
    "old1 sshd(pam_unix)[26]: 2 more authentication failures; logname= uid=0 euid=0 "
    "tty=NODEVssh ruser= rhost=203.0.113.66 user=root",
)
"""Failures that repeat or sum up an attempt another line reports: none counts."""


def su_attempt(minute: float, *, failed: bool = True) -> list[Any]:
    """One su password attempt as util-linux su and PAM log it on a Debian host."""
    lines = [f"db1 su[31]: {'FAILED SU ' if failed else ''}(to root) bob on pts/1"]
    if failed:
        lines[:0] = [
            "db1 su[31]: pam_unix(su:auth): authentication failure; logname=bob uid=1001 "
            "euid=0 tty=/dev/pts/1 ruser=bob rhost=  user=root",
            "db1 su[31]: pam_authenticate: Authentication failure",
        ]
    return [line(minute, text) for text in lines]


def sudo(minute: float, outcome: str, user: str = "dave", command: str = "/bin/ls") -> Any:
    extra: dict[str, Any] = {"system__auth__sudo__command": command}
    if outcome == "failure":
        extra["system__auth__sudo__error"] = "user NOT in sudoers"
    return host(
        "system.auth", "sudo", minute, outcome, process__name="sudo", user__name=user, **extra
    )


def alerts(docs: list[dict[str, Any]]) -> list[Alert]:
    maker = HitMaker(LOADED)
    hits = [hit for doc in docs for hit in maker.hits(doc, "test")]
    hits.sort(key=lambda hit: hit.timestamp)
    return Correlator(LOADED).feed(hits)


def rule_ids(docs: list[dict[str, Any]]) -> set[str]:
    return {alert.rule_id for alert in alerts(docs)}


def grant(name: str = "AttachUserPolicy", minute: float = 5, **params: Any) -> Any:
    return ct(name, minute, requestParameters=params or {"userName": "backup-admin"})


def denied(minute: float, name: str = "AttachRolePolicy") -> Any:
    return ct(name, minute, errorCode="AccessDenied", errorMessage="not authorized")


def login(mfa: str, result: str = "Success", kind: str = "IAMUser", minute: float = 0) -> Any:
    return ct(
        "ConsoleLogin",
        minute,
        source="signin.amazonaws.com",
        additionalEventData={"MFAUsed": mfa},
        responseElements={"ConsoleLogin": result},
        userIdentity={"type": kind, "userName": "mallory", "accountId": "111111111111"},
    )


def open_ingress(cidr: str) -> Any:
    return ct(
        "AuthorizeSecurityGroupIngress",
        source="ec2.amazonaws.com",
        requestParameters={
            "groupId": "sg-1",
            "ipPermissions": {"items": [{"ipRanges": {"items": [{"cidrIp": cidr}]}}]},
        },
    )


def bucket_policy(principal: Any) -> Any:
    statement = {"Effect": "Allow", "Principal": principal, "Action": "s3:GetObject"}
    return ct(
        "PutBucketPolicy",
        source="s3.amazonaws.com",
        requestParameters={"bucketName": "b", "bucketPolicy": {"Statement": [statement]}},
    )


def secret(minute: float, name: str) -> Any:
    return ct(
        "GetSecretValue",
        minute,
        source="secretsmanager.amazonaws.com",
        readOnly=True,
        requestParameters={"secretId": name},
    )


DAY = 24 * 60
"""Minutes."""


def learned(*docs: Any) -> list[Any]:
    """``docs`` after a history that began 14 days and an hour before ``T0``: new_terms and
    baseline rules learn from what ``docs`` hold before ``T0`` and judge the rest."""
    start = -(14 * DAY + 60)
    return [ct("TagRole", start, requestParameters={"roleName": "unrelated"}), *docs]


def address(doc: Any, ip: str) -> Any:
    doc["source"]["ip"] = ip
    return doc


def person(doc: Any, name: str) -> Any:
    """The document as the identity map leaves it for a person it knows."""
    doc["actor"] = name
    return doc


def role_secret(minute: float, name: str, session: str) -> Any:
    """A secret read by a session of the role ``nightly-report``."""
    doc = secret(minute, name)
    identity = {
        "type": "AssumedRole",
        "arn": f"arn:aws:sts::111111111111:assumed-role/nightly-report/{session}",
        "accountId": "111111111111",
        "sessionContext": {"sessionIssuer": {"type": "Role", "userName": "nightly-report"}},
    }
    record = {**doc["original"], "userIdentity": identity}
    return cloudtrail.normalize(record).to_document()


def run_instances(kind: str) -> Any:
    return ct(
        "RunInstances",
        source="ec2.amazonaws.com",
        requestParameters={"instanceType": kind, "minCount": 1, "maxCount": 1},
    )


CASES: dict[str, tuple[list[list[Any]], list[list[Any]]]] = {
    "cloudtrail_tampering": (
        [
            [ct("StopLogging", source="cloudtrail.amazonaws.com")],
            [ct("DeleteTrail", source="cloudtrail.amazonaws.com")],
            [
                ct(
                    "PutEventSelectors",
                    source="cloudtrail.amazonaws.com",
                    requestParameters={"eventSelectors": [{"includeManagementEvents": False}]},
                )
            ],
        ],
        [
            [ct("StartLogging", source="cloudtrail.amazonaws.com")],
            [ct("StopLogging", source="cloudtrail.amazonaws.com", errorCode="AccessDenied")],
            [
                ct(
                    "PutEventSelectors",
                    source="cloudtrail.amazonaws.com",
                    requestParameters={
                        "eventSelectors": [
                            {"includeManagementEvents": True, "readWriteType": "All"}
                        ]
                    },
                )
            ],
        ],
    ),
    "iam_privilege_escalation": (
        [
            [grant()],
            [grant("UpdateAssumeRolePolicy", roleName="r")],
            [grant("CreatePolicyVersion", policyArn="p", setAsDefault=True)],
            [grant("CreateAccessKey", userName="backup-admin")],
        ],
        [
            [grant("CreatePolicyVersion", policyArn="p", setAsDefault=False)],
            [grant("CreateAccessKey", userName="mallory")],
            [ct("AttachUserPolicy", errorCode="AccessDenied")],
            [ct("GetUser", readOnly=True)],
        ],
    ),
    "console_login_without_mfa": (
        [[login("No")], [login("No", kind="Root")]],
        [[login("Yes")], [login("No", result="Failure")], [login("No", kind="AssumedRole")]],
    ),
    "root_account_usage": (
        [[ct("DeleteBucket", source="s3.amazonaws.com", userIdentity={"type": "Root"})]],
        [
            [
                ct(
                    "Decrypt",
                    source="kms.amazonaws.com",
                    userIdentity={"type": "Root", "invokedBy": "s3.amazonaws.com"},
                )
            ],
            [ct("DeleteBucket", source="s3.amazonaws.com")],
        ],
    ),
    "security_group_open_to_world": (
        [[open_ingress("0.0.0.0/0")]],
        [[open_ingress("10.0.0.0/8")]],
    ),
    "s3_bucket_made_public": (
        [
            [bucket_policy("*")],
            [bucket_policy({"AWS": "*"})],
            [ct("DeleteBucketPublicAccessBlock", source="s3.amazonaws.com")],
            [
                ct(
                    "PutBucketAcl",
                    source="s3.amazonaws.com",
                    requestParameters={"x-amz-acl": ["public-read"]},
                )
            ],
        ],
        [
            [bucket_policy({"Service": "cloudfront.amazonaws.com"})],
            [bucket_policy({"AWS": "arn:aws:iam::222222222222:root"})],
        ],
    ),
    "kms_key_disabled_or_scheduled_for_deletion": (
        [[ct("ScheduleKeyDeletion", source="kms.amazonaws.com")]],
        [[ct("EnableKey", source="kms.amazonaws.com")]],
    ),
    "guardduty_or_config_disabled": (
        [
            [ct("DeleteDetector", source="guardduty.amazonaws.com")],
            [
                ct(
                    "UpdateDetector",
                    source="guardduty.amazonaws.com",
                    requestParameters={"enable": False},
                )
            ],
            [ct("StopConfigurationRecorder", source="config.amazonaws.com")],
        ],
        [
            [
                ct(
                    "UpdateDetector",
                    source="guardduty.amazonaws.com",
                    requestParameters={"enable": True},
                )
            ],
            [ct("StartConfigurationRecorder", source="config.amazonaws.com")],
        ],
    ),
    "access_denied_burst": (
        [[denied(m * 0.5, "DescribeInstances") for m in range(10)]],
        [[denied(m * 2, "DescribeInstances") for m in range(10)]],  # 5 per 10 minutes
    ),
    "console_login_brute_force": (
        [[login("No", result="Failure", minute=m) for m in range(5)]],
        [[login("No", result="Failure", minute=m * 3) for m in range(5)]],
    ),
    "ssh_brute_force": (
        [
            [ssh(m, "failure") for m in (1, 3, 5, 7, 9)],
            [line(m, text) for m, text in enumerate(ATTEMPTS_FROM_ONE_ADDRESS)],
        ],
        [
            [ssh(m, "failure") for m in (1, 3, 5, 7)],
            [ssh(m, "failure", ip=f"198.51.100.{m}") for m in range(6)],
            [line(m, text) for m, text in enumerate(ECHOES_FROM_ONE_ADDRESS)],
        ],
    ),
    "ssh_login_after_failures": (
        [[*(ssh(m, "failure") for m in range(5)), ssh(6, "success")]],
        [
            [ssh(0, "success"), *(ssh(m, "failure") for m in range(1, 6))],
            [*(ssh(m, "failure") for m in range(5)), ssh(6, "success", ip="198.51.100.1")],
            [ssh(0, "failure"), ssh(1, "success")],
        ],
    ),
    "account_brute_force": (
        [
            [ssh(m, "failure", ip=f"198.51.100.{m}") for m in range(5)],
            [doc for m in range(5) for doc in su_attempt(m)],
        ],
        [
            [ssh(m, "failure", user=f"user{m}") for m in range(6)],
            [ssh(m * 3, "failure", ip=f"198.51.100.{m}") for m in range(5)],
            [doc for m in range(2) for doc in su_attempt(m)],  # six lines, two attempts
        ],
    ),
    "account_login_after_failures": (
        [
            [
                *(ssh(m, "failure", ip=f"198.51.100.{m}") for m in range(5)),
                ssh(6, "success", ip="192.0.2.7"),
            ],
            [*(doc for m in range(5) for doc in su_attempt(m)), *su_attempt(6, failed=False)],
        ],
        [
            [ssh(0, "success"), *(ssh(m, "failure", ip=f"198.51.100.{m}") for m in range(1, 6))],
            [*(ssh(m, "failure") for m in range(5)), ssh(6, "success", user="alice")],
        ],
    ),
    # Coverage by change records: tests/daemon/rules/test_unapproved_change.py.
    "unapproved_change": (
        [
            [ct("StopInstances", source="ec2.amazonaws.com")],
            [sudo(0, "success")],
            [host("system.syslog", "package_installed", package__name="nginx")],
        ],
        [
            [ct("DescribeInstances", source="ec2.amazonaws.com", readOnly=True)],
            [ct("AssumeRole", source="sts.amazonaws.com")],
            [ct("CreateUser", errorCode="AccessDenied")],
            [sudo(0, "failure")],
            [ssh(0, "success")],
        ],
    ),
    "sudo_by_non_admin": (
        [[sudo(0, "failure")]],
        [[sudo(0, "success")]],
    ),
    "uid0_account_created": (
        [
            [
                host(
                    "system.auth",
                    "user_created",
                    user__target__name="toor",
                    user__target__id="0",
                    message="new user: name=toor, UID=0, GID=0, home=/root",
                )
            ],
            [host("system.auth", "user_modified", message="usermod -o -u 0 toor")],
        ],
        [
            [
                host(
                    "system.auth",
                    "user_created",
                    user__target__name="erin",
                    user__target__id="1005",
                    message="new user: name=erin, UID=1005, GID=1005, home=/home/erin",
                )
            ]
        ],
    ),
    "audit_daemon_tampering": (
        [
            [host("system.syslog", "service_stopped", service__name="auditd.service")],
            [sudo(0, "success", user="root", command="/sbin/auditctl -D")],
            [sudo(0, "success", user="root", command="/bin/rm -f /var/log/audit/audit.log")],
            [host("auditd.log", "daemon_end", auditd__log__record_type="DAEMON_END")],
            [host("auditd.log", "config_change", auditd__log__op="remove_rule")],
        ],
        [
            [host("system.syslog", "service_stopped", service__name="nginx.service")],
            [sudo(0, "success", user="root", command="/sbin/auditctl -l")],
            [host("auditd.log", "config_change", auditd__log__op="add_rule")],
        ],
    ),
    "hybrid_ip_onprem_bruteforce_then_cloud_login": (
        [[*(ssh(m, "failure") for m in range(5)), login("Yes", minute=90)]],
        [
            [login("Yes", minute=0), *(ssh(m, "failure") for m in range(1, 6))],
            [*(ssh(m, "failure", ip="198.51.100.1") for m in range(5)), login("Yes", minute=90)],
            [*(ssh(m, "failure") for m in range(5)), login("Yes", minute=60 * 7)],
        ],
    ),
    "hybrid_readonly_then_privilege_grant": (
        [
            [denied(0), grant("UpdateAssumeRolePolicy", minute=2, roleName="prod-deploy")],
            [
                sudo(0, "failure", user="dave"),
                host(
                    "system.auth",
                    "user_modified",
                    5,
                    user__target__name="dave",
                    group__name="sudo",
                ),
            ],
        ],
        [
            [grant("UpdateAssumeRolePolicy", minute=0, roleName="r"), denied(2)],
            [grant(minute=2)],
            [
                sudo(0, "failure", user="dave"),
                host(
                    "system.auth",
                    "user_modified",
                    5,
                    user__target__name="erin",
                    group__name="sudo",
                ),
            ],
        ],
    ),
    "ec2_password_data_read": (
        [[ct("GetPasswordData", source="ec2.amazonaws.com", readOnly=True)]],
        [[ct("GetPasswordData", source="ec2.amazonaws.com", errorCode="AccessDenied")]],
    ),
    "secrets_read_burst": (
        [
            learned(*[secret(m, f"db/{m}") for m in range(10)]),  # reads none usually
            learned(  # three on an ordinary day, now ten
                *[secret(-DAY + m, f"db/{m}") for m in range(3)],
                *[secret(m, f"db/{m}") for m in range(10)],
            ),
        ],
        [
            [secret(m, f"db/{m}") for m in range(10)],  # still learning
            learned(*[secret(m, "db/orders") for m in range(20)]),  # one secret, read often
            learned(*[secret(m * 2, f"db/{m}") for m in range(10)]),  # spread over 18 minutes
            learned(  # the nightly job reading its thirty, as every night
                *[secret(day * DAY + m / 4, f"db/{m}") for day in (-2, -1, 0) for m in range(30)]
            ),
            learned(  # a role's nightly job, each night under another session name
                *[
                    role_secret(day * DAY + m / 4, f"db/{m}", f"botocore-session-{day}")
                    for day in (-2, -1, 0)
                    for m in range(30)
                ]
            ),
        ],
    ),
    "logging_weakened": (
        [
            [ct("DeleteFlowLogs", source="ec2.amazonaws.com")],
            [ct("LeaveOrganization", source="organizations.amazonaws.com")],
        ],
        [[ct("CreateFlowLogs", source="ec2.amazonaws.com")]],
    ),
    "snapshot_or_ami_shared_externally": (
        [
            [
                ct(
                    "ModifySnapshotAttribute",
                    source="ec2.amazonaws.com",
                    requestParameters={
                        "snapshotId": "snap-1",
                        "createVolumePermission": {"add": {"items": [{"userId": "999"}]}},
                    },
                )
            ],
            [
                ct(
                    "ModifyImageAttribute",
                    source="ec2.amazonaws.com",
                    requestParameters={"launchPermission": {"add": {"items": [{"group": "all"}]}}},
                )
            ],
        ],
        [
            [
                ct(
                    "ModifySnapshotAttribute",
                    source="ec2.amazonaws.com",
                    requestParameters={"createVolumePermission": {"remove": {"items": []}}},
                )
            ]
        ],
    ),
    "identity_provider_backdoor": (
        [
            [ct("CreateSAMLProvider")],
            [ct("CreateTrustAnchor", source="rolesanywhere.amazonaws.com")],
        ],
        [[ct("GetSAMLProvider", readOnly=True)]],
    ),
    "lambda_permission_public": (
        [
            [
                ct(
                    "AddPermission20150331v2",
                    source="lambda.amazonaws.com",
                    requestParameters={"functionName": "f", "principal": "*"},
                )
            ]
        ],
        [
            [
                ct(
                    "AddPermission20150331v2",
                    source="lambda.amazonaws.com",
                    requestParameters={"functionName": "f", "principal": "s3.amazonaws.com"},
                )
            ]
        ],
    ),
    "serial_console_access": (
        [[ct("SendSerialConsoleSSHPublicKey", source="ec2-instance-connect.amazonaws.com")]],
        [[ct("SendSSHPublicKey", source="ec2-instance-connect.amazonaws.com")]],
    ),
    "instance_user_data_changed": (
        [
            [
                ct(
                    "ModifyInstanceAttribute",
                    source="ec2.amazonaws.com",
                    requestParameters={"instanceId": "i-1", "userData": "<sensitiveDataRemoved>"},
                )
            ]
        ],
        [
            [
                ct(
                    "ModifyInstanceAttribute",
                    source="ec2.amazonaws.com",
                    requestParameters={"instanceId": "i-1", "instanceType": {"value": "m5.large"}},
                )
            ]
        ],
    ),
    "gpu_instance_launch": (
        [[run_instances("p4d.24xlarge")], [run_instances("g5.xlarge")]],
        [[run_instances("m5.large")], [run_instances("t3.micro")]],
    ),
    "first_interactive_access": (
        [
            learned(ct("StartSession", source="ssm.amazonaws.com")),
            learned(ct("SendSSHPublicKey", source="ec2-instance-connect.amazonaws.com")),
        ],
        [
            [ct("StartSession", source="ssm.amazonaws.com")],  # still learning
            learned(
                ct("StartSession", -3 * DAY, source="ssm.amazonaws.com"),
                ct("StartSession", source="ssm.amazonaws.com"),
            ),
            learned(ct("StartSession", source="ssm.amazonaws.com", errorCode="AccessDenied")),
        ],
    ),
    "first_credentials_minted": (
        [
            learned(ct("CreateAccessKey")),
            learned(ct("GetFederationToken", source="sts.amazonaws.com")),
            learned(ct("CreateAccessKey", -15 * DAY + 1), ct("CreateAccessKey")),  # expired
        ],
        [learned(ct("CreateLoginProfile", -DAY), ct("CreateLoginProfile"))],
    ),
    "console_login_new_address": (
        [learned(login("Yes", minute=-DAY), address(login("Yes"), "198.51.100.7"))],
        [learned(login("Yes", minute=-DAY), login("Yes"))],
    ),
    "first_sudo_on_host": (
        [learned(sudo(0, "success")), learned(sudo(-DAY, "success"), sudo(0, "success", "erin"))],
        [learned(sudo(-DAY, "success"), sudo(0, "success")), learned(sudo(0, "failure"))],
    ),
    "first_login_on_host": (
        [learned(ssh(0, "success"))],
        [learned(ssh(-DAY, "success"), ssh(0, "success")), learned(ssh(0, "failure"))],
    ),
    "host_account_first_in_aws": (
        [learned(person(login("Yes"), "alice"))],
        [
            learned(person(login("Yes", minute=-DAY), "alice"), person(login("Yes"), "alice")),
            learned(login("Yes")),  # nobody the identity map knows
        ],
    ),
}


def test_every_alerting_rule_has_cases_and_documentation() -> None:
    alerting = (
        {rule.info for rule in LOADED.detections if rule.alerts}
        | {corr.info for corr in LOADED.correlations if corr.alerts}
        | {rule.info for rule in LOADED.behaviours}
    )
    assert {info.id for info in alerting} == set(CASES)
    for info in alerting:
        assert info.description, info.id
        assert info.falsepositives, info.id
        assert any(tag.startswith("attack.t") for tag in info.tags), info.id


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_rule_raises_on_positives_only(rule_id: str) -> None:
    positives, negatives = CASES[rule_id]
    for docs in positives:
        assert rule_id in rule_ids(docs), [d["event"] for d in docs]
    for docs in negatives:
        assert rule_id not in rule_ids(docs), [d["event"] for d in docs]


def test_plain_syslog_files_of_the_demo_hosts_are_read() -> None:
    """``rules test`` takes a host's syslog file as it lies on disk, no source's header."""
    run = run_files(LOADED, [REPO / "examples" / "demo" / "hosts" / "bastion01" / "syslog"])
    assert run.rejected == []
    assert run.events > 0
    (brute,) = [alert for alert in run.alerts if alert.rule_id == "ssh_brute_force"]
    assert brute.group == {"source.ip": "203.0.113.66"}


def test_demo_raises_the_story_and_no_noise() -> None:
    run = run_files(LOADED, [REPO / "examples" / "demo" / "AWSLogs"])
    found = sorted((a.rule_id, tuple(sorted(a.group.values())), a.count) for a in run.alerts)
    assert found == [
        ("cloudtrail_tampering", ("mallory",), 1),
        ("console_login_brute_force", ("203.0.113.66",), 6),
        ("console_login_without_mfa", ("mallory",), 1),
        ("hybrid_readonly_then_privilege_grant", ("bob",), 2),
        ("iam_privilege_escalation", ("bob",), 1),
        ("iam_privilege_escalation", ("mallory",), 2),
        ("root_account_usage", ("222222222222",), 2),
        # No change records offline: every change of the demo is unapproved.
        ("unapproved_change", ("", "", "111111111111", "alice@example.com"), 3),
        ("unapproved_change", ("", "", "111111111111", "bob"), 1),
        ("unapproved_change", ("", "", "111111111111", "mallory"), 4),
        ("unapproved_change", ("", "", "222222222222", "root"), 1),
    ]


STORY = ("mallory", "root", "203.0.113.66")
"""What the demo's intrusion is named by in its CloudTrail records."""


def test_after_a_fortnight_of_its_routine_the_demo_adds_only_the_story(tmp_path: Path) -> None:
    """With 15 days of the demo's routine (its CloudTrail without mallory, root and the
    attacker's address, shifted back a day at a time) as history, the rules that learn
    add three alerts to the demo, all of them the intrusion's."""
    demo = REPO / "examples" / "demo" / "AWSLogs"
    routine = [
        doc
        for record in itertools.chain.from_iterable(
            cloudtrail.decode(path.read_bytes(), Limits()) for path in sorted(demo.rglob("*.gz"))
        )
        if not any(name in orjson.dumps(record).decode() for name in STORY)
        for doc in [cloudtrail.normalize(record).to_document()]
    ]
    history = tmp_path / "history.jsonl"
    with history.open("wb") as out:
        for days in range(1, 16):
            for doc in routine:
                moment = datetime.fromisoformat(doc["@timestamp"]) - timedelta(days=days)
                event = {**doc["event"], "id": f"{doc['event']['id']}-{days}"}
                shifted = {**doc, "@timestamp": format_timestamp(moment), "event": event}
                out.write(orjson.dumps(shifted) + b"\n")
    run = run_files(LOADED, [demo], history=[history])
    learning = {rule.info.id for rule in LOADED.behaviours}
    assert {state["state"] for state in run.learning.values()} == {"learned"}
    found = sorted((a.rule_id, *a.group.values()) for a in run.alerts if a.rule_id in learning)
    assert found == [
        ("console_login_new_address", "mallory"),
        ("console_login_new_address", "root"),
        ("first_credentials_minted", "mallory"),
    ]
