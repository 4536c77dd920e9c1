"""AWS CloudTrail: management and data events, from files, S3, SQS, CloudWatch or EventBridge.

The normalizer (``daemon/normalize/cloudtrail.py``) follows Elastic's
``aws.cloudtrail`` mapping.  A change is a successful write that is not in
``BENIGN_WRITES``; its scope action is ``<service>:<eventName>`` and its
resources come from the record's ``resources`` list or, when it has none,
from the request parameters that name what EC2, S3 and IAM calls act on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from daemon.logtypes import Logsource, LogType, Resource, child
from daemon.model import AuditEvent
from daemon.normalize import cloudtrail

if TYPE_CHECKING:
    from daemon.identity import IdentityMap, Person

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

_ARN: Final = "aws.cloudtrail.user_identity.arn"
_MAX_PARAM_VALUES: Final = 12


def is_change(doc: Mapping[str, Any]) -> bool:
    """A successful write (``readOnly`` false, no ``errorCode``) that is not benign:
    a failed write changed nothing."""
    original = child(doc, "original")
    read_only = original.get("readOnly")
    if read_only is True or str(read_only).lower() == "true":
        return False
    if original.get("errorCode") or child(doc, "event").get("outcome") == "failure":
        return False
    return original.get("eventName") not in BENIGN_WRITES


def change_action(doc: Mapping[str, Any]) -> str | None:
    """``ec2:StopInstances``: the service's short name and the call."""
    action = child(doc, "event").get("action")
    service = child(child(doc, "cloud"), "service").get("name")
    return f"{service}:{action}" if isinstance(action, str) and service else None


# requestParameters that name what an EC2 / S3 / IAM call acts on, when the
# record has no ``resources`` list: (key, ARN template).
_PARAMETERS: Final = (
    ("instanceId", "arn:aws:ec2:{region}:{account}:instance/{id}"),
    ("bucketName", "arn:aws:s3:::{id}"),
    ("userName", "arn:aws:iam::{account}:user/{id}"),
    ("roleName", "arn:aws:iam::{account}:role/{id}"),
    ("groupName", "arn:aws:iam::{account}:group/{id}"),
    ("groupId", "arn:aws:ec2:{region}:{account}:security-group/{id}"),
)


def resources(doc: Mapping[str, Any]) -> list[Resource]:
    original = child(doc, "original")
    listed = original.get("resources")
    if isinstance(listed, list) and listed:
        found = []
        for item in listed:
            if isinstance(item, Mapping) and isinstance(item.get("ARN"), str):
                arn = item["ARN"]
                found.append(Resource(arn.rsplit("/", 1)[-1].rsplit(":", 1)[-1], arn))
        return found
    params = original.get("requestParameters")
    if not isinstance(params, Mapping):
        return []
    ids: list[tuple[str, str]] = []
    for key, template in _PARAMETERS:
        value = params.get(key)
        if isinstance(value, str) and value:
            ids.append((value, template))
    instances = child(params, "instancesSet").get("items")
    if isinstance(instances, list):
        ids.extend(
            (item["instanceId"], _PARAMETERS[0][1])
            for item in instances
            if isinstance(item, Mapping) and isinstance(item.get("instanceId"), str)
        )
    for key in ("groupIds", "securityGroupIds"):
        values = params.get(key)
        if isinstance(values, list):
            ids.extend((v, _PARAMETERS[-1][1]) for v in values if isinstance(v, str))
    cloud = child(doc, "cloud")
    account = child(cloud, "account").get("id") or "*"
    region = cloud.get("region") or "*"
    return [
        Resource(value, template.format(region=region, account=account, id=value))
        for value, template in ids
    ]


def actor(identities: IdentityMap, event: AuditEvent) -> Person | None:
    """The person of the caller's ARN or user name (IAM user, role session,
    Identity Center e-mail)."""
    arn = event.fields.get(_ARN)
    return identities.cloud(arn if isinstance(arn, str) else None, event.user_name)


def index_words(event: AuditEvent) -> list[Any]:
    """The error code, and the resource names people search for (instance ids,
    buckets, role names): in the request, often nested (instancesSet.items[].instanceId)."""
    words: list[Any] = [event.fields.get("aws.cloudtrail.error_code")]
    original = event.original
    if isinstance(original, dict):
        params = original.get("requestParameters")
        if params:
            _strings(params, words, len(words) + _MAX_PARAM_VALUES)
        listed = original.get("resources")
        if isinstance(listed, list):
            words.extend(r.get("ARN") for r in listed[:4] if isinstance(r, dict))
    return words


def claims_file(name: str, head: bytes) -> bool:
    """CloudTrail log files (``{"Records": [...]}``) and saved records or EventBridge events."""
    return name.endswith((".json", ".json.gz")) and (
        b'"Records"' in head or b'"eventVersion"' in head
    )


def _strings(node: Any, out: list[Any], limit: int) -> None:
    """Append string leaves of ``node`` to ``out``, breadth first, until it holds ``limit``."""
    queue = [node]
    depth = 0
    while queue and depth < 5:
        nested = []
        for item in queue:
            values = item.values() if isinstance(item, dict) else item
            for value in values:
                if isinstance(value, str):
                    out.append(value)
                    if len(out) >= limit:
                        return
                elif isinstance(value, dict | list):
                    nested.append(value)
        queue = nested
        depth += 1


LOG_TYPE = LogType(
    name="cloudtrail",
    decode=cloudtrail.decode,
    normalize=cloudtrail.normalize,
    actor=actor,
    datasets=(cloudtrail.DATASET,),
    lane="cloud",
    label="AWS",
    logsources={
        ("aws", "cloudtrail", None): Logsource(
            (cloudtrail.DATASET,), original_first=True, index_field="eventName"
        )
    },
    is_change=is_change,
    change_action=change_action,
    resources=resources,
    account="cloud.account.id",
    scope={"aws_accounts": "cloud.account.id", "aws_regions": "cloud.region"},
    index_words=index_words,
    claims_file=claims_file,
    selector=cloudtrail.selector,
    raw_fields=cloudtrail.RAW_FIELDS,
)
