"""CloudTrail decode/normalize: real-format records, the Panther rule corpus, hostile input."""

from __future__ import annotations

import contextlib
import gc
import gzip
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from testdata import corpus

from connectors.base import NormalizationError
from daemon.model import AuditEvent
from daemon.normalize import Limits, cloudtrail

LIMITS = Limits()


def record(**overrides: Any) -> dict[str, Any]:
    """A management event as CloudTrail writes it (eventVersion 1.09), with overrides."""
    base: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "IAMUser",
            "principalId": "AIDAJ45Q7YFFAREXAMPLE",
            "arn": "arn:aws:iam::111111111111:user/alice",
            "accountId": "111111111111",
            "accessKeyId": "AKIAIOSFODNN7EXAMPLE",
            "userName": "alice",
        },
        "eventTime": "2024-05-01T12:34:56Z",
        "eventSource": "ec2.amazonaws.com",
        "eventName": "StopInstances",
        "awsRegion": "ap-northeast-1",
        "sourceIPAddress": "203.0.113.5",
        "userAgent": "aws-cli/2.15.0 Python/3.11.6 Linux/6.1 exe/x86_64.ubuntu.22",
        "requestParameters": {"instancesSet": {"items": [{"instanceId": "i-0abc"}]}},
        "responseElements": {"instancesSet": {"items": [{"instanceId": "i-0abc"}]}},
        "requestID": "6f1e9a0b-2c3d-4e5f-8a9b-0c1d2e3f4a5b",
        "eventID": "0a1b2c3d-4e5f-6789-abcd-ef0123456789",
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": "111111111111",
        "eventCategory": "Management",
        "tlsDetails": {
            "tlsVersion": "TLSv1.3",
            "cipherSuite": "TLS_AES_128_GCM_SHA256",
            "clientProvidedHostHeader": "ec2.ap-northeast-1.amazonaws.com",
        },
    }
    base.update(overrides)
    return base


def normalized(rec: Any) -> AuditEvent | NormalizationError:
    """The event, or the NormalizationError; any other exception escapes and fails the test."""
    try:
        return cloudtrail.normalize(rec)
    except NormalizationError as err:
        return err


def console_login(result: str, mfa: str, identity: dict[str, Any]) -> dict[str, Any]:
    """A ConsoleLogin record; wrong passwords carry no errorCode, only the response."""
    extra: dict[str, Any] = {
        "LoginTo": "https://console.aws.amazon.com/console/home",
        "MobileVersion": "No",
        "MFAUsed": mfa,
    }
    overrides: dict[str, Any] = {
        "eventVersion": "1.08",
        "userIdentity": identity,
        "eventSource": "signin.amazonaws.com",
        "eventName": "ConsoleLogin",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "198.51.100.7",
        "userAgent": "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
        "requestParameters": None,
        "responseElements": {"ConsoleLogin": result},
        "additionalEventData": extra,
        "eventType": "AwsConsoleSignIn",
        "eventCategory": "Management",
    }
    if result == "Failure":
        overrides["errorMessage"] = "Failed authentication"
    rec = record(**overrides)
    del rec["readOnly"], rec["requestID"], rec["tlsDetails"]
    return rec


# --------------------------------------------------------------------------- identities

ROOT = {
    "type": "Root",
    "principalId": "111111111111",
    "arn": "arn:aws:iam::111111111111:root",
    "accountId": "111111111111",
    "accessKeyId": "ASIAIOSFODNN7EXAMPLE",
    "sessionContext": {
        "attributes": {"creationDate": "2024-05-01T12:00:00Z", "mfaAuthenticated": "true"}
    },
}
IAM_USER = record()["userIdentity"]
ASSUMED_ROLE = {
    "type": "AssumedRole",
    "principalId": "AROAIDPPEZS35WEXAMPLE:deploy-bot",
    "arn": "arn:aws:sts::111111111111:assumed-role/Deployer/deploy-bot",
    "accountId": "111111111111",
    "accessKeyId": "ASIAIOSFODNN7EXAMPLE",
    "sessionContext": {
        "sessionIssuer": {
            "type": "Role",
            "principalId": "AROAIDPPEZS35WEXAMPLE",
            "arn": "arn:aws:iam::111111111111:role/Deployer",
            "accountId": "111111111111",
            "userName": "Deployer",
        },
        "webIdFederationData": {},
        "attributes": {"creationDate": "2024-05-01T12:00:00Z", "mfaAuthenticated": "false"},
    },
}
SSO_ROLE = "AWSReservedSSO_AdministratorAccess_0123456789abcdef"
SSO_ASSUMED_ROLE = {
    "type": "AssumedRole",
    "principalId": "AROA3EXAMPLEROLEID:alice@example.com",
    "arn": f"arn:aws:sts::111111111111:assumed-role/{SSO_ROLE}/alice@example.com",
    "accountId": "111111111111",
    "accessKeyId": "ASIA3EXAMPLEKEYID",
    "sessionContext": {
        "sessionIssuer": {
            "type": "Role",
            "principalId": "AROA3EXAMPLEROLEID",
            "arn": (
                "arn:aws:iam::111111111111:role/aws-reserved/sso.amazonaws.com/"
                f"ap-northeast-1/{SSO_ROLE}"
            ),
            "accountId": "111111111111",
            "userName": SSO_ROLE,
        },
        "webIdFederationData": {},
        "attributes": {"creationDate": "2024-05-01T08:00:00Z", "mfaAuthenticated": "false"},
    },
}
FEDERATED_USER = {
    "type": "FederatedUser",
    "principalId": "111111111111:bob",
    "arn": "arn:aws:sts::111111111111:federated-user/bob",
    "accountId": "111111111111",
    "accessKeyId": "ASIAFEDERATEDEXAMPLE",
    "sessionContext": {
        "sessionIssuer": {
            "type": "IAMUser",
            "principalId": "AIDAFEDBROKEREXAMPLE",
            "arn": "arn:aws:iam::111111111111:user/fed-broker",
            "accountId": "111111111111",
            "userName": "fed-broker",
        },
        "webIdFederationData": {},
        "attributes": {"creationDate": "2024-05-01T12:00:00Z", "mfaAuthenticated": "false"},
    },
}
AWS_SERVICE = {"type": "AWSService", "invokedBy": "ec2.amazonaws.com"}
AWS_ACCOUNT = {
    "type": "AWSAccount",
    "principalId": "AIDAOTHERACCOUNTEXAMPLE",
    "accountId": "444455556666",
}
AWS_ACCOUNT_NO_PRINCIPAL = {"type": "AWSAccount", "accountId": "444455556666"}
IDENTITY_CENTER_USER = {
    "type": "IdentityCenterUser",
    "accountId": "111111111111",
    "onBehalfOf": {
        "userId": "544894e8-80c1-707f-60e3-3ba6510dfac1",
        "identityStoreArn": "arn:aws:identitystore::111111111111:identitystore/d-1234567890",
    },
    "credentialId": "EXAMPLEVHULjJdTUdPJfofVa1sufHDoj7aYcOYcxFVllWR_Whr1fEXAMPLE",
}
UNKNOWN = {
    "type": "Unknown",
    "principalId": "111111111111",
    "accountId": "111111111111",
    "userName": "mallory",
}
SAML_USER = {
    "type": "SAMLUser",
    "principalId": "SAMPLE_NAME_QUALIFIER:carol",
    "userName": "carol",
    "identityProvider": "SAMPLE_NAME_QUALIFIER",
}

IDENTITY_CASES = [
    # (id, userIdentity, extra record keys, user.name, user.id, related.user, fields subset)
    (
        "root",
        ROOT,
        {},
        "root",
        "111111111111",
        ["root"],
        {
            "aws.cloudtrail.user_identity.type": "Root",
            "aws.cloudtrail.user_identity.arn": "arn:aws:iam::111111111111:root",
            "aws.cloudtrail.user_identity.session_context.mfa_authenticated": "true",
        },
    ),
    (
        "iam_user",
        IAM_USER,
        {},
        "alice",
        "AIDAJ45Q7YFFAREXAMPLE",
        ["alice"],
        {
            "aws.cloudtrail.user_identity.type": "IAMUser",
            "aws.cloudtrail.user_identity.access_key_id": "AKIAIOSFODNN7EXAMPLE",
        },
    ),
    (
        "assumed_role",
        ASSUMED_ROLE,
        {},
        "deploy-bot",
        "AROAIDPPEZS35WEXAMPLE:deploy-bot",
        ["deploy-bot", "Deployer"],
        {
            "aws.cloudtrail.user_identity.session_context.session_issuer.user_name": "Deployer",
            "aws.cloudtrail.user_identity.session_context.session_issuer.arn": (
                "arn:aws:iam::111111111111:role/Deployer"
            ),
            "aws.cloudtrail.user_identity.session_context.session_issuer.type": "Role",
            "aws.cloudtrail.user_identity.session_context.mfa_authenticated": "false",
        },
    ),
    (
        "sso_assumed_role",
        SSO_ASSUMED_ROLE,
        {},
        "alice@example.com",
        "AROA3EXAMPLEROLEID:alice@example.com",
        ["alice@example.com", SSO_ROLE, "alice"],
        {
            "user.email": "alice@example.com",
            "aws.cloudtrail.user_identity.session_context.session_issuer.user_name": SSO_ROLE,
        },
    ),
    (
        "federated_user",
        FEDERATED_USER,
        {},
        "bob",
        "111111111111:bob",
        ["bob", "fed-broker"],
        {"aws.cloudtrail.user_identity.session_context.session_issuer.type": "IAMUser"},
    ),
    (
        "aws_service",
        AWS_SERVICE,
        {"sourceIPAddress": "ec2.amazonaws.com"},
        "ec2.amazonaws.com",
        None,
        ["ec2.amazonaws.com"],
        {"aws.cloudtrail.user_identity.invoked_by": "ec2.amazonaws.com"},
    ),
    ("aws_account", AWS_ACCOUNT, {}, None, "AIDAOTHERACCOUNTEXAMPLE", [], {}),
    ("aws_account_without_principal", AWS_ACCOUNT_NO_PRINCIPAL, {}, None, "444455556666", [], {}),
    (
        "identity_center_user",
        IDENTITY_CENTER_USER,
        {"additionalEventData": {"UserName": "dave"}},
        "dave",
        "544894e8-80c1-707f-60e3-3ba6510dfac1",
        ["dave"],
        {"aws.cloudtrail.user_identity.type": "IdentityCenterUser"},
    ),
    (
        "identity_center_user_without_name",
        IDENTITY_CENTER_USER,
        {},
        None,
        "544894e8-80c1-707f-60e3-3ba6510dfac1",
        [],
        {},
    ),
    ("unknown", UNKNOWN, {}, "mallory", "111111111111", ["mallory"], {}),
    ("saml_user", SAML_USER, {}, "carol", "SAMPLE_NAME_QUALIFIER:carol", ["carol"], {}),
]


@pytest.mark.parametrize(
    ("identity", "extra", "name", "user_id", "related", "subset"),
    [case[1:] for case in IDENTITY_CASES],
    ids=[case[0] for case in IDENTITY_CASES],
)
def test_user_fields_for_every_identity_type(
    identity: dict[str, Any],
    extra: dict[str, Any],
    name: str | None,
    user_id: str | None,
    related: list[str],
    subset: dict[str, Any],
) -> None:
    """Each userIdentity type yields the person or principal as user.name/user.id."""
    ev = cloudtrail.normalize(record(userIdentity=identity, **extra))
    assert ev.user_name == name
    assert ev.user_id == user_id
    assert ev.related_user == related
    assert subset.items() <= ev.fields.items()


@pytest.mark.parametrize("identity", [None, [], "IAMUser", 7, {}, {"type": 5, "arn": ["x"]}])
def test_missing_or_malformed_user_identity(identity: Any) -> None:
    """A record without a usable userIdentity still normalizes, with no user."""
    rec = record(userIdentity=identity)
    if identity is None:
        del rec["userIdentity"]
    ev = cloudtrail.normalize(rec)
    assert ev.user_name is None
    assert ev.user_id is None
    assert ev.message == (
        "unknown called ec2:StopInstances in 111111111111/ap-northeast-1 from 203.0.113.5"
    )


def test_assumed_role_without_session_falls_back_to_role() -> None:
    """An assumed-role ARN without a session part names the role rather than nobody."""
    identity = {
        "type": "AssumedRole",
        "principalId": "tester",
        "arn": "arn:aws:sts::123456789012:assumed-role/tester",
        "accountId": "123456789012",
    }
    ev = cloudtrail.normalize(record(userIdentity=identity))
    assert ev.user_name == "tester"
    issuer = "aws.cloudtrail.user_identity.session_context.session_issuer.user_name"
    assert ev.fields[issuer] == "tester"


def test_iam_user_with_path_and_no_user_name() -> None:
    """An IAMUser without userName is named from the last part of its ARN."""
    identity = {"type": "IAMUser", "arn": "arn:aws:iam::111111111111:user/ops/eu/erin"}
    assert cloudtrail.normalize(record(userIdentity=identity)).user_name == "erin"


# --------------------------------------------------------------------------- common fields


def test_common_fields_of_a_write() -> None:
    """A plain API call maps to ECS and Elastic's aws.cloudtrail.* names."""
    rec = record()
    ev = cloudtrail.normalize(rec)
    assert ev.timestamp == datetime(2024, 5, 1, 12, 34, 56, tzinfo=UTC)
    assert ev.id == "0a1b2c3d-4e5f-6789-abcd-ef0123456789"
    assert (ev.dataset, ev.kind, ev.provider, ev.action) == (
        "aws.cloudtrail",
        "event",
        "ec2.amazonaws.com",
        "StopInstances",
    )
    assert (ev.cloud_provider, ev.cloud_region, ev.cloud_service_name) == (
        "aws",
        "ap-northeast-1",
        "ec2",
    )
    assert ev.category == ["configuration"]
    assert ev.type == ["change"]
    assert ev.outcome == "success"
    assert ev.original is rec
    assert ev.fields == {
        "aws.cloudtrail.event_version": "1.09",
        "aws.cloudtrail.event_type": "AwsApiCall",
        "aws.cloudtrail.event_category": "Management",
        "aws.cloudtrail.request_id": "6f1e9a0b-2c3d-4e5f-8a9b-0c1d2e3f4a5b",
        "aws.cloudtrail.recipient_account_id": "111111111111",
        "user_agent.original": rec["userAgent"],
        "aws.cloudtrail.read_only": False,
        "aws.cloudtrail.management_event": True,
        "tls.version": "1.3",
        "tls.version_protocol": "tls",
        "tls.cipher": "TLS_AES_128_GCM_SHA256",
        "tls.client.server_name": "ec2.ap-northeast-1.amazonaws.com",
        "aws.cloudtrail.user_identity.type": "IAMUser",
        "aws.cloudtrail.user_identity.arn": "arn:aws:iam::111111111111:user/alice",
        "aws.cloudtrail.user_identity.access_key_id": "AKIAIOSFODNN7EXAMPLE",
    }
    assert ev.message == (
        "alice called ec2:StopInstances in 111111111111/ap-northeast-1 from 203.0.113.5"
    )


def test_original_record_is_not_modified() -> None:
    """normalize reads the record and never changes it (it is kept as original)."""
    rec = record(userIdentity=SSO_ASSUMED_ROLE)
    before = orjson.dumps(rec)
    cloudtrail.normalize(rec)
    assert orjson.dumps(rec) == before


def test_optional_fields_copied_when_present() -> None:
    """sharedEventID, vpcEndpointId and errors land under their Elastic names."""
    ev = cloudtrail.normalize(
        record(
            sharedEventID="a8f5c6d3-0000-4000-8000-000000000001",
            vpcEndpointId="vpce-0123456789abcdef0",
            errorCode="AccessDenied",
            errorMessage="User: alice is not authorized to perform: ec2:StopInstances",
        )
    )
    assert ev.fields["aws.cloudtrail.shared_event_id"] == "a8f5c6d3-0000-4000-8000-000000000001"
    assert ev.fields["aws.cloudtrail.vpc_endpoint_id"] == "vpce-0123456789abcdef0"
    assert ev.fields["aws.cloudtrail.error_code"] == "AccessDenied"
    assert ev.fields["aws.cloudtrail.error_message"].startswith("User: alice")


def test_absent_fields_are_left_out() -> None:
    """A minimal record produces no empty or placeholder fields."""
    ev = cloudtrail.normalize({"eventID": "x", "eventTime": "2024-05-01T00:00:00Z"})
    assert ev.fields == {}
    assert ev.related_user == []
    assert ev.related_ip == []
    assert ev.source_ip is ev.source_address is None
    assert ev.cloud_account_id is ev.cloud_region is ev.cloud_service_name is None
    assert ev.message == "unknown called unknown:unknown"
    assert ev.type == ["info"]
    assert ev.to_document()["cloud"] == {"provider": "aws"}


def test_account_id_from_recipient_then_caller() -> None:
    """cloud.account.id is the recording account; the caller's account is the fallback."""
    cross = record(userIdentity=AWS_ACCOUNT, recipientAccountId="111111111111")
    assert cloudtrail.normalize(cross).cloud_account_id == "111111111111"
    without = record()
    del without["recipientAccountId"]
    assert cloudtrail.normalize(without).cloud_account_id == "111111111111"
    caller_only = record(userIdentity=AWS_ACCOUNT, recipientAccountId=None)
    assert cloudtrail.normalize(caller_only).cloud_account_id == "444455556666"


@pytest.mark.parametrize(
    ("value", "moment"),
    [
        ("2024-05-01T12:34:56Z", datetime(2024, 5, 1, 12, 34, 56, tzinfo=UTC)),
        ("2024-05-01T12:34:56.789Z", datetime(2024, 5, 1, 12, 34, 56, 789000, tzinfo=UTC)),
        ("2024-05-01T21:34:56+09:00", datetime(2024, 5, 1, 12, 34, 56, tzinfo=UTC)),
        ("2024-05-01 12:34:56", datetime(2024, 5, 1, 12, 34, 56, tzinfo=UTC)),
        ("2025-01-21 17:49:47.000000000", datetime(2025, 1, 21, 17, 49, 47, tzinfo=UTC)),
    ],
)
def test_event_time_forms(value: str, moment: datetime) -> None:
    """CloudTrail's Z form and common export forms all become aware UTC timestamps."""
    ts = cloudtrail.normalize(record(eventTime=value)).timestamp
    assert ts == moment
    assert ts.utcoffset() is not None
    assert not ts.utcoffset()


# --------------------------------------------------------------------------- outcome and type


def test_error_code_means_failure() -> None:
    """An errorCode makes the outcome failure and is named at the end of the message."""
    ev = cloudtrail.normalize(record(errorCode="AccessDenied", errorMessage="denied"))
    assert ev.outcome == "failure"
    assert ev.message == (
        "alice called ec2:StopInstances in 111111111111/ap-northeast-1 from 203.0.113.5"
        " -> AccessDenied"
    )


def test_error_message_alone_means_failure() -> None:
    """Elastic treats errorMessage without errorCode as a failure too."""
    ev = cloudtrail.normalize(record(errorMessage="Internal error"))
    assert ev.outcome == "failure"
    assert ev.message is not None
    assert ev.message.endswith(" -> failed")


@pytest.mark.parametrize(
    ("source", "name", "read_only", "category", "types"),
    [
        ("ec2.amazonaws.com", "DescribeInstances", True, ["configuration"], ["access"]),
        ("ec2.amazonaws.com", "StopInstances", False, ["configuration"], ["change"]),
        ("ec2.amazonaws.com", "RunInstances", False, ["configuration"], ["change", "creation"]),
        (
            "ec2.amazonaws.com",
            "TerminateInstances",
            False,
            ["configuration"],
            ["change", "deletion"],
        ),
        (
            "lambda.amazonaws.com",
            "CreateFunction20150331",
            False,
            ["configuration"],
            ["change", "creation"],
        ),
        (
            "s3.amazonaws.com",
            "DeleteBucketPolicy",
            False,
            ["configuration"],
            ["change", "deletion"],
        ),
        ("ec2.amazonaws.com", "StopInstances", None, ["configuration"], ["info"]),
        ("ec2.amazonaws.com", "StopInstances", "false", ["configuration"], ["change"]),
        ("iam.amazonaws.com", "CreateUser", False, ["iam"], ["user", "change", "creation"]),
        ("iam.amazonaws.com", "DeleteGroup", False, ["iam"], ["group", "change", "deletion"]),
        ("iam.amazonaws.com", "GetUser", True, ["iam"], ["user", "access"]),
        ("iam.amazonaws.com", "UpdateAccountPasswordPolicy", False, ["iam"], ["admin", "change"]),
        ("iam.amazonaws.com", "AttachRolePolicy", False, ["iam"], ["change"]),
        ("iam.amazonaws.com", "ListRoles", True, ["iam"], ["access"]),
        ("s3.amazonaws.com", "CreateBucket", False, ["file"], ["change", "creation"]),
        ("sts.amazonaws.com", "AssumeRole", True, ["authentication"], ["start"]),
        ("sts.amazonaws.com", "AssumeRoleWithSAML", True, ["authentication"], ["start"]),
        ("sts.amazonaws.com", "GetSessionToken", True, ["authentication"], ["start"]),
        ("sts.amazonaws.com", "GetFederationToken", False, ["authentication"], ["start"]),
        ("sts.amazonaws.com", "GetCallerIdentity", True, ["configuration"], ["access"]),
        ("signin.amazonaws.com", "ConsoleLogin", False, ["authentication"], ["start"]),
        ("signin.amazonaws.com", "SwitchRole", None, ["authentication"], ["start"]),
        ("signin.amazonaws.com", "ExitRole", None, ["authentication"], ["end"]),
        ("signin.amazonaws.com", "CheckMfa", None, ["authentication"], ["info"]),
    ],
)
def test_category_and_type_table(
    source: str, name: str, read_only: Any, category: list[str], types: list[str]
) -> None:
    """event.category/type follow the table in the module docstring."""
    rec = record(eventSource=source, eventName=name, readOnly=read_only)
    if read_only is None:
        del rec["readOnly"]
    ev = cloudtrail.normalize(rec)
    assert (ev.category, ev.type) == (category, types)


def test_read_only_flag_field() -> None:
    """aws.cloudtrail.read_only is a boolean whether CloudTrail wrote a bool or a string."""
    assert cloudtrail.normalize(record(readOnly=True)).fields["aws.cloudtrail.read_only"] is True
    ev = cloudtrail.normalize(record(readOnly="TRUE", managementEvent="false"))
    assert ev.fields["aws.cloudtrail.read_only"] is True
    assert ev.fields["aws.cloudtrail.management_event"] is False
    assert "aws.cloudtrail.read_only" not in cloudtrail.normalize(record(readOnly="yes")).fields


def test_events_do_not_share_category_lists() -> None:
    """Each event gets its own lists, so changing one cannot change another."""
    first = cloudtrail.normalize(record())
    first.type.append("tampered")
    first.category.append("tampered")
    second = cloudtrail.normalize(record())
    assert second.type == ["change"]
    assert second.category == ["configuration"]


# --------------------------------------------------------------------------- sign-in


@pytest.mark.parametrize(
    ("result", "mfa", "outcome", "mfa_used", "message"),
    [
        ("Success", "Yes", "success", True, "ConsoleLogin by alice: Success (MFA: Yes)"),
        ("Success", "No", "success", False, "ConsoleLogin by alice: Success (MFA: No)"),
        ("Failure", "No", "failure", False, "ConsoleLogin by alice: Failure (MFA: No)"),
    ],
)
def test_console_login(result: str, mfa: str, outcome: str, mfa_used: bool, message: str) -> None:
    """ConsoleLogin: outcome from responseElements, MFA from additionalEventData."""
    ev = cloudtrail.normalize(console_login(result, mfa, IAM_USER))
    assert ev.outcome == outcome
    assert ev.fields["aws.cloudtrail.console_login.additional_eventdata.mfa_used"] is mfa_used
    assert ev.message == message
    assert (ev.category, ev.type) == (["authentication"], ["start"])
    assert ev.source_ip == "198.51.100.7"


def test_failed_console_login_of_unknown_user() -> None:
    """A failed login with an Unknown identity is attributed to the name tried."""
    ev = cloudtrail.normalize(console_login("Failure", "No", UNKNOWN))
    assert ev.outcome == "failure"
    assert ev.user_name == "mallory"
    assert ev.message == "ConsoleLogin by mallory: Failure (MFA: No)"


def test_root_console_login() -> None:
    """A root sign-in names the user root."""
    ev = cloudtrail.normalize(console_login("Success", "Yes", ROOT))
    assert ev.user_name == "root"
    assert ev.message == "ConsoleLogin by root: Success (MFA: Yes)"


def test_other_sign_in_event_answers_under_its_own_name() -> None:
    """SwitchRole's Failure in responseElements makes the outcome failure."""
    rec = record(
        eventSource="signin.amazonaws.com",
        eventName="SwitchRole",
        responseElements={"SwitchRole": "Failure"},
    )
    ev = cloudtrail.normalize(rec)
    assert ev.outcome == "failure"
    assert ev.message == "SwitchRole by alice: Failure"
    assert "aws.cloudtrail.console_login.additional_eventdata.mfa_used" not in ev.fields


def test_sign_in_without_result_uses_plain_message() -> None:
    """A sign-in event without a result in responseElements gets the API-call message."""
    rec = record(eventSource="signin.amazonaws.com", eventName="CheckMfa", responseElements=None)
    ev = cloudtrail.normalize(rec)
    assert ev.outcome == "success"
    assert ev.message is not None
    assert ev.message.startswith("alice called signin:CheckMfa")


# --------------------------------------------------------------------------- source and users


def test_service_principal_source() -> None:
    """A service name in sourceIPAddress is an address, not an IP."""
    ev = cloudtrail.normalize(record(sourceIPAddress="cloudformation.amazonaws.com"))
    assert ev.source_ip is None
    assert ev.source_address == "cloudformation.amazonaws.com"
    assert ev.related_ip == []
    internal = cloudtrail.normalize(record(sourceIPAddress="AWS Internal"))
    assert internal.source_ip is None
    assert internal.source_address == "AWS Internal"


def test_ipv4_source() -> None:
    """An IPv4 source is source.ip and related.ip; source.address keeps it as written."""
    ev = cloudtrail.normalize(record())
    assert ev.source_ip == ev.source_address == "203.0.113.5"
    assert ev.related_ip == ["203.0.113.5"]


def test_ipv6_source_is_canonical() -> None:
    """An IPv6 source is written in canonical form so it matches other logs."""
    ev = cloudtrail.normalize(record(sourceIPAddress="2001:DB8:0:0:0:0:0:1"))
    assert ev.source_ip == "2001:db8::1"
    assert ev.related_ip == ["2001:db8::1"]
    assert ev.source_address == "2001:DB8:0:0:0:0:0:1"


@pytest.mark.parametrize(
    ("name", "params", "target", "related"),
    [
        ("CreateUser", {"userName": "eve"}, "eve", ["alice", "eve"]),
        (
            "AttachUserPolicy",
            {"userName": "eve", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"},
            "eve",
            ["alice", "eve"],
        ),
        ("CreateAccessKey", {"userName": "eve"}, "eve", ["alice", "eve"]),
        ("CreateAccessKey", {"userName": "alice"}, None, ["alice"]),
        ("CreateAccessKey", {}, None, ["alice"]),
        (
            "UpdateLoginProfile",
            {"userName": "eve", "passwordResetRequired": False},
            "eve",
            ["alice", "eve"],
        ),
        ("AddUserToGroup", {"groupName": "Admins", "userName": "eve"}, "eve", ["alice", "eve"]),
        ("UpdateUser", {"userName": "eve", "newUserName": "eve2"}, "eve", ["alice", "eve", "eve2"]),
        ("AttachRolePolicy", {"roleName": "Deployer"}, None, ["alice"]),
    ],
)
def test_user_target_on_iam_user_operations(
    name: str, params: dict[str, Any], target: str | None, related: list[str]
) -> None:
    """The user an IAM call acts on is user.target.name, unless it is the actor."""
    rec = record(eventSource="iam.amazonaws.com", eventName=name, requestParameters=params)
    ev = cloudtrail.normalize(rec)
    assert ev.user_target_name == target
    assert ev.related_user == related


def test_user_name_outside_iam_is_not_a_target() -> None:
    """A userName parameter of a non-IAM service is not taken as the target user."""
    rec = record(
        eventSource="transfer.amazonaws.com",
        eventName="CreateUser",
        requestParameters={"userName": "sftp-user"},
    )
    assert cloudtrail.normalize(rec).user_target_name is None


def test_related_user_is_deduplicated_in_order() -> None:
    """related.user lists actor, target, role and e-mail local part once each, in that order."""
    rec = record(
        userIdentity=SSO_ASSUMED_ROLE,
        eventSource="iam.amazonaws.com",
        eventName="CreateAccessKey",
        requestParameters={"userName": "alice"},
    )
    ev = cloudtrail.normalize(rec)
    assert ev.user_target_name == "alice"
    assert ev.related_user == ["alice@example.com", "alice", SSO_ROLE]


def test_message_for_sso_user() -> None:
    """The summary names the person, the service call, where and from where."""
    rec = record(userIdentity=SSO_ASSUMED_ROLE, errorCode="AccessDenied")
    assert cloudtrail.normalize(rec).message == (
        "alice@example.com called ec2:StopInstances in 111111111111/ap-northeast-1"
        " from 203.0.113.5 -> AccessDenied"
    )


# --------------------------------------------------------------------------- rejected records


@pytest.mark.parametrize(
    ("rec", "reason"),
    [
        (["not", "a", "record"], "record is a JSON array, not an object"),
        ("eventID", "record is a JSON string, not an object"),
        (None, "record is a JSON null, not an object"),
        ({"eventTime": "2024-05-01T00:00:00Z"}, "missing 'eventID'"),
        ({"eventID": "", "eventTime": "2024-05-01T00:00:00Z"}, "missing 'eventID'"),
        ({"eventID": 17, "eventTime": "2024-05-01T00:00:00Z"}, "'eventID' is a JSON number"),
        ({"eventID": "x"}, "missing 'eventTime'"),
        ({"eventID": "x", "eventTime": 1714521600}, "'eventTime' is a JSON number"),
        ({"eventID": "x", "eventTime": "redacted"}, "unparseable 'eventTime': 'redacted'"),
        ({"eventID": "x", "eventTime": "2024-13-01T00:00:00Z"}, "unparseable 'eventTime'"),
        ({"eventID": "x", "eventTime": "0001-01-01T00:00:00Z"}, "'eventTime' out of range"),
        ({"eventID": "x", "eventTime": "0001-01-01T00:00:00+05:00"}, "unparseable 'eventTime'"),
        (
            {"eventid": "x", "eventtime": "2024-05-01T00:00:00Z"},
            "missing 'eventID' (found 'eventid'",
        ),
    ],
)
def test_unusable_records_are_rejected(rec: Any, reason: str) -> None:
    """Records without a usable eventID or eventTime raise NormalizationError naming the field."""
    with pytest.raises(NormalizationError) as info:
        cloudtrail.normalize(rec)
    assert info.value.reason.startswith(reason)


# --------------------------------------------------------------------------- Panther corpus


def panther_events() -> list[dict[str, Any]]:
    """The ``event`` of every Panther rule test case (real and redacted CloudTrail)."""
    with corpus("cloudtrail/panther-rule-tests.jsonl").open("rb") as lines:
        return [orjson.loads(line)["event"] for line in lines]


def test_panther_corpus_normalizes_or_names_the_missing_field() -> None:
    """All 455 Panther cases normalize, or fail only on a missing/unusable eventID/eventTime."""
    events = panther_events()
    assert len(events) == 455
    reasons: Counter[str] = Counter()
    normalized = 0
    for rec in events:
        try:
            ev = cloudtrail.normalize(rec)
        except NormalizationError as err:
            reasons[err.reason] += 1
            if err.reason.startswith("missing 'eventID'"):
                assert not rec.get("eventID")
            continue
        normalized += 1
        document = ev.to_document()
        assert AuditEvent.from_document(document).to_document() == document
        assert ev.id == rec["eventID"]
        assert ev.outcome in {"success", "failure"}
        orjson.dumps(document)
    assert normalized == 395
    assert reasons == {
        # Panther test cases trimmed to the keys a rule reads.
        "missing 'eventID'": 51,
        # Lower-cased keys, as some data lakes store them.
        "missing 'eventID' (found 'eventid': keys must keep CloudTrail's camelCase)": 8,
        # A redacted sample: the id survived, the time did not.
        "unparseable 'eventTime': 'redacted'": 1,
    }


# --------------------------------------------------------------------------- decode


def records_file(*records: dict[str, Any]) -> bytes:
    """A CloudTrail log file body (before compression)."""
    return orjson.dumps({"Records": list(records)})


def test_decode_gzip_log_file() -> None:
    """A gzip CloudTrail log file yields its records in order."""
    records = [record(eventID=f"id-{n}") for n in range(3)]
    assert cloudtrail.decode(gzip.compress(records_file(*records)), LIMITS) == records


def test_decode_plain_json() -> None:
    """An uncompressed log file is accepted as it is."""
    rec = record()
    assert cloudtrail.decode(b"\n  " + records_file(rec) + b"\n", LIMITS) == [rec]


def test_decode_multi_member_gzip() -> None:
    """Concatenated gzip members are one stream, as gzip(1) reads them."""
    body = records_file(*(record(eventID=f"id-{n}") for n in range(5)))
    half = len(body) // 2
    payload = gzip.compress(body[:half]) + gzip.compress(body[half:]) + gzip.compress(b"")
    assert [r["eventID"] for r in cloudtrail.decode(payload, LIMITS)] == [
        f"id-{n}" for n in range(5)
    ]


def test_decode_zero_padding_after_gzip() -> None:
    """NUL padding after the last member is ignored, as gzip(1) does."""
    payload = gzip.compress(records_file(record())) + b"\0" * 512
    assert len(cloudtrail.decode(payload, LIMITS)) == 1


def test_decode_trailing_garbage_after_gzip() -> None:
    """Bytes after the last member that are not gzip are reported, not dropped."""
    member = gzip.compress(records_file(record()))
    with pytest.raises(NormalizationError) as info:
        cloudtrail.decode(member + b"garbage", LIMITS)
    assert info.value.reason == "trailing data after gzip stream"
    assert info.value.position == len(member)


@pytest.mark.parametrize("cut", [1, 8, 40])
def test_decode_truncated_gzip(cut: int) -> None:
    """A gzip file cut short (a partial S3 download) is a truncated stream."""
    payload = gzip.compress(records_file(*(record(eventID=str(n)) for n in range(50))))
    with pytest.raises(NormalizationError) as info:
        cloudtrail.decode(payload[:-cut], LIMITS)
    assert info.value.reason == "truncated gzip stream"


def test_decode_corrupt_gzip() -> None:
    """A checksum mismatch is reported as a corrupt stream."""
    payload = bytearray(gzip.compress(records_file(record())))
    payload[-6] ^= 0xFF  # inside the CRC32 trailer
    with pytest.raises(NormalizationError) as info:
        cloudtrail.decode(bytes(payload), LIMITS)
    assert info.value.reason.startswith("corrupt gzip stream")


def test_decode_gzip_bomb() -> None:
    """Decompression stops one byte past the limit instead of filling memory."""
    payload = gzip.compress(b" " * (8 * 1024 * 1024))
    with pytest.raises(NormalizationError) as info:
        cloudtrail.decode(payload, Limits(max_payload_bytes=1024 * 1024))
    assert info.value.reason == "decompressed size exceeds 1048576 bytes"


def test_decode_gzip_bomb_across_members() -> None:
    """The limit counts the output of all members together."""
    member = gzip.compress(b" " * (600 * 1024))
    with pytest.raises(NormalizationError) as info:
        cloudtrail.decode(member * 2, Limits(max_payload_bytes=1024 * 1024))
    assert info.value.reason == "decompressed size exceeds 1048576 bytes"


def test_decode_plain_json_over_limit() -> None:
    """The size limit applies to uncompressed files too."""
    with pytest.raises(NormalizationError) as info:
        cloudtrail.decode(b" " * 101, Limits(max_payload_bytes=100))
    assert info.value.reason == "payload size exceeds 100 bytes"


def test_decode_exactly_at_limit() -> None:
    """A file exactly at the limit is accepted."""
    body = records_file(record())
    limits = Limits(max_payload_bytes=len(body))
    assert len(cloudtrail.decode(gzip.compress(body), limits)) == 1
    assert len(cloudtrail.decode(body, limits)) == 1


def test_decode_many_tiny_members_is_linear() -> None:
    """Thousands of empty members decode quickly (no quadratic re-copying)."""
    payload = gzip.compress(b"", mtime=0) * 20_000 + gzip.compress(records_file(record()))
    started = time.perf_counter()
    assert len(cloudtrail.decode(payload, LIMITS)) == 1
    assert time.perf_counter() - started < 5


@pytest.mark.parametrize(
    "payload", [b"hello world", b"PK\x03\x04zipfile", b"\x00\x01\x02", b"<xml/>"]
)
def test_decode_not_gzip_or_json(payload: bytes) -> None:
    """Bytes that are neither gzip nor JSON say so."""
    with pytest.raises(NormalizationError) as info:
        cloudtrail.decode(payload, LIMITS)
    assert info.value.reason.startswith("not gzip or JSON")


def test_decode_empty() -> None:
    """An empty object (or an empty gzip) is an error, not an empty file."""
    for payload in (b"", gzip.compress(b"")):
        with pytest.raises(NormalizationError) as info:
            cloudtrail.decode(payload, LIMITS)
        assert info.value.reason == "empty payload"


def test_decode_invalid_json_reports_position() -> None:
    """orjson's message and position are kept for the quarantine log."""
    payload = b'{"Records": [{"eventID": tru}]}'
    with pytest.raises(NormalizationError) as info:
        cloudtrail.decode(payload, LIMITS)
    assert info.value.reason.startswith("invalid JSON: ")
    assert "char 25" in info.value.reason
    assert info.value.position == 25
    assert info.value.raw is not None
    assert b"tru" in info.value.raw


def test_decode_deeply_nested_json() -> None:
    """JSON nested beyond orjson's depth limit is rejected with a reason saying so."""
    payload = b'{"Records": [' + b"[" * 5000 + b"]" * 5000 + b"]}"
    with pytest.raises(NormalizationError) as info:
        cloudtrail.decode(gzip.compress(payload), LIMITS)
    assert "nested" in info.value.reason


def test_decode_nesting_within_limit() -> None:
    """Deep but legal request parameters (200 levels) are kept."""
    params: Any = "leaf"
    for _ in range(200):
        params = {"a": params}
    rec = record(requestParameters=params)
    assert cloudtrail.decode(records_file(rec), LIMITS) == [rec]


DEEP = "@deep@"


def deep_file(records: list[dict[str, Any]], depth: int) -> bytes:
    """A log file with each ``DEEP`` placeholder replaced by ``depth`` nested arrays.

    Written by hand because orjson.dumps refuses what orjson.loads accepts.
    """
    deep = b"[" * depth + b"1" + b"]" * depth
    body = b",".join(orjson.dumps(rec).replace(f'"{DEEP}"'.encode(), deep) for rec in records)
    return b'{"Records":[' + body + b"]}"


def test_decode_record_too_deep_to_store_is_rejected_alone() -> None:
    """A record orjson can read but not write is quarantined alone; its neighbours are kept."""
    records = [record(eventID=f"id-{n}") for n in range(10)]
    records[7]["requestParameters"] = {"filter": DEEP}
    decoded = cloudtrail.decode(gzip.compress(deep_file(records, 300)), LIMITS)
    assert len(decoded) == 10
    results = [normalized(rec) for rec in decoded]
    rejected = results.pop(7)
    assert isinstance(rejected, NormalizationError)
    assert rejected.reason.startswith("record nested too deeply to store")
    assert rejected.raw is not None
    assert orjson.loads(rejected.raw)["eventID"] == "id-7"
    for event in results:
        assert isinstance(event, AuditEvent)
        assert event.to_json()


@pytest.mark.parametrize("depth", range(245, 260))
def test_decode_depth_check_matches_what_can_be_stored(depth: int) -> None:
    """Around orjson's write limit, a record is either storable or rejected as too deep."""
    rec = record(requestParameters={"filter": DEEP})
    (decoded,) = cloudtrail.decode(deep_file([rec], depth), LIMITS)
    result = normalized(decoded)
    if isinstance(result, AuditEvent):
        assert orjson.loads(result.to_json())["event"]["id"] == rec["eventID"]
    else:
        assert "nested too deeply" in result.reason


def test_decode_json_without_records() -> None:
    """A JSON object that is not a log file, record or envelope is an error."""
    with pytest.raises(NormalizationError) as info:
        cloudtrail.decode(b'{"hello": "world"}', LIMITS)
    assert info.value.reason == "JSON object without 'Records'"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"[1, 2]", "JSON array at top level"),
        (b'"Records"', "JSON string at top level"),
        (b'{"Records": {"eventID": "x"}}', "'Records' is a JSON object, not an array"),
        (b'{"Records": null}', "JSON object without 'Records'"),
    ],
)
def test_decode_wrong_shapes(payload: bytes, reason: str) -> None:
    """Valid JSON of the wrong shape is rejected with what was found."""
    with pytest.raises(NormalizationError) as info:
        cloudtrail.decode(payload, LIMITS)
    assert info.value.reason.startswith(reason)


def test_decode_digest_file_has_no_records() -> None:
    """A CloudTrail digest file yields no records (it is not an error)."""
    digest: dict[str, Any] = {
        "awsAccountId": "111111111111",
        "digestStartTime": "2024-05-01T11:00:00Z",
        "digestEndTime": "2024-05-01T12:00:00Z",
        "digestS3Bucket": "org-trail-logs",
        "digestS3Object": (
            "AWSLogs/111111111111/CloudTrail-Digest/ap-northeast-1/2024/05/01/"
            "111111111111_CloudTrail-Digest_ap-northeast-1_org_20240501T120000Z.json.gz"
        ),
        "digestPublicKeyFingerprint": "0123456789abcdef0123456789abcdef",
        "digestSignatureAlgorithm": "SHA256withRSA",
        "newestEventTime": "2024-05-01T11:59:59Z",
        "oldestEventTime": "2024-05-01T11:00:01Z",
        "previousDigestS3Bucket": "org-trail-logs",
        "previousDigestS3Object": None,
        "previousDigestHashValue": None,
        "previousDigestHashAlgorithm": None,
        "previousDigestSignature": None,
        "logFiles": [],
    }
    assert cloudtrail.decode(gzip.compress(orjson.dumps(digest)), LIMITS) == []


def test_decode_test_files_have_no_records() -> None:
    """CloudTrail's empty test file and S3's notification test event yield no records."""
    assert cloudtrail.decode(b'{"Records":[]}', LIMITS) == []
    s3_test = {
        "Service": "Amazon S3",
        "Event": "s3:TestEvent",
        "Time": "2024-05-01T12:00:00.000Z",
        "Bucket": "org-trail-logs",
        "RequestId": "5582815E1AEA5ADF",
        "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE",
    }
    assert cloudtrail.decode(orjson.dumps(s3_test), LIMITS) == []


def test_decode_single_record() -> None:
    """A bare record (EventBridge input transformer, LookupEvents) is one record."""
    rec = record()
    assert cloudtrail.decode(orjson.dumps(rec), LIMITS) == [rec]


@pytest.mark.parametrize(
    "detail_type",
    ["AWS API Call via CloudTrail", "AWS Console Sign In via CloudTrail"],
)
def test_decode_eventbridge_envelope(detail_type: str) -> None:
    """An EventBridge envelope yields the CloudTrail record in its detail."""
    detail = record()
    envelope = {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": detail_type,
        "source": "aws.ec2",
        "account": "111111111111",
        "time": "2024-05-01T12:34:56Z",
        "region": "ap-northeast-1",
        "resources": [],
        "detail": detail,
    }
    records = cloudtrail.decode(orjson.dumps(envelope), LIMITS)
    assert records == [detail]
    assert cloudtrail.normalize(records[0]).id == detail["eventID"]


def test_decode_eventbridge_event_not_from_cloudtrail() -> None:
    """An EventBridge event of another kind is rejected, naming its detail-type."""
    envelope = {"detail-type": "Object Created", "source": "aws.s3", "detail": {"bucket": {}}}
    with pytest.raises(NormalizationError) as info:
        cloudtrail.decode(orjson.dumps(envelope), LIMITS)
    assert "'Object Created'" in info.value.reason


def test_decode_restores_gc_state() -> None:
    """decode pauses the cyclic GC only for the parse and leaves its state as it found it."""
    body = records_file(record())
    assert gc.isenabled()
    cloudtrail.decode(body, LIMITS)
    assert gc.isenabled()
    with pytest.raises(NormalizationError):
        cloudtrail.decode(b"{bad", LIMITS)
    assert gc.isenabled()
    gc.disable()
    try:
        cloudtrail.decode(body, LIMITS)
        assert not gc.isenabled()
    finally:
        gc.enable()


# --------------------------------------------------------------------------- properties

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
VALID_TIMES = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
).map(lambda moment: moment.isoformat().replace("+00:00", "Z")) | st.datetimes(
    min_value=datetime(1970, 1, 1)
).map(datetime.isoformat)
TIMES = VALID_TIMES | st.datetimes().map(datetime.isoformat) | JSON_VALUES
IDENTITY_TYPES = st.sampled_from(
    [
        "Root",
        "IAMUser",
        "AssumedRole",
        "FederatedUser",
        "AWSService",
        "AWSAccount",
        "IdentityCenterUser",
        "Unknown",
        "SAMLUser",
    ]
)
ARNS = st.sampled_from(
    [
        "arn:aws:sts::1:assumed-role/R/s",
        "arn:aws:sts::1:assumed-role/",
        "arn:aws:sts::1:assumed-role//",
        "arn:aws:sts::1:federated-user/",
        "arn:aws:iam::1:user/",
        "arn:aws:iam::1:root",
    ]
)
SOMETHING = JSON_VALUES | st.text(max_size=30) | ARNS
IDENTITIES = st.fixed_dictionaries(
    {},
    optional={
        "type": IDENTITY_TYPES | JSON_VALUES,
        "principalId": st.sampled_from(["AROA:s", ":", "x:"]) | SOMETHING,
        "arn": SOMETHING,
        "accountId": SOMETHING,
        "accessKeyId": SOMETHING,
        "userName": st.sampled_from(["a@b.c", "@", "a@", "@b.c", "a@b@c.d"]) | SOMETHING,
        "invokedBy": SOMETHING,
        "onBehalfOf": st.fixed_dictionaries({}, optional={"userId": SOMETHING}) | SOMETHING,
        "sessionContext": st.fixed_dictionaries(
            {},
            optional={
                "attributes": st.fixed_dictionaries({}, optional={"mfaAuthenticated": SOMETHING})
                | SOMETHING,
                "sessionIssuer": st.fixed_dictionaries(
                    {}, optional={"userName": SOMETHING, "arn": SOMETHING, "type": SOMETHING}
                )
                | SOMETHING,
            },
        )
        | SOMETHING,
    },
)
OTHER_KEYS = {
    "eventName": st.sampled_from(
        ["ConsoleLogin", "CreateUser", "AssumeRole", "SwitchRole", "RunInstances"]
    )
    | SOMETHING,
    "eventSource": st.sampled_from(
        ["signin.amazonaws.com", "iam.amazonaws.com", "sts.amazonaws.com", "x"]
    )
    | SOMETHING,
    "userIdentity": IDENTITIES | SOMETHING,
    "sourceIPAddress": st.ip_addresses().map(str) | SOMETHING,
    "readOnly": SOMETHING,
    "managementEvent": SOMETHING,
    "requestParameters": st.fixed_dictionaries(
        {}, optional={"userName": SOMETHING, "newUserName": SOMETHING}
    )
    | SOMETHING,
    "responseElements": st.fixed_dictionaries(
        {}, optional={"ConsoleLogin": SOMETHING, "SwitchRole": SOMETHING}
    )
    | SOMETHING,
    "additionalEventData": st.fixed_dictionaries(
        {}, optional={"MFAUsed": SOMETHING, "UserName": SOMETHING}
    )
    | SOMETHING,
    "tlsDetails": st.fixed_dictionaries(
        {},
        optional={
            "tlsVersion": st.sampled_from(["TLSv1.2", "v", "TLS"]) | SOMETHING,
            "cipherSuite": SOMETHING,
            "clientProvidedHostHeader": SOMETHING,
        },
    )
    | SOMETHING,
    "errorCode": SOMETHING,
    "errorMessage": SOMETHING,
    "awsRegion": SOMETHING,
    "recipientAccountId": SOMETHING,
    "userAgent": SOMETHING,
    "eventVersion": SOMETHING,
    "sharedEventID": SOMETHING,
}
# Half the records carry a usable id and time so the mapping itself is exercised.
CLOUDTRAIL_RECORDS = st.fixed_dictionaries(
    {"eventID": st.text(min_size=1, max_size=20), "eventTime": VALID_TIMES}, optional=OTHER_KEYS
) | st.fixed_dictionaries(
    {}, optional={"eventID": st.text(max_size=20) | JSON_VALUES, "eventTime": TIMES, **OTHER_KEYS}
)


def check_event(ev: AuditEvent, rec: Any) -> None:
    """Invariants of every event normalize returns, whatever the input."""
    assert ev.id == rec["eventID"]
    assert ev.timestamp.utcoffset() is not None
    assert not ev.timestamp.utcoffset()
    assert ev.outcome in {"success", "failure"}
    assert ev.category
    assert ev.type
    assert all(isinstance(value, str | bool) for value in ev.fields.values())
    assert all(isinstance(name, str) and name for name in ev.related_user)
    assert len(set(ev.related_user)) == len(ev.related_user)
    assert isinstance(ev.message, str)
    document = ev.to_document()
    assert AuditEvent.from_document(document).to_document() == document


@given(JSON_VALUES)
def test_normalize_arbitrary_json_raises_only_normalization_error(value: Any) -> None:
    """Any JSON value either normalizes or raises NormalizationError."""
    result = normalized(value)
    if isinstance(result, AuditEvent):
        check_event(result, value)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(CLOUDTRAIL_RECORDS)
def test_normalize_cloudtrail_shaped_records_with_wrong_types(rec: dict[str, Any]) -> None:
    """CloudTrail keys with random or wrong-typed values never raise anything else."""
    result = normalized(rec)
    if isinstance(result, AuditEvent):
        check_event(result, rec)
    else:
        assert "eventID" in result.reason or "eventTime" in result.reason


@given(st.binary(max_size=256))
def test_decode_arbitrary_bytes_raises_only_normalization_error(payload: bytes) -> None:
    """Any bytes either decode to a list or raise NormalizationError."""
    with contextlib.suppress(NormalizationError):
        assert isinstance(cloudtrail.decode(payload, Limits(max_payload_bytes=4096)), list)


@given(st.binary(max_size=256), st.data())
def test_decode_damaged_gzip_raises_only_normalization_error(body: bytes, data: Any) -> None:
    """Gzip of any bytes, cut or bit-flipped anywhere, never raises anything else."""
    payload = bytearray(gzip.compress(body))
    cut = data.draw(st.integers(min_value=2, max_value=len(payload)))
    flip = data.draw(st.integers(min_value=0, max_value=len(payload) - 1))
    payload[flip] ^= data.draw(st.integers(min_value=0, max_value=255))
    with contextlib.suppress(NormalizationError):
        cloudtrail.decode(bytes(payload[:cut]), Limits(max_payload_bytes=128))
