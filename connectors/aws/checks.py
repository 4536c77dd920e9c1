"""``auditcorr doctor`` for the AWS sources: dry calls that prove each permission.

Every AWS source gets the same first checks — whose credentials these are (STS
GetCallerIdentity), the clock against AWS's (the ``Date`` of that reply: SigV4
refuses requests more than 15 minutes off), and each role it assumes — and
then its own probes: one read-only call per IAM action it needs (list one key,
read one object, look at the queue).  Nothing is changed upstream.  A denied
call is one failed check whose hint names the IAM action and resource.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from connectors.aws.access import AwsAccess, AwsAccessConfig, translate
from connectors.base import AuthError, Check

CLOCK = "clock against AWS"
MAX_SKEW = timedelta(minutes=5)
"""Clock skew doctor accepts; SigV4 rejects requests more than 15 minutes off."""
CREDENTIALS_HINT = (
    "give the daemon AWS credentials: environment variables, profile, an instance role,"
    " or role_arn (docs/aws.md#credentials)"
)


@dataclass(frozen=True, slots=True)
class Probe:
    """One dry call a source needs to succeed."""

    name: str
    """What it proves, e.g. ``s3:ListBucket on org-trail-logs/AWSLogs/``."""
    call: Callable[[], str]
    """Makes the call (blocking); returns what it found, for the checklist."""
    hint: str
    """What to grant when the call is denied."""


def run_checks(
    config: AwsAccessConfig, access: AwsAccess, probes: Callable[[], list[Probe]]
) -> list[Check]:
    """Identity, clock and roles, then the source's ``probes`` (blocking: run in a thread)."""
    checks, reply = _identity(access)
    if not checks[0].ok:
        return checks
    roles = {config.role_arn, *config.account_roles.values()} - {None}
    checks += [_role(access, role) for role in sorted(r for r in roles if r)]
    if reply is not None:
        checks.append(clock(reply, datetime.now(UTC)))
    if not all(check.ok for check in checks if check.name != CLOCK):
        # Every call would fail the same way: one failed check per problem.
        return checks
    try:
        planned = probes()
    except Exception as err:  # noqa: BLE001 - a client that cannot be made is one failed check
        return [*checks, _failed("clients", err, CREDENTIALS_HINT)]
    return checks + [probe_check(probe) for probe in planned]


def probe_check(probe: Probe) -> Check:
    try:
        return Check(probe.name, True, probe.call())
    except Exception as err:  # noqa: BLE001 - every failure is a line of the checklist
        return _failed(probe.name, err, probe.hint)


def _failed(name: str, err: Exception, denied_hint: str) -> Check:
    found = translate(err, name) if isinstance(err, ClientError | BotoCoreError) else err
    detail = str(found).removeprefix(f"{name}: ")
    if isinstance(found, AuthError):
        # The KMS case names its own action and key in the error.
        hint = None if "KMS key denied" in detail else denied_hint
        return Check(name, False, detail, hint)
    return Check(name, False, detail, _unreachable_hint(found))


def _unreachable_hint(err: Exception) -> str:
    if "connect" in str(err).lower():
        return "AWS is not reachable: check the network, a proxy, or endpoint_url"
    return "the resource may not exist or the call failed: see the detail"


def _identity(access: AwsAccess) -> tuple[list[Check], dict[str, Any] | None]:
    name = "credentials"
    try:
        reply = access.client_as("sts", None).get_caller_identity()
    except Exception as err:  # noqa: BLE001 - no credentials is a failed check
        return [_failed(name, err, CREDENTIALS_HINT)], None
    detail = f"{reply['Arn']} (account {reply['Account']})"
    return [Check(name, True, detail)], reply


def _role(access: AwsAccess, role: str) -> Check:
    name = f"sts:AssumeRole {role}"
    hint = (
        "the caller needs sts:AssumeRole on the role, and the role's trust policy must"
        " trust the caller (with the ExternalId, if external_id is set)"
    )
    try:
        reply = access.client_as("sts", role).get_caller_identity()
    except Exception as err:  # noqa: BLE001
        return _failed(name, err, hint)
    return Check(name, True, f"as {reply['Arn']}")


def clock(reply: dict[str, Any], now: datetime) -> Check:
    """Local time against the ``Date`` of an AWS reply."""
    header = str(reply.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date", ""))
    try:
        # An HTTP date is 29 characters; a proxy may have added a second one after it.
        sent = parsedate_to_datetime(header[:29])
    except (TypeError, ValueError):
        return Check(CLOCK, True, f"no Date header to compare with: {header!r}")
    skew = (now - sent.replace(tzinfo=sent.tzinfo or UTC)).total_seconds()
    detail = f"{abs(skew):.0f}s {'ahead of' if skew >= 0 else 'behind'} AWS"
    if abs(skew) <= MAX_SKEW.total_seconds():
        return Check(CLOCK, True, detail)
    hint = (
        "synchronize the clock (chrony or systemd-timesyncd); AWS refuses requests 15 minutes off"
    )
    return Check(CLOCK, False, detail, hint)
