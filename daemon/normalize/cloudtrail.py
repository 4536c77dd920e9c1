"""AWS CloudTrail: log files in, ECS ``AuditEvent`` out.

The mapping follows Elastic's ``aws.cloudtrail`` data stream (the ingest
pipeline ``packages/aws/data_stream/cloudtrail/elasticsearch/ingest_pipeline/
default.yml`` in elastic/integrations), so exports line up with Kibana's
CloudTrail dashboards and rules.  Where this module departs from it, it is on
purpose:

* ``user.name`` of an ``AssumedRole`` is the *session* name (the person or
  instance behind the role: ``alice@example.com``, ``i-0abc...``), not the
  role name that Elastic keeps there.  The identity map ties people to session
  names and Identity Center e-mails, so that is the value correlation needs;
  the role name stays in ``aws.cloudtrail.user_identity.session_context.
  session_issuer.user_name`` and in ``related.user``.  As in Elastic (PR
  elastic/integrations#20318) an e-mail session name also yields
  ``user.email`` and its local part is added to ``related.user``, so
  ``alice@example.com`` in AWS meets ``alice`` in an on-prem auth log.
* ``cloud.account.id`` is the account that recorded the event
  (``recipientAccountId``), the one a trail belongs to; the caller's own
  account is only a fallback.
* ``source.ip`` holds the address in canonical form (lower-case, compressed
  IPv6) so it matches syslog's; ``source.address`` keeps what CloudTrail wrote,
  which is all there is for service principals (``ec2.amazonaws.com``,
  ``AWS Internal``).

Categorization (first matching row wins):

=================  ==============  =============================================
record             event.category  event.type
=================  ==============  =============================================
sign-in            authentication  ``start`` for ConsoleLogin, SwitchRole and
                                   RenewRole; ``end`` for ExitRole; else ``info``
STS session        authentication  ``start``
named by Elastic   Elastic's       Elastic's entity (``user``, ``group``,
                   (iam, file)     ``admin``) + *action*
IAM                iam             *action*
anything else      configuration   *action*
=================  ==============  =============================================

* sign-in: ``eventSource`` is ``signin.amazonaws.com`` or ``eventName`` is
  ``ConsoleLogin``.
* STS session: AssumeRole, AssumeRoleWithSAML, AssumeRoleWithWebIdentity,
  AssumeRoot, GetSessionToken, GetFederationToken.
* named by Elastic: the events of Elastic's categorization table
  (``CreateUser``, ``AddUserToGroup``, ``CreateBucket``, ...; see
  ``_ELASTIC_CATEGORIES``).
* IAM: ``eventSource`` is ``iam.amazonaws.com``.

*action* comes from ``readOnly``: ``true`` -> ``access``; ``false`` ->
``change``, plus ``creation`` for ``Create*``/``Run*`` and ``deletion`` for
``Delete*``/``Terminate*``; absent -> ``info`` (Elastic's default).  Unlike
Elastic's table (``CreateUser`` is only ``creation``, ``GetUser`` is
``info``), every write carries ``change`` and every read ``access``, so the
change-window check asks one question of every event; sign-ins and STS
sessions are ``start`` because both open a session, like an SSH login on-prem.

``event.outcome`` is ``failure`` when the record has ``errorCode`` or
``errorMessage`` (Elastic), or when a sign-in event answers ``Failure`` in
``responseElements`` (``{"ConsoleLogin": "Failure"}``); otherwise ``success``.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from connectors.base import NormalizationError
from daemon.model import AuditEvent
from daemon.normalize import Limits, jsonfile

__all__ = ["RAW_FIELDS", "decode", "normalize", "selector"]

DATASET: Final = "aws.cloudtrail"

_EVENTBRIDGE_SUFFIX: Final = "via CloudTrail"
"""``detail-type`` of every EventBridge event that carries a CloudTrail record."""

# ---------------------------------------------------------------------------
# selection


def selector(settings: Mapping[str, Any]) -> Callable[[Any], str | None] | None:
    """The check a CloudTrail source's ``event_categories`` and ``read_only`` make on
    each raw record, before it is normalized: a dropped data event then costs little
    more than parsing it.  The check answers the setting that drops the record, or None
    to keep it.  A record without ``eventCategory`` is a management event (CloudTrail
    wrote none before 2021); one without ``readOnly`` (Insight events) is kept."""
    categories = settings.get("event_categories")
    read_only = settings.get("read_only")
    if categories is None and read_only is None:
        return None
    wanted = frozenset(categories) if categories is not None else None

    def check(record: Any) -> str | None:
        if not isinstance(record, dict):
            return None  # normalize quarantines it
        if wanted is not None and record.get("eventCategory", "Management") not in wanted:
            return "event_categories"
        if read_only is not None:
            flag = _flag(record.get("readOnly"))
            if flag is not None and flag != read_only:
                return "read_only"
        return None

    return check


def _raw_text(key: str) -> Callable[[Any], str | None]:
    def read(record: Any) -> str | None:
        return _text(record.get(key)) if isinstance(record, dict) else None

    return read


RAW_FIELDS: Final[dict[str, Callable[[Any], str | None]]] = {
    "dataset": lambda record: DATASET,
    "action": _raw_text("eventName"),
    "region": _raw_text("awsRegion"),
}
"""Filter fields read from the raw record exactly as ``normalize`` sets them
(``event.action``, ``cloud.region``): a ``drop = ["action:GetObject"]`` is then
decided before normalizing (daemon/filters.py)."""


# ---------------------------------------------------------------------------
# decode


def decode(payload: bytes, limits: Limits) -> list[Any]:
    """Split one CloudTrail file (gzip or plain JSON) into its records.

    A file is a whole S3 object as CloudTrail wrote it, or one message body
    from SQS/EventBridge; every shape that is not an error but holds no
    events (digest files, the ``Records: []`` test file, S3's test event)
    yields ``[]`` so the source can commit its checkpoint past it.  A record
    too deeply nested to be stored comes back as a stand-in that ``normalize``
    rejects, so only that record is quarantined.
    """
    return jsonfile.storable(_records(jsonfile.loads(jsonfile.unpack(payload, limits))))


def _records(document: Any) -> list[Any]:
    if not isinstance(document, dict):
        raise NormalizationError(
            f"JSON {jsonfile.kind(document)} at top level, expected an object with 'Records'"
        )
    records = document.get("Records")
    if records is not None:
        if isinstance(records, list):
            return records
        raise NormalizationError(f"'Records' is a JSON {jsonfile.kind(records)}, not an array")
    if "eventID" in document or "eventName" in document:
        return [document]
    detail_type = document.get("detail-type")
    if detail_type is not None:
        detail = document.get("detail")
        if (
            isinstance(detail_type, str)
            and detail_type.endswith(_EVENTBRIDGE_SUFFIX)
            and isinstance(detail, dict)
        ):
            return [detail]
        raise NormalizationError(
            f"EventBridge event {str(detail_type)[:80]!r} does not carry a CloudTrail record"
        )
    if "digestStartTime" in document or "digestEndTime" in document:
        return []  # digest files prove integrity; they hold no events
    if document.get("Event") == "s3:TestEvent":
        return []  # S3 sends it once when a bucket notification is configured
    raise NormalizationError("JSON object without 'Records'")


# ---------------------------------------------------------------------------
# normalize

_SIGNIN_SOURCE: Final = "signin.amazonaws.com"
_IAM_SOURCE: Final = "iam.amazonaws.com"
_SERVICE_SUFFIX: Final = ".amazonaws.com"

_SIGNIN_TYPE: Final[dict[str, str]] = {
    "ConsoleLogin": "start",
    "SwitchRole": "start",
    "RenewRole": "start",
    "ExitRole": "end",
}
_STS_SESSIONS: Final = frozenset(
    {
        "AssumeRole",
        "AssumeRoleWithSAML",
        "AssumeRoleWithWebIdentity",
        "AssumeRoot",
        "GetSessionToken",
        "GetFederationToken",
    }
)
_CREATION_PREFIXES: Final = ("Create", "Run")
_DELETION_PREFIXES: Final = ("Delete", "Terminate")

# Elastic's "Add ECS categorization" table: event name -> (category, entity type).
_USER: Final = ("iam", "user")
_GROUP: Final = ("iam", "group")
_ADMIN: Final = ("iam", "admin")
_ELASTIC_CATEGORIES: Final[dict[str, tuple[str, str | None]]] = {
    "AddUserToGroup": _GROUP,
    "AttachGroupPolicy": _GROUP,
    "AttachUserPolicy": _USER,
    "ChangePassword": _USER,
    "CreateAccessKey": _USER,
    "CreateBucket": ("file", None),
    "CreateGroup": _GROUP,
    "CreateKeyPair": _ADMIN,
    "CreateLoginProfile": _USER,
    "CreateUser": _USER,
    "CreateVirtualMFADevice": _USER,
    "DeactivateMFADevice": _USER,
    "DeleteAccessKey": _USER,
    "DeleteBucket": ("file", None),
    "DeleteGroup": _GROUP,
    "DeleteGroupPolicy": _GROUP,
    "DeleteLoginProfile": _USER,
    "DeleteSSHPublicKey": _USER,
    "DeleteUser": _USER,
    "DeleteUserPermissionsBoundary": _USER,
    "DeleteUserPolicy": _USER,
    "DeleteVirtualMFADevice": _USER,
    "DetachGroupPolicy": _GROUP,
    "DetachUserPolicy": _USER,
    "EnableMFADevice": _USER,
    "GetGroup": _GROUP,
    "GetGroupPolicy": _GROUP,
    "GetUser": _USER,
    "GetUserPolicy": _USER,
    "ListAttachedGroupPolicies": _GROUP,
    "ListAttachedUserPolicies": _USER,
    "ListGroupPolicies": _GROUP,
    "ListGroups": _GROUP,
    "ListGroupsForUser": _USER,
    "ListUserPolicies": _USER,
    "ListUserTags": _USER,
    "ListUsers": _USER,
    "PutGroupPolicy": _GROUP,
    "PutUserPermissionsBoundary": _USER,
    "PutUserPolicy": _USER,
    "RemoveUserFromGroup": _GROUP,
    "SetDefaultPolicyVersion": _ADMIN,
    "SetSecurityTokenServicePreferences": _ADMIN,
    "TagUser": _USER,
    "UntagUser": _USER,
    "UpdateAccessKey": _USER,
    "UpdateAccountPasswordPolicy": _ADMIN,
    "UpdateGroup": _GROUP,
    "UpdateLoginProfile": _USER,
    "UpdateRole": _ADMIN,
    "UpdateSSHPublicKey": _USER,
    "UpdateUser": _USER,
    "UploadSSHPublicKey": _USER,
}

# Top-level strings copied as they are: record key -> ECS/Elastic field.
_COPIED: Final = (
    ("eventVersion", "aws.cloudtrail.event_version"),
    ("eventType", "aws.cloudtrail.event_type"),
    ("eventCategory", "aws.cloudtrail.event_category"),
    ("requestID", "aws.cloudtrail.request_id"),
    ("recipientAccountId", "aws.cloudtrail.recipient_account_id"),
    ("sharedEventID", "aws.cloudtrail.shared_event_id"),
    ("vpcEndpointId", "aws.cloudtrail.vpc_endpoint_id"),
    ("userAgent", "user_agent.original"),
    ("errorCode", "aws.cloudtrail.error_code"),
    ("errorMessage", "aws.cloudtrail.error_message"),
)

_UI: Final = "aws.cloudtrail.user_identity."
_ISSUER: Final = _UI + "session_context.session_issuer."
_MFA_USED: Final = "aws.cloudtrail.console_login.additional_eventdata.mfa_used"

_EARLIEST_YEAR: Final = 1970
"""CloudTrail began in 2013: an earlier ``eventTime`` is damage or a placeholder,
and would sort to the far start of the timeline where nobody looks."""


def normalize(record: Any) -> AuditEvent:
    """Map one CloudTrail record to the ECS model.

    Only a record without a usable ``eventID`` (the dedup key) or
    ``eventTime`` (the timeline position) is rejected; any other field of the
    wrong type is left out, so one odd record still reaches the timeline.
    """
    if not isinstance(record, dict):
        if isinstance(record, jsonfile.Unstorable):
            raise NormalizationError(record.reason, raw=record.raw)
        raise NormalizationError(f"record is a JSON {jsonfile.kind(record)}, not an object")
    get = record.get
    event_id = get("eventID")
    if not event_id or not isinstance(event_id, str):
        raise NormalizationError(_missing(record, "eventID", event_id))
    timestamp = _event_time(record, get("eventTime"))

    fields: dict[str, Any] = {}
    for key, dotted in _COPIED:
        value = get(key)
        if value and isinstance(value, str):
            fields[dotted] = value

    name = _text(get("eventName"))
    source = _text(get("eventSource"))
    region = _text(get("awsRegion"))
    account = fields.get("aws.cloudtrail.recipient_account_id")

    read_only = _flag(get("readOnly"))
    if read_only is not None:
        fields["aws.cloudtrail.read_only"] = read_only
    management = _flag(get("managementEvent"))
    if management is not None:
        fields["aws.cloudtrail.management_event"] = management
    tls = get("tlsDetails")
    if isinstance(tls, dict):
        _tls(tls, fields)

    user_name: str | None = None
    user_id: str | None = None
    issuer_name: str | None = None
    identity = get("userIdentity")
    if isinstance(identity, dict):
        user_name, user_id, issuer_name, identity_account = _identity(identity, record, fields)
        account = account or identity_account

    # A user named in an IAM request is the one being changed (CreateUser,
    # AttachUserPolicy, CreateAccessKey for someone else ...).
    target: str | None = None
    new_name: str | None = None
    if source == _IAM_SOURCE:
        params = get("requestParameters")
        if isinstance(params, dict):
            target = _text(params.get("userName"))
            if target == user_name:
                target = None
            new_name = _text(params.get("newUserName"))
            if new_name:
                fields["user.changes.name"] = new_name

    mailbox: str | None = None
    if user_name and "@" in user_name:
        local, _, domain = user_name.partition("@")
        if local and "." in domain and "@" not in domain:
            fields["user.email"] = user_name
            mailbox = local
    related_user: list[str] = []
    for candidate in (user_name, target, issuer_name, mailbox, new_name):
        if candidate and candidate not in related_user:
            related_user.append(candidate)

    source_ip: str | None = None
    source_address = _text(get("sourceIPAddress"))
    if source_address:
        source_ip = _canonical_ip(source_address)

    action = name or ""
    category, types, signin = _categorize(action, source, read_only)

    error = fields.get("aws.cloudtrail.error_code")
    failed = error is not None or "aws.cloudtrail.error_message" in fields
    who = user_name or user_id or "unknown"
    message: str | None = None
    if signin:
        message, failed = _signin(record, action, who, failed, fields)
    if message is None:
        service = source.removesuffix(_SERVICE_SUFFIX) if source else "unknown"
        message = f"{who} called {service}:{name or 'unknown'}"
        if account and region:
            message += f" in {account}/{region}"
        elif account or region:
            message += f" in {account or region}"
        if source_address:
            message += f" from {source_address}"
        if failed:
            message += f" -> {error or 'failed'}"

    return AuditEvent(
        timestamp=timestamp,
        id=event_id,
        dataset=DATASET,
        kind="event",
        category=category,
        type=types,
        action=name,
        outcome="failure" if failed else "success",
        provider=source,
        user_name=user_name,
        user_id=user_id,
        user_target_name=target,
        source_ip=source_ip,
        source_address=source_address,
        cloud_provider="aws",
        cloud_account_id=account,
        cloud_region=region,
        cloud_service_name=source.removesuffix(_SERVICE_SUFFIX) if source else None,
        related_user=related_user,
        related_ip=[source_ip] if source_ip else [],
        message=message,
        fields=fields,
        original=record,
    )


def _identity(
    identity: dict[str, Any], record: dict[str, Any], fields: dict[str, Any]
) -> tuple[str | None, str | None, str | None, str | None]:
    """``(user.name, user.id, session issuer name, account id)`` for every ``userIdentity.type``.

    See https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-user-identity.html
    """
    get = identity.get
    kind = _text(get("type"))
    arn = _text(get("arn"))
    principal = _text(get("principalId"))
    account = _text(get("accountId"))
    name = _text(get("userName"))
    invoked_by = _text(get("invokedBy"))
    if kind:
        fields[_UI + "type"] = kind
    if arn:
        fields[_UI + "arn"] = arn
    key_id = _text(get("accessKeyId"))
    if key_id:
        fields[_UI + "access_key_id"] = key_id
    if invoked_by:
        fields[_UI + "invoked_by"] = invoked_by

    issuer_name: str | None = None
    context = get("sessionContext")
    if isinstance(context, dict):
        attributes = context.get("attributes")
        if isinstance(attributes, dict):
            mfa = attributes.get("mfaAuthenticated")
            if mfa and isinstance(mfa, str):
                fields[_UI + "session_context.mfa_authenticated"] = mfa
        issuer = context.get("sessionIssuer")
        if isinstance(issuer, dict):
            issuer_name = _text(issuer.get("userName"))
            issuer_arn = _text(issuer.get("arn"))
            issuer_type = _text(issuer.get("type"))
            if issuer_arn:
                fields[_ISSUER + "arn"] = issuer_arn
            if issuer_type:
                fields[_ISSUER + "type"] = issuer_type

    user_id = principal
    if kind == "AssumedRole":
        # arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION; principalId is ROLEID:SESSION.
        # Identity Center roles are AWSReservedSSO_<set>_<hash> with the
        # user's name or e-mail as SESSION, so the same rule finds the person.
        session: str | None = None
        if arn:
            _, marker, tail = arn.partition(":assumed-role/")
            if marker:
                role, _, session = tail.partition("/")
                issuer_name = issuer_name or role or None
        if not session and principal:
            session = principal.partition(":")[2]
        name = session or issuer_name
    elif kind == "IAMUser":
        name = name or _arn_tail(arn, ":user/")
    elif kind == "Root":
        name = "root"
        user_id = principal or account
    elif kind == "FederatedUser":
        # arn:aws:sts::ACCOUNT:federated-user/NAME; principalId is ACCOUNT:NAME.
        name = (
            _arn_tail(arn, ":federated-user/")
            or (principal.partition(":")[2] if principal else None)
            or issuer_name
        )
    elif kind == "AWSService":
        name = invoked_by or name
    elif kind == "AWSAccount":
        user_id = principal or account
    elif kind == "IdentityCenterUser":
        # Since 2025 Identity Center logs an opaque user id instead of userName.
        on_behalf = get("onBehalfOf")
        if isinstance(on_behalf, dict):
            user_id = _text(on_behalf.get("userId")) or user_id
        if not name:
            extra = record.get("additionalEventData")
            if isinstance(extra, dict):
                name = _text(extra.get("UserName")) or _text(extra.get("userName"))
    # Unknown, SAMLUser, WebIdentityUser and types yet to come: userName as given.

    if issuer_name:
        fields[_ISSUER + "user_name"] = issuer_name
    return name, user_id, issuer_name, account


def _categorize(
    name: str, source: str | None, read_only: bool | None
) -> tuple[list[str], list[str], bool]:
    """``(event.category, event.type, is a sign-in)`` after the table in the module docstring."""
    if source == _SIGNIN_SOURCE or name == "ConsoleLogin":
        return ["authentication"], [_SIGNIN_TYPE.get(name, "info")], True
    if name in _STS_SESSIONS:
        return ["authentication"], ["start"], False
    if read_only is True:
        types = ["access"]
    elif read_only is False:
        types = ["change"]
        if name.startswith(_CREATION_PREFIXES):
            types.append("creation")
        elif name.startswith(_DELETION_PREFIXES):
            types.append("deletion")
    else:
        types = ["info"]
    elastic = _ELASTIC_CATEGORIES.get(name)
    if elastic is not None:
        category, entity = elastic
        if entity is not None:
            types.insert(0, entity)
        return [category], types, False
    if source == _IAM_SOURCE:
        return ["iam"], types, False
    return ["configuration"], types, False


def _signin(
    record: dict[str, Any], name: str, who: str, failed: bool, fields: dict[str, Any]
) -> tuple[str | None, bool]:
    """Sign-in result and message: ``ConsoleLogin by mallory: Failure (MFA: No)``.

    Sign-in events answer in ``responseElements`` under their own name
    (``{"ConsoleLogin": "Failure"}``, ``{"SwitchRole": "Success"}``); a failed
    console login has no ``errorCode`` when the password was wrong.
    """
    result: str | None = None
    response = record.get("responseElements")
    if isinstance(response, dict):
        result = _text(response.get(name))
    mfa: str | None = None
    extra = record.get("additionalEventData")
    if isinstance(extra, dict):
        mfa = _text(extra.get("MFAUsed"))
        if mfa is not None and name == "ConsoleLogin":
            fields[_MFA_USED] = mfa == "Yes"
    if result is None:
        return None, failed
    failed = failed or result.lower() == "failure"
    message = f"{name} by {who}: {result}"
    if mfa is not None:
        message += f" (MFA: {mfa})"
    return message, failed


def _event_time(record: dict[str, Any], value: Any) -> datetime:
    """``eventTime`` as an aware UTC datetime.

    CloudTrail writes ``2024-05-01T12:00:00Z``; exports (Athena, SIEM
    re-exports) drop the zone or write a space and nanoseconds.  CloudTrail
    times are UTC by definition, so a time without a zone is read as UTC.
    """
    if not isinstance(value, str):
        if value is None:
            raise NormalizationError(_missing(record, "eventTime", value))
        raise NormalizationError(f"'eventTime' is a JSON {jsonfile.kind(value)}, not a string")
    try:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        elif moment.utcoffset():
            moment = moment.astimezone(UTC)
    except (ValueError, OverflowError) as err:
        raise NormalizationError(f"unparseable 'eventTime': {value[:64]!r}") from err
    if moment.year < _EARLIEST_YEAR:
        raise NormalizationError(f"'eventTime' out of range: {value[:64]!r}")
    return moment


def _missing(record: dict[str, Any], key: str, value: Any) -> str:
    if value is None or value == "":
        reason = f"missing '{key}'"
        lower = key.lower()
        if lower in record:
            # Some exports (Athena, data lakes) lower-case every key; AWS never does.
            reason += f" (found '{lower}': keys must keep CloudTrail's camelCase)"
        return reason
    return f"'{key}' is a JSON {jsonfile.kind(value)}, not a string"


def _tls(tls: dict[str, Any], fields: dict[str, Any]) -> None:
    version = _text(tls.get("tlsVersion"))
    if version:
        protocol, v, number = version.partition("v")  # "TLSv1.2"
        if v and number:
            fields["tls.version_protocol"] = protocol.lower()
            fields["tls.version"] = number
        else:
            fields["tls.version"] = version
    cipher = _text(tls.get("cipherSuite"))
    if cipher:
        fields["tls.cipher"] = cipher
    host = _text(tls.get("clientProvidedHostHeader"))
    if host:
        fields["tls.client.server_name"] = host


def _text(value: Any) -> str | None:
    return value if value and isinstance(value, str) else None


def _flag(value: Any) -> bool | None:
    """CloudTrail writes booleans; some exports turn them into ``"true"``/``"false"``."""
    if value is True or value is False:
        return value
    if isinstance(value, str):
        lowered = value.lower()
        if lowered == "true":
            return True
        if lowered == "false":
            return False
    return None


def _arn_tail(arn: str | None, marker: str) -> str | None:
    if not arn:
        return None
    _, found, tail = arn.partition(marker)
    if not found:
        return None
    return tail.rpartition("/")[2] or None  # IAM paths: user/division/alice


@functools.lru_cache(maxsize=8192)
def _canonical_ip(text: str) -> str | None:
    """The address in canonical form, or None for a service principal.

    Cached: a trail sees the same few hundred addresses over and over, and
    ``ipaddress`` costs microseconds per call.
    """
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None
