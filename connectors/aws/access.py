"""AWS access shared by every AWS source: credentials, clients, retries, errors.

Every AWS source's config model mixes in :class:`AwsAccessConfig`, so the same
keys mean the same thing everywhere.  Credentials come from the default chain
(environment, shared files, instance or container role), a named ``profile``,
or STS AssumeRole (``role_arn`` with ``external_id``), refreshed by botocore
before they expire.  An organization trail read from each member account uses
``account_roles``, one role per account.

boto3 is synchronous: callers run these clients in worker threads, never on
the event loop.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

import boto3
import botocore.session
from botocore.config import Config as BotoConfig
from botocore.credentials import RefreshableCredentials
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError
from pydantic import BaseModel, Field, field_validator

from connectors.base import (
    AuthError,
    ConfigError,
    PermanentError,
    TransientError,
)
from connectors.config import SecretStr

_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
_ACCOUNT = re.compile(r"^\d{12}$")
ASSUMED_SECS = 3600
"""Lifetime asked for assumed-role credentials; botocore refreshes them 15 minutes early."""

_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "Forbidden"}
_AUTH = {
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidAccessKeyId",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "UnrecognizedClientException",
    "InvalidToken",
}
_KMS = re.compile(r"^KMS", re.I)
_THROTTLED = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "SlowDown",
    "TooManyRequestsException",
    "RequestThrottled",
    "RequestThrottledException",
    "ProvisionedThroughputExceededException",
}


def _role_arn(value: str | None) -> str | None:
    if value is not None and not _ROLE_ARN.match(value):
        raise ValueError(f"{value!r} is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)")
    return value


class AwsAccessConfig(BaseModel):
    """The AWS keys every AWS source accepts (mixed into its config model)."""

    region: str | None = None
    """Region of the API endpoints; default: the profile's or ``AWS_REGION``."""
    profile: str | None = None
    """Named profile of the shared AWS config files; default: the default chain."""
    role_arn: str | None = None
    """Role to assume with STS before every call (e.g. in the log-archive account)."""
    external_id: SecretStr | None = None
    """ExternalId the role's trust policy demands."""
    account_roles: dict[str, str] = {}
    """Role to assume per account id, for APIs read in each member account."""
    endpoint_url: str | None = None
    """Another endpoint: a VPC endpoint, an S3-compatible gateway, a test server."""
    max_attempts: int = Field(default=8, ge=1, le=20)
    """Tries of one API call on throttling, 5xx and connection errors (with backoff)."""

    _check_role = field_validator("role_arn")(_role_arn)

    @field_validator("account_roles")
    @classmethod
    def _check_account_roles(cls, value: dict[str, str]) -> dict[str, str]:
        for account, arn in value.items():
            if not _ACCOUNT.match(account):
                raise ValueError(f"account_roles key {account!r} is not a 12-digit account id")
            _role_arn(arn)
        return value


class AwsAccess:
    """Makes boto3 clients for one source's :class:`AwsAccessConfig`.

    Sessions are built lazily per role and kept; clients are thread-safe and
    shared by the source's worker threads.
    """

    def __init__(self, config: AwsAccessConfig, *, session_name: str, pool_size: int = 10) -> None:
        self._config = config
        self._session_name = session_name[:64]
        self._boto_config = BotoConfig(
            retries={"mode": "standard", "max_attempts": config.max_attempts},
            max_pool_connections=pool_size,
            connect_timeout=10,
            read_timeout=60,
        )
        self._sessions: dict[str | None, boto3.Session] = {}
        self._lock = threading.Lock()

    def client(self, service: str, *, account: str | None = None, region: str | None = None) -> Any:
        """A client for ``service``, in ``account``'s role when ``account_roles`` names one."""
        role = self._config.account_roles.get(account or "") or self._config.role_arn
        return self.client_as(service, role, region=region)

    def client_as(self, service: str, role: str | None, *, region: str | None = None) -> Any:
        """A client for ``service`` in ``role``, or with the base credentials for None."""
        return self._session(role).client(
            service,
            region_name=region or self._config.region,
            endpoint_url=self._config.endpoint_url,
            config=self._boto_config,
        )

    def _session(self, role: str | None) -> boto3.Session:
        with self._lock:
            found = self._sessions.get(role)
            if found is None:
                found = self._sessions[role] = self._new_session(role)
            return found

    def _new_session(self, role: str | None) -> boto3.Session:
        base = boto3.Session(profile_name=self._config.profile, region_name=self._config.region)
        if role is None:
            return base
        sts = base.client(
            "sts",
            endpoint_url=self._config.endpoint_url,
            region_name=self._config.region,
            config=self._boto_config,
        )
        fetch = self._assume(sts, role)
        credentials = RefreshableCredentials.create_from_metadata(
            metadata=fetch(), refresh_using=fetch, method="sts-assume-role"
        )
        core = botocore.session.get_session()
        # The documented way to give a session refreshing credentials has no
        # public setter: https://github.com/boto/botocore/issues/761
        core._credentials = credentials
        if self._config.region:
            core.set_config_variable("region", self._config.region)
        return boto3.Session(botocore_session=core)

    def _assume(self, sts: Any, role: str) -> Callable[[], dict[str, str]]:
        extra: dict[str, Any] = {}
        if self._config.external_id is not None:
            extra["ExternalId"] = self._config.external_id.reveal()

        def fetch() -> dict[str, str]:
            try:
                answer = sts.assume_role(
                    RoleArn=role,
                    RoleSessionName=self._session_name,
                    DurationSeconds=ASSUMED_SECS,
                    **extra,
                )
            except ClientError as err:
                raise translate(err, f"sts:AssumeRole {role}") from err
            found = answer["Credentials"]
            expiry: datetime = found["Expiration"]
            return {
                "access_key": found["AccessKeyId"],
                "secret_key": found["SecretAccessKey"],
                "token": found["SessionToken"],
                "expiry_time": expiry.isoformat(),
            }

        return fetch


def error_code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def translate(err: Exception, what: str) -> Exception:
    """``err`` from a boto3 call on ``what`` as the error class the caller acts on."""
    if isinstance(err, AuthError | TransientError | PermanentError | ConfigError):
        return err
    if isinstance(err, EndpointConnectionError):
        return TransientError(f"{what}: cannot connect: {err}")
    if isinstance(err, BotoCoreError):
        return TransientError(f"{what}: {err}")
    if not isinstance(err, ClientError):
        return err
    code = error_code(err)
    message = str(err.response.get("Error", {}).get("Message", "")) or code
    status = int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    if code in _DENIED or code in _AUTH or status == 403:
        kind = "KMS key denied" if _KMS.search(code) or "kms:" in message else "access denied"
        return AuthError(f"{what}: {kind}: {message} ({code})")
    if code in _THROTTLED or status == 429 or status >= 500:
        return TransientError(f"{what}: {message} ({code or status}), retries exhausted")
    return PermanentError(f"{what}: {message} ({code or status})")


def kms_denied(key_id: str, what: str, err: ClientError) -> AuthError:
    """An AccessDenied on reading an SSE-KMS object: the key policy, not the bucket."""
    return AuthError(
        f"{what}: KMS key denied: the role needs kms:Decrypt on {key_id}"
        f" ({error_code(err)}: {err.response.get('Error', {}).get('Message', '')})"
    )
