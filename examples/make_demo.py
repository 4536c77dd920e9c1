"""Build the bundled demo data set: one day of CloudTrail (2026-11-20 UTC) with a story in it.

The operators' first tour runs on this data, and later correlation rules are tested
against it, so it is deterministic: running this script again rewrites the same records.
Background noise comes from ctgen (benign calls only, so every alert in the demo belongs
to the story); the story is scripted below and described in examples/demo/README.md.

    python examples/make_demo.py            # rewrites examples/demo/AWSLogs
    python examples/make_demo.py /tmp/demo  # or anywhere else
"""

from __future__ import annotations

import random
import shutil
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ctgen  # examples/ is not a package: ctgen is found next to this script

ORG = "o-demo12345"
PROD, STAGING, LOG_ARCHIVE = "111111111111", "222222222222", "333333333333"
ACCOUNTS = [PROD, STAGING, LOG_ARCHIVE]
REGIONS = ["ap-northeast-1", "us-east-1"]
DAY = datetime(2026, 11, 20, tzinfo=UTC)
SEED = 20261120

ATTACKER_IP = "203.0.113.66"
MAINTENANCE_INSTANCE = "i-0abc1234def567890"
TRAIL_ARN = f"arn:aws:cloudtrail:us-east-1:{PROD}:trail/org-trail"
ATTACKER_UA = "Mozilla/5.0 (X11; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/115.0"

Json = dict[str, Any]

# noise must not raise alerts of its own: no writes, errors, root, MFA-less or failed
# sign-ins, and no one assuming the powerful roles the story is about
_RISKY_ROLES = ("/OrganizationAccountAccessRole", "-deploy")
_PIPELINE_ROLE = "/github-actions-deploy"


def at(hhmmss: str) -> datetime:
    """A time on the demo day, 'HH:MM:SS' UTC."""
    h, m, s = (int(x) for x in hhmmss.split(":"))
    return DAY.replace(hour=h, minute=m, second=s)


def benign(record: Json) -> bool:
    """True for noise that no reasonable rule should flag."""
    if "errorCode" in record or "errorMessage" in record:
        return False
    if record["userIdentity"].get("type") == "Root":
        return False
    if record["eventName"] == "ConsoleLogin":
        extra = record.get("additionalEventData") or {}
        return extra.get("MFAUsed") == "Yes"
    if not record.get("readOnly"):
        return False
    if record["eventName"] == "AssumeRole":
        role = (record.get("requestParameters") or {}).get("roleArn", "")
        return role.endswith(_PIPELINE_ROLE) or not role.endswith(_RISKY_ROLES)
    return True


def bursts() -> list[tuple[datetime, int, str, str, int]]:
    """Working sessions: (start, minutes, account, region, records); some cover the story."""
    rng = random.Random(SEED)
    plan = [
        (at("02:04:00"), 15, PROD, "us-east-1", 8),
        (at("02:06:00"), 12, PROD, "ap-northeast-1", 5),
        (at("08:55:00"), 35, PROD, "ap-northeast-1", 16),
        (at("09:05:00"), 20, PROD, "us-east-1", 6),
        (at("14:01:00"), 12, STAGING, "us-east-1", 8),
        (at("16:36:00"), 12, PROD, "us-east-1", 8),
    ]
    accounts = [PROD] * 5 + [STAGING] * 4 + [LOG_ARCHIVE] * 2
    for _ in range(44):
        minute = rng.randrange(5, 23 * 60 + 30)  # all deliveries stay on the demo day
        plan.append(
            (
                DAY + timedelta(minutes=minute),
                rng.randrange(3, 12),
                rng.choice(accounts),
                rng.choice([*REGIONS, "ap-northeast-1"]),
                rng.randrange(3, 11),
            )
        )
    return plan


def noise() -> list[Json]:
    """Benign background records from ctgen, one session of one account/region at a time."""
    out: list[Json] = []
    for i, (start, minutes, account, region, wanted) in enumerate(bursts()):
        candidates = ctgen.generate_records(
            wanted * 25,
            start=start,
            span=timedelta(minutes=minutes),
            seed=SEED + i,
            accounts=ACCOUNTS,
            regions=REGIONS,
        )
        matches = [
            r
            for r in candidates
            if r["recipientAccountId"] == account and r["awsRegion"] == region and benign(r)
        ]
        step = max(1, len(matches) // wanted)  # spread the session over its whole window
        out.extend(matches[::step][:wanted])
    return out


def story() -> Iterator[Json]:
    """The scripted incidents of the day, in time order."""
    # A seed no noise burst uses (they take SEED + i), so no eventID repeats.
    f = ctgen.CloudTrailFactory(accounts=ACCOUNTS, regions=REGIONS, seed=SEED - 1)

    # 02:10-02:14 brute force on the console, then persistence and defence evasion
    mallory = f.iam_user(PROD, "mallory", ip=ATTACKER_IP, console=True, mfa=False)
    mallory.session_start = int(at("02:12:10").timestamp())  # the console session's sign-in
    for hhmmss in ("02:10:03", "02:10:21", "02:10:44", "02:11:02", "02:11:30", "02:11:52"):
        yield f.console_login(mallory, at(hhmmss), success=False, user_agent=ATTACKER_UA)
    yield f.console_login(mallory, at("02:12:10"), success=True, mfa=False, user_agent=ATTACKER_UA)
    yield f.api_call(mallory, "iam:ListUsers", at("02:12:41"), account=PROD)
    t = at("02:13:05")
    req, resp, _, _ = f.iam_create_user(PROD, "backup-admin", int(t.timestamp()))
    yield f.api_call(mallory, "iam:CreateUser", t, account=PROD, request=req, response=resp)
    yield f.api_call(
        mallory,
        "iam:AttachUserPolicy",
        at("02:13:20"),
        account=PROD,
        request={
            "userName": "backup-admin",
            "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess",
        },
    )
    t = at("02:13:42")
    req, resp, _, _ = f.iam_create_access_key(PROD, "backup-admin", int(t.timestamp()))
    yield f.api_call(mallory, "iam:CreateAccessKey", t, account=PROD, request=req, response=resp)
    yield f.api_call(
        mallory,
        "cloudtrail:StopLogging",
        at("02:14:15"),
        account=PROD,
        region="us-east-1",
        request={"name": TRAIL_ARN},
        resources=[{"accountId": PROD, "type": "AWS::CloudTrail::Trail", "ARN": TRAIL_ARN}],
    )

    # 06:00 a Lambda function's role is assumed by the Lambda service (AWSService)
    yield f.assume_role(
        f.aws_service("lambda.amazonaws.com"),
        "prod-cost-exporter-role",
        "prod-cost-exporter",
        at("06:00:02"),
        account=PROD,
        region="ap-northeast-1",
        duration=None,
    )

    # 09:00-09:30 alice's maintenance through IAM Identity Center (approved later)
    office = ctgen.IPS["office"][0]
    alice = f.person_sso(PROD, "alice@example.com", permission_set="AdministratorAccess", ip=office)
    alice.session_start = int(at("08:58:41").timestamp())
    yield f.sso_portal("alice", at("08:58:40"), account=PROD, ip=office)
    yield f.api_call(
        alice,
        "ec2:DescribeInstances",
        at("09:02:15"),
        account=PROD,
        region="ap-northeast-1",
        request={
            "instancesSet": {"items": [{"instanceId": MAINTENANCE_INSTANCE}]},
            "filterSet": {},
        },
    )
    yield instance_state(
        f, alice, "ec2:StopInstances", at("09:05:30"), (64, "stopping"), (16, "running")
    )
    bucket = "prod-assets-apn1"
    bucket_arn = f"arn:aws:s3:::{bucket}"
    yield f.api_call(
        alice,
        "s3:PutBucketPolicy",
        at("09:14:05"),
        account=PROD,
        region="ap-northeast-1",
        request={
            "bucketPolicy": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "AllowCdnRead",
                        "Effect": "Allow",
                        "Principal": {"Service": "cloudfront.amazonaws.com"},
                        "Action": "s3:GetObject",
                        "Resource": f"{bucket_arn}/*",
                    }
                ],
            },
            "bucketName": bucket,
            "Host": f"{bucket}.s3.ap-northeast-1.amazonaws.com",
            "policy": "",
        },
        resources=[{"accountId": PROD, "type": "AWS::S3::Bucket", "ARN": bucket_arn}],
    )
    yield instance_state(
        f, alice, "ec2:StartInstances", at("09:24:50"), (0, "pending"), (80, "stopped")
    )

    # 11:15 the legacy reporting tool: GetFederationToken, then calls as a FederatedUser
    reporter = f.iam_user(PROD, "svc-reporting", ip=ctgen.IPS["office"][6], console=False)
    reporter.agent = "python"
    yield f.api_call(reporter, "sts:GetFederationToken", at("11:14:58"), account=PROD)
    fed = f.federated_user(PROD, "reporting")
    fed.session_start = int(at("11:14:58").timestamp())
    yield f.api_call(fed, "ec2:DescribeInstances", at("11:15:30"), account=PROD, region="us-east-1")
    yield f.api_call(fed, "s3:ListBuckets", at("11:15:41"), account=PROD, region="us-east-1")

    # 14:05 root signs in to staging (with MFA) and deletes a bucket
    root = f.root(STAGING, ip=ctgen.IPS["office"][0], mfa=True)
    root.session_start = int(at("14:05:12").timestamp())
    yield f.console_login(root, at("14:05:12"), success=True, mfa=True)
    doomed = "staging-exports-use1"
    yield f.api_call(
        root,
        "s3:DeleteBucket",
        at("14:07:48"),
        account=STAGING,
        region="us-east-1",
        request={"bucketName": doomed, "Host": f"{doomed}.s3.us-east-1.amazonaws.com"},
        resources=[
            {"accountId": STAGING, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{doomed}"}
        ],
    )

    # 16:40 bob (read-only) is refused AttachRolePolicy, then rewrites a trust policy
    bob = f.iam_user(PROD, "bob", ip=ctgen.CAST[1].ips[1], console=False)
    yield f.api_call(
        bob,
        "iam:AttachRolePolicy",
        at("16:40:07"),
        account=PROD,
        request={
            "roleName": "prod-deploy",
            "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess",
        },
        error=(
            "AccessDenied",
            f"User: arn:aws:iam::{PROD}:user/bob is not authorized to perform: "
            f"iam:AttachRolePolicy on resource: role prod-deploy because no identity-based "
            f"policy allows the iam:AttachRolePolicy action",
        ),
    )
    trust = (
        '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":'
        f'"arn:aws:iam::{PROD}:user/bob"}},"Action":"sts:AssumeRole"}}]}}'
    )
    yield f.api_call(
        bob,
        "iam:UpdateAssumeRolePolicy",
        at("16:41:33"),
        account=PROD,
        request={"roleName": "prod-deploy", "policyDocument": trust},
    )
    yield f.assume_role(bob, "prod-deploy", "bob", at("16:42:10"), account=PROD)


def instance_state(
    f: ctgen.CloudTrailFactory,
    actor: ctgen.Actor,
    op: str,
    when: datetime,
    current: tuple[int, str],
    previous: tuple[int, str],
) -> Json:
    """Stop/StartInstances on the maintenance instance in prod, ap-northeast-1."""
    request: Json = {"instancesSet": {"items": [{"instanceId": MAINTENANCE_INSTANCE}]}}
    if current[1] == "stopping":
        request["force"] = False
    record = f.api_call(actor, op, when, account=PROD, region="ap-northeast-1", request=request)
    record["responseElements"] = {
        "requestId": record["requestID"],
        "instancesSet": {
            "items": [
                {
                    "instanceId": MAINTENANCE_INSTANCE,
                    "currentState": {"code": current[0], "name": current[1]},
                    "previousState": {"code": previous[0], "name": previous[1]},
                }
            ]
        },
    }
    return record


def build(out_dir: Path) -> tuple[int, int]:
    """Rewrite out_dir/AWSLogs; returns (files, records)."""
    records = noise() + list(story())
    records.sort(key=lambda r: r["eventTime"])  # stable: story order kept within a second
    shutil.rmtree(out_dir / "AWSLogs", ignore_errors=True)
    paths = ctgen.write_tree(out_dir, records, organization_id=ORG, seed=SEED)
    return len(paths), len(records)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: python examples/make_demo.py [OUT_DIR]."""
    args = sys.argv[1:] if argv is None else argv
    out_dir = Path(args[0]) if args else Path(__file__).resolve().parent / "demo"
    files, records = build(out_dir)
    print(f"wrote {files} files, {records} records to {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
