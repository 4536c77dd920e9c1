"""Generate realistic AWS CloudTrail records and write them in the S3 delivery layout.

The demo data set, the benchmarks and the tests need CloudTrail that looks like the real
thing: every ``userIdentity`` type, console sign-ins, errors, service-invoked calls, and
files grouped and named the way CloudTrail delivers them::

    AWSLogs/[o-ORGID/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/
        ACCOUNT_CloudTrail_REGION_YYYYMMDDTHHMMZ_<16 alnum>.json.gz   -> {"Records": [...]}

Standard library plus orjson only, so it runs without the project installed::

    python examples/ctgen.py /tmp/ct --events 1000000 --seed 7

Principal ids, access keys and resource ids are derived from names (stable across seeds,
so an identity map written for one run fits every run); event ids, times and the mix of
calls come from one ``random.Random(seed)`` (the same seed gives the same records).
"""

from __future__ import annotations

import argparse
import base64
import calendar
import hashlib
import random
import re
import string
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

try:  # isal compresses several times faster than zlib at a similar ratio
    from isal import igzip as _gz

    _LEVELS = (0, 1, 1, 1, 2, 2, 2, 3, 3, 3)  # isal has levels 0-3: map zlib's 0-9 onto them
except ImportError:  # pragma: no cover - depends on the environment
    import gzip as _gz  # type: ignore[no-redef]

    _LEVELS = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9)

__all__ = [
    "CAST",
    "DEFAULT_ACCOUNTS",
    "DEFAULT_REGIONS",
    "IPS",
    "Actor",
    "CloudTrailFactory",
    "Person",
    "generate_records",
    "main",
    "parse_event_time",
    "write_tree",
]

DEFAULT_ACCOUNTS = ("111111111111", "222222222222", "333333333333")
DEFAULT_REGIONS = ("us-east-1", "eu-west-1", "ap-northeast-1")
INTERVAL = 300  # CloudTrail delivers a file per account and region about every 5 minutes
DEFAULT_START = datetime(2026, 11, 20, tzinfo=UTC)

Json = dict[str, Any]
_Built = tuple[Any, Any, Any, Any]  # requestParameters, responseElements, additional, resources

# --------------------------------------------------------------------------- helpers

_B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_ALNUM = string.ascii_letters + string.digits
_MONTHS = ("", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}
_KEY_CHARS = str.maketrans("0189", "QRWX")  # hex digits onto the base32 alphabet of AWS keys


def _digest(*parts: str) -> int:
    """A stable 160-bit number for a name, so ids survive a change of seed."""
    raw = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=20).digest()
    return int.from_bytes(raw, "big")


def _stable_b32(n: int, *parts: str) -> str:
    value, out = _digest(*parts), []
    for _ in range(n):
        out.append(_B32[value & 31])
        value >>= 5
    return "".join(out)


def _stable_hex(n: int, *parts: str) -> str:
    return f"{_digest(*parts):040x}"[:n]


def _stable_uuid(*parts: str) -> str:
    h = _stable_hex(32, *parts)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _iso(t: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _aws_date(t: int) -> str:
    """The 'Nov 20, 2026, 2:12:05 AM' form IAM and STS use inside responseElements."""
    tm = time.gmtime(t)
    hour = tm.tm_hour % 12 or 12
    half = "AM" if tm.tm_hour < 12 else "PM"
    return (
        f"{_MONTHS[tm.tm_mon]} {tm.tm_mday}, {tm.tm_year}, "
        f"{hour}:{tm.tm_min:02d}:{tm.tm_sec:02d} {half}"
    )


def parse_event_time(value: str) -> int:
    """Epoch seconds of a CloudTrail ``eventTime`` ('2026-11-20T02:10:00Z')."""
    return calendar.timegm(
        (
            int(value[0:4]),
            int(value[5:7]),
            int(value[8:10]),
            int(value[11:13]),
            int(value[14:16]),
            int(value[17:19]),
            0,
            0,
            0,
        )
    )


def _epoch(when: datetime | float) -> int:
    if isinstance(when, datetime):
        if when.tzinfo is None:  # naive datetimes are taken as UTC, like CloudTrail's
            when = when.replace(tzinfo=UTC)
        return int(when.timestamp())
    return int(when)


def _short_region(region: str) -> str:
    parts = region.split("-")
    return parts[0] + "".join(p[0] for p in parts[1:-1]) + parts[-1]


def _kebab(name: str) -> str:
    name = re.sub(r"\d{8}(v\d)?$", "", name)  # Lambda's ListFunctions20150331 -> ListFunctions
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


# --------------------------------------------------------------------------- the cast

_CLI_UA = (
    "aws-cli/2.15.{v} md/awscrt#0.19.19 ua/2.0 os/{os} md/arch#x86_64 lang/python#3.11.8 "
    "md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/prompt#off md/command#"
)
_CLI_OS = (
    "linux#6.5.0-1018-aws md/distrib#ubuntu.22",
    "macos#23.4.0",
    "linux#5.14.0-362.24.1.el9_3.x86_64 md/distrib#rhel.9",
    "linux#6.8.0-31-generic md/distrib#ubuntu.24",
)
_OLD_CLI_UA = (  # aws-cli before 2.13 used the shorter agent format; some laptops lag behind
    "aws-cli/2.{v} Python/3.11.4 {os} exe/x86_64.{distro} prompt/off command/"
)
_OLD_CLI_OS = (
    ("Linux/5.15.0-1031-aws", "ubuntu.22"),
    ("Darwin/22.6.0", "macos"),
    ("Linux/5.14.0-284.11.1.el9_2.x86_64", "rhel.9"),
)
_TF_UA = (
    "APN/1.0 HashiCorp/1.0 Terraform/1.8.2 (+https://www.terraform.io) "
    "terraform-provider-aws/5.47.0 (+https://registry.terraform.io/providers/hashicorp/aws) "
    "aws-sdk-go-v2/1.26.1 os/linux lang/go#1.22.2 md/GOOS#linux md/GOARCH#amd64 api/"
)
_TF_API = {
    "ec2": "ec2#1.157.0",
    "s3": "s3#1.53.1",
    "iam": "iam#1.32.0",
    "sts": "sts#1.28.6",
    "kms": "kms#1.31.0",
    "lambda": "lambda#1.54.0",
    "cloudtrail": "cloudtrail#1.39.0",
    "sso": "sso#1.20.5",
}
_BOTO_LAMBDA_UA = (
    "Boto3/1.34.84 md/Botocore#1.34.84 ua/2.0 os/linux#5.10.214-223.857.amzn2.x86_64 "
    "md/arch#x86_64 lang/python#3.12.2 md/pyimpl#CPython exec-env/AWS_Lambda_python3.12 "
    "cfg/retry-mode#legacy Botocore/1.34.84"
)
_JAVA_UA = (
    "aws-sdk-java/2.25.40 Linux/5.10.215-203.850.amzn2.x86_64 "
    "OpenJDK_64-Bit_Server_VM/17.0.11+9-LTS Java/17.0.11 vendor/Amazon.com_Inc. md/io#sync "
    "md/http#Apache ua/2.0 cfg/retry-mode#legacy"
)
_PYTHON_UA = (
    "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#6.1.0-18-amd64 md/arch#x86_64 "
    "lang/python#3.11.2 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.69"
)
_CONSOLE_UA = "AWS Internal"
_S3_CONSOLE_UA = (
    "[S3Console/0.4, aws-internal/3 aws-sdk-java/1.12.660 "
    "Linux/5.10.213-179.855.amzn2int.x86_64 OpenJDK_64-Bit_Server_VM/25.402-b08 "
    "java/1.8.0_402 vendor/Oracle_Corporation cfg/retry-mode/standard]"
)
_BROWSERS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.67",
)
_TLS = (
    ("TLSv1.3", "TLS_AES_128_GCM_SHA256"),
    ("TLSv1.3", "TLS_AES_128_GCM_SHA256"),
    ("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256"),
    ("TLSv1.3", "TLS_AES_256_GCM_SHA384"),
)


def _ip_pool() -> dict[str, list[str]]:
    """50 source addresses from documentation ranges and private space (never 203.0.113.66,
    which the demo keeps for its attacker)."""
    r = random.Random(1120)
    return {
        "office": [f"192.0.2.{x}" for x in r.sample(range(2, 254), 8)],
        "vpn": [f"198.51.100.{x}" for x in r.sample(range(2, 254), 14)],
        "home": [f"203.0.113.{x}" for x in r.sample([h for h in range(2, 254) if h != 66], 14)],
        "onprem": [f"10.20.{r.randrange(1, 40)}.{r.randrange(2, 254)}" for _ in range(6)],
        "vpc": [
            f"10.{r.choice((0, 1))}.{r.randrange(0, 64)}.{r.randrange(4, 254)}" for _ in range(8)
        ],
    }


IPS = _ip_pool()


@dataclass(frozen=True, slots=True)
class Person:
    """One member of the fixed cast: the same names, e-mails and addresses in every run."""

    name: str
    email: str
    permission_set: str  # the Identity Center permission set they normally use
    iam_user: bool  # also has a long-lived IAM user of the same name
    agent: str  # cli | console | terraform
    ips: tuple[str, ...]
    sso_user_id: str


def _cast() -> tuple[Person, ...]:
    spec = (
        ("alice", "AdministratorAccess", True, "console"),
        ("bob", "ReadOnlyAccess", True, "cli"),
        ("carol", "PowerUserAccess", True, "terraform"),
        ("dave", "PowerUserAccess", False, "cli"),
        ("erin", "ReadOnlyAccess", False, "console"),
        ("frank", "AdministratorAccess", False, "cli"),
        ("grace", "PowerUserAccess", True, "console"),
        ("heidi", "ReadOnlyAccess", False, "cli"),
        ("ivan", "PowerUserAccess", True, "cli"),
        ("judy", "SecurityAudit", False, "console"),
        ("oscar", "ReadOnlyAccess", True, "cli"),
        ("peggy", "AdministratorAccess", False, "console"),
    )
    people = []
    for i, (name, pset, iam, agent) in enumerate(spec):
        ips = (IPS["office"][i % 4], IPS["vpn"][i], IPS["home"][i])
        if agent != "console":  # the command-line people also work from the on-prem bastions
            ips += (IPS["onprem"][i % 3],)
        people.append(
            Person(
                name,
                f"{name}@example.com",
                pset,
                iam,
                agent,
                ips,
                _stable_uuid("sso-user", name),
            )
        )
    return tuple(people)


CAST = _cast()
_PEOPLE = {p.name: p for p in CAST}


@dataclass(slots=True, eq=False)
class Actor:
    """Who makes a call: what is needed to render userIdentity, source address and agent."""

    kind: str  # userIdentity.type
    account: str
    name: str  # userName, role session name or service principal
    arn: str = ""
    principal_id: str = ""
    ips: tuple[str, ...] = ()
    agent: str = "cli"  # cli | console | terraform | lambda | java | python | service
    ua: str = ""
    console: bool = False
    mfa: bool = False
    access_key: str = ""
    role_name: str = ""
    role_arn: str = ""
    role_id: str = ""
    invoked_by: str = ""
    ec2: bool = False
    web_identity: str = ""
    issuer: Actor | None = None
    user_id: str = ""
    store_arn: str = ""
    tls: tuple[str, str] = _TLS[0]
    session_offset: int = 0
    vpce: str = ""
    provider: str = ""  # SAML identity provider id
    session_start: int = 0  # epoch of sign-in for scripted sessions; 0 = hourly renewal
    ip_salt: int = 0  # which of `ips` is in use in a given hour
    _start: int = field(default=-1, init=False, repr=False)  # session cache, see _session
    _session: tuple[str, str] = field(default=("", ""), init=False, repr=False)


@dataclass(slots=True, eq=False)
class _Op:
    svc: str
    name: str
    read_only: bool
    build: Callable[[_Account, str, Actor, int], _Built]
    source: str
    action: str
    cli: str
    tf: str
    host: dict[str, str]
    is_global: bool
    version: str


@dataclass(slots=True, eq=False)
class _Account:
    id: str
    name: str
    buckets: dict[str, list[str]]
    instances: dict[str, list[str]]
    volumes: dict[str, list[str]]
    sgs: dict[str, list[str]]
    vpcs: dict[str, str]
    subnets: dict[str, list[str]]
    amis: dict[str, str]
    functions: dict[str, list[str]]
    keys: dict[str, list[str]]
    roles: list[tuple[str, str, str]]  # name, arn, id
    role_map: dict[str, tuple[str, str, str]]
    assumable: list[tuple[str, str, str]]  # what people and pipelines assume
    sso: dict[str, tuple[str, str, str]]
    users: list[Actor]  # IAM users of the cast (console sign-in candidates)
    root: Actor
    readers: list[Actor]
    writers: list[Actor]
    failers: list[Actor]
    assumers: list[Actor]


# --------------------------------------------------------------------------- factory


class CloudTrailFactory:
    """Builds CloudTrail records: at random for volume, or one by one for scripted stories."""

    def __init__(
        self,
        accounts: Iterable[str] | None = None,
        regions: Iterable[str] | None = None,
        seed: int = 0,
    ) -> None:
        self.accounts = list(accounts or DEFAULT_ACCOUNTS)
        self.regions = list(regions or DEFAULT_REGIONS)
        if not self.accounts or not self.regions:
            raise ValueError("need at least one account and one region")
        self.rng = random.Random(seed)
        self.global_region = "us-east-1" if "us-east-1" in self.regions else self.regions[0]
        self.org_account = self.accounts[0]
        self.store_arn = (
            f"arn:aws:identitystore::{self.org_account}:identitystore/"
            f"d-{_stable_hex(10, 'store', self.org_account)}"
        )
        self.trail_arn = (
            f"arn:aws:cloudtrail:{self.global_region}:{self.org_account}:trail/org-trail"
        )
        self.trail_bucket = f"org-trail-logs-{self.accounts[-1]}"
        self._ts_last = -1
        self._ts_str = ""
        self._created_cache: dict[int, str] = {}
        self._key_cache: dict[tuple[str, int], str] = {}
        self._reporters: dict[str, Actor] = {}
        self._uuids: list[str] = []
        self._name_qualifiers = {a: _stable_b32(28, "nq", a) for a in self.accounts}
        self._actor_cache: dict[tuple[str, ...], Actor] = {}
        self._cred_cache: dict[tuple[str, int], str] = {}
        self._person_salt = {p.name: _digest("ip", p.name) % 97 for p in CAST}
        self._person_ua = {p.name: self._cli_ua(p.name) for p in CAST}
        self._person_browser = {p.name: _BROWSERS[_digest(p.name) % len(_BROWSERS)] for p in CAST}
        pool = random.Random(seed ^ 0x5EED)
        self._amz_id2 = [base64.b64encode(pool.randbytes(57)).decode() for _ in range(64)]
        self._encoded = [
            base64.urlsafe_b64encode(pool.randbytes(300)).decode().rstrip("=") for _ in range(16)
        ]
        self.ops = self._define_ops()
        self._accts = {a: self._account(i, a) for i, a in enumerate(self.accounts)}
        self._acct_list = list(self._accts.values())
        self._read_table = self._table(_READS)
        self._write_table = self._table(_WRITES)
        # the first region carries half the traffic, the rest share the other half
        self._region_table = [self.regions[0]] * max(1, len(self.regions) - 1) + self.regions[1:]
        families = (
            (45, self._fam_read),
            (25, self._fam_sts),
            (15, self._fam_write),
            (5, self._fam_console),
            (5, self._fam_error),
            (5, self._fam_service),
        )
        self._families = [fn for weight, fn in families for _ in range(weight)]
        self._services = [
            self.aws_service(s)
            for s in (
                "cloudtrail.amazonaws.com",
                "lambda.amazonaws.com",
                "ec2.amazonaws.com",
                "ecs-tasks.amazonaws.com",
            )
        ]

    # ----------------------------------------------------------------- ops

    def _table(self, weights: tuple[tuple[str, int], ...]) -> list[_Op]:
        return [self.ops[key] for key, weight in weights for _ in range(weight)]

    def _define_ops(self) -> dict[str, _Op]:
        hosts = {
            "ec2": "ec2.{r}.amazonaws.com",
            "s3": "s3.{r}.amazonaws.com",
            "iam": "iam.amazonaws.com",
            "sts": "sts.{r}.amazonaws.com",
            "kms": "kms.{r}.amazonaws.com",
            "lambda": "lambda.{r}.amazonaws.com",
            "cloudtrail": "cloudtrail.{r}.amazonaws.com",
            "sso": "portal.sso.{r}.amazonaws.com",
        }
        none = self._p_none
        defs: list[tuple[str, str, bool, Callable[[_Account, str, Actor, int], _Built]]] = [
            ("ec2", "DescribeInstances", True, self._p_describe_instances),
            ("ec2", "DescribeInstanceStatus", True, self._p_describe_instance_status),
            ("ec2", "DescribeSecurityGroups", True, self._p_describe_security_groups),
            ("ec2", "DescribeVolumes", True, self._p_describe_volumes),
            ("ec2", "DescribeVpcs", True, self._p_describe_vpcs),
            ("ec2", "DescribeSubnets", True, self._p_describe_subnets),
            ("ec2", "DescribeRegions", True, self._p_describe_regions),
            ("ec2", "RunInstances", False, self._p_run_instances),
            ("ec2", "StopInstances", False, self._p_stop_instances),
            ("ec2", "StartInstances", False, self._p_start_instances),
            ("ec2", "TerminateInstances", False, self._p_terminate_instances),
            ("ec2", "CreateTags", False, self._p_create_tags),
            ("ec2", "AuthorizeSecurityGroupIngress", False, self._p_authorize_ingress),
            ("ec2", "CreateSnapshot", False, self._p_create_snapshot),
            ("s3", "ListBuckets", True, self._p_list_buckets),
            ("s3", "GetBucketPolicy", True, self._p_bucket("policy")),
            ("s3", "GetBucketAcl", True, self._p_bucket("acl")),
            ("s3", "GetBucketLocation", True, self._p_bucket("location")),
            ("s3", "GetBucketEncryption", True, self._p_bucket("encryption")),
            ("s3", "GetBucketVersioning", True, self._p_bucket("versioning")),
            ("s3", "GetBucketPublicAccessBlock", True, self._p_bucket("publicAccessBlock")),
            ("s3", "PutBucketPolicy", False, self._p_put_bucket_policy),
            ("s3", "PutBucketTagging", False, self._p_put_bucket_tagging),
            ("s3", "PutBucketPublicAccessBlock", False, self._p_put_public_access_block),
            ("s3", "CreateBucket", False, self._p_create_bucket),
            ("s3", "DeleteBucket", False, self._p_bucket(None)),
            ("iam", "ListUsers", True, none),
            ("iam", "GetUser", True, self._p_user_name),
            ("iam", "ListRoles", True, none),
            ("iam", "GetRole", True, self._p_role_name),
            ("iam", "ListAttachedRolePolicies", True, self._p_role_name),
            ("iam", "ListAccessKeys", True, self._p_user_name),
            ("iam", "GetAccountSummary", True, none),
            ("iam", "ListPolicies", True, self._p_list_policies),
            ("iam", "CreateUser", False, self._p_create_user),
            ("iam", "AttachUserPolicy", False, self._p_attach_user_policy),
            ("iam", "CreateAccessKey", False, self._p_create_access_key),
            ("iam", "DeleteAccessKey", False, self._p_delete_access_key),
            ("iam", "CreateRole", False, self._p_create_role),
            ("iam", "PutRolePolicy", False, self._p_put_role_policy),
            ("iam", "AttachRolePolicy", False, self._p_attach_role_policy),
            ("iam", "UpdateAssumeRolePolicy", False, self._p_update_assume_role_policy),
            ("sts", "GetCallerIdentity", True, none),
            ("sts", "AssumeRole", True, self._p_assume_role),
            ("sts", "AssumeRoleWithSAML", True, self._p_assume_role_saml),
            ("sts", "GetFederationToken", True, self._p_federation_token),
            ("sso", "GetRoleCredentials", True, self._p_role_credentials),
            ("sso", "ListAccounts", True, none),
            ("sso", "ListAccountRoles", True, self._p_list_account_roles),
            ("kms", "DescribeKey", True, self._p_describe_key),
            ("kms", "ListKeys", True, none),
            ("kms", "ListAliases", True, none),
            ("kms", "GenerateDataKey", True, self._p_generate_data_key),
            ("lambda", "ListFunctions20150331", True, none),
            ("lambda", "GetFunction20150331v2", True, self._p_function_name),
            ("lambda", "GetPolicy20150331v2", True, self._p_function_name),
            ("lambda", "UpdateFunctionConfiguration20150331v2", False, self._p_update_function),
            ("lambda", "UpdateFunctionCode20150331v2", False, self._p_update_code),
            ("cloudtrail", "DescribeTrails", True, self._p_describe_trails),
            ("cloudtrail", "GetTrailStatus", True, self._p_trail_name),
            ("cloudtrail", "LookupEvents", True, self._p_lookup_events),
            ("cloudtrail", "StopLogging", False, self._p_trail_name),
            ("cloudtrail", "StartLogging", False, self._p_trail_name),
            ("cloudtrail", "DeleteTrail", False, self._p_trail_name),
        ]
        ops = {}
        for svc, name, read_only, build in defs:
            cli_svc = "s3api" if svc == "s3" else svc
            action = re.sub(r"\d{8}(v\d)?$", "", name)
            ops[f"{svc}:{name}"] = _Op(
                svc=svc,
                name=name,
                read_only=read_only,
                build=build,
                source=f"{svc}.amazonaws.com",
                action=f"{svc}:{action}",
                cli=f"{cli_svc}.{_kebab(name)}",
                tf=_TF_API[svc],
                host={r: hosts[svc].format(r=r) for r in self.regions},
                is_global=svc == "iam",
                version="1.09" if svc in {"sts", "sso", "kms", "lambda"} else "1.08",
            )
        ops["sts:AssumeRole"].host = dict.fromkeys(self.regions, "sts.amazonaws.com")
        ops["s3:ListBuckets"].host = dict.fromkeys(self.regions, "s3.amazonaws.com")
        return ops

    # ----------------------------------------------------------------- accounts and actors

    def _account(self, index: int, acct: str) -> _Account:
        name = _ACCOUNT_NAMES.get(acct, f"acct{index + 1}")
        regions = self.regions
        h = _stable_hex
        buckets = {
            r: [f"{name}-{p}-{_short_region(r)}" for p in ("assets", "backups", "exports")]
            for r in regions
        }
        buckets[self.global_region].append(f"{name}-tf-state-{acct}")
        instances = {r: [f"i-0{h(16, acct, r, 'i', str(k))}" for k in range(6)] for r in regions}
        volumes = {r: [f"vol-0{h(16, acct, r, 'vol', str(k))}" for k in range(6)] for r in regions}
        sgs = {r: [f"sg-0{h(16, acct, r, 'sg', str(k))}" for k in range(4)] for r in regions}
        vpcs = {r: f"vpc-0{h(16, acct, r, 'vpc')}" for r in regions}
        subnets = {
            r: [f"subnet-0{h(16, acct, r, 'sn', str(k))}" for k in range(3)] for r in regions
        }
        amis = {r: f"ami-0{h(16, r, 'ami')}" for r in regions}
        functions = {
            r: [f"{name}-{fn}" for fn in ("cost-exporter", "image-resizer", "audit-forwarder")]
            for r in regions
        }
        keys = {r: [_stable_uuid(acct, r, "kms", str(k)) for k in range(2)] for r in regions}

        def role(role_name: str, path: str = "/") -> tuple[str, str, str]:
            return (
                role_name,
                f"arn:aws:iam::{acct}:role{path}{role_name}",
                "AROA" + _stable_b32(17, acct, "role", role_name),
            )

        sso = {
            pset: role(
                f"AWSReservedSSO_{pset}_{h(16, acct, 'sso', pset)}",
                "/aws-reserved/sso.amazonaws.com/",
            )
            for pset in (
                "AdministratorAccess",
                "PowerUserAccess",
                "ReadOnlyAccess",
                "SecurityAudit",
            )
        }
        roles = [
            role("OrganizationAccountAccessRole"),
            role("github-actions-deploy"),
            role("terraform-apply"),
            role("app-server-role"),
            role(f"{name}-cost-exporter-role"),
            role("security-audit"),
            role("Engineers-SAML"),
            role(f"{name}-deploy"),
            role("ecs-task-role"),
        ]
        by_name = {r[0]: r for r in roles}
        ec2_role = by_name["app-server-role"]
        lambda_role = by_name[f"{name}-cost-exporter-role"]
        ci_role = by_name["github-actions-deploy"]
        tf_role = by_name["terraform-apply"]
        config_role = role("AWSServiceRoleForConfig", "/aws-service-role/config.amazonaws.com/")

        def assumed(
            r: tuple[str, str, str], session: str, ips: tuple[str, ...], agent: str, **kw: Any
        ) -> Actor:
            return Actor(
                kind="AssumedRole",
                account=acct,
                name=session,
                arn=f"arn:aws:sts::{acct}:assumed-role/{r[0]}/{session}",
                principal_id=f"{r[2]}:{session}",
                ips=ips,
                agent=agent,
                role_name=r[0],
                role_arn=r[1],
                role_id=r[2],
                session_offset=_digest(acct, r[0], session) % 3600,
                tls=_TLS[_digest(session) % len(_TLS)],
                **kw,
            )

        people_sso = []
        for p in CAST:
            people_sso.append(self.person_sso(acct, p.name, _sso=sso))
        users = [self.iam_user(acct, p.name) for p in CAST if p.iam_user]
        root = self.root(acct)
        ec2_actors = [
            assumed(
                ec2_role,
                instances[r][k],
                (IPS["vpc"][(index * 3 + k) % 8],),
                "java",
                ec2=True,
                vpce=f"vpce-0{h(16, acct, r, 'vpce')}" if k % 2 else "",
            )
            for r in regions
            for k in range(2)
        ]
        lambda_actor = assumed(lambda_role, f"{name}-cost-exporter", (IPS["vpn"][12],), "lambda")
        ci = assumed(
            ci_role,
            "GitHubActions",
            (IPS["vpn"][13],),
            "terraform",
            web_identity=f"arn:aws:iam::{acct}:oidc-provider/token.actions.githubusercontent.com",
        )
        tf = assumed(tf_role, "tf-runner-01", (IPS["onprem"][3],), "terraform")
        config = assumed(
            config_role,
            "AWSConfig-Describe",
            ("config.amazonaws.com",),
            "service",
            invoked_by="config.amazonaws.com",
        )
        reporting = self.federated_user(acct, "reporting", issuer="svc-reporting")
        audit = assumed(by_name["security-audit"], "judy@example.com", _PEOPLE["judy"].ips, "cli")

        readers: list[Actor] = []
        for actor, weight in (
            *((a, 3) for a in people_sso),
            *((u, 3) for u in users),
            (ci, 8),
            (tf, 8),
            *((e, 3) for e in ec2_actors),
            (lambda_actor, 8),
            (config, 12),
            (audit, 2),
            (reporting, 2),
        ):
            readers.extend([actor] * weight)
        writers: list[Actor] = []
        for actor, weight in (
            *(
                (a, 2)
                for a, p in zip(people_sso, CAST, strict=True)
                if p.permission_set in {"AdministratorAccess", "PowerUserAccess"}
            ),
            *((u, 2) for u in users if u.name in {"carol", "grace", "ivan"}),
            (ci, 10),
            (tf, 10),
            (lambda_actor, 3),
        ):
            writers.extend([actor] * weight)
        failers = [
            *(
                a
                for a, p in zip(people_sso, CAST, strict=True)
                if p.permission_set == "ReadOnlyAccess"
            ),
            *(u for u in users if u.name in {"bob", "oscar"}),
            ci,
            lambda_actor,
            ec2_actors[0],
        ]
        assumers = [*users, *people_sso, ci, tf]
        return _Account(
            id=acct,
            name=name,
            buckets=buckets,
            instances=instances,
            volumes=volumes,
            sgs=sgs,
            vpcs=vpcs,
            subnets=subnets,
            amis=amis,
            functions=functions,
            keys=keys,
            roles=roles,
            role_map=by_name,
            assumable=[
                by_name[n]
                for n in (
                    "OrganizationAccountAccessRole",
                    "github-actions-deploy",
                    "terraform-apply",
                    "security-audit",
                    f"{name}-deploy",
                )
            ],
            sso=sso,
            users=users,
            root=root,
            readers=readers,
            writers=writers,
            failers=failers,
            assumers=assumers,
        )

    def person_sso(
        self,
        account: str,
        who: str,
        *,
        permission_set: str | None = None,
        ip: str | None = None,
        console: bool | None = None,
        _sso: dict[str, tuple[str, str, str]] | None = None,
    ) -> Actor:
        """An IAM Identity Center session (AWSReservedSSO_* role, session name = e-mail)."""
        name = who.split("@", 1)[0]
        person = _PEOPLE.get(name)
        pset = permission_set or (person.permission_set if person else "ReadOnlyAccess")
        if _sso is not None:
            role_name, role_arn, role_id = _sso[pset]
        else:
            role_name = f"AWSReservedSSO_{pset}_{_stable_hex(16, account, 'sso', pset)}"
            role_arn = f"arn:aws:iam::{account}:role/aws-reserved/sso.amazonaws.com/{role_name}"
            role_id = "AROA" + _stable_b32(17, account, "role", role_name)
        email = who if "@" in who else f"{name}@example.com"
        agent = person.agent if person else "cli"
        is_console = (agent == "console") if console is None else console
        return Actor(
            kind="AssumedRole",
            account=account,
            name=email,
            arn=f"arn:aws:sts::{account}:assumed-role/{role_name}/{email}",
            principal_id=f"{role_id}:{email}",
            ips=(ip,) if ip else (person.ips if person else (IPS["vpn"][0],)),
            agent="console" if is_console else ("cli" if agent == "console" else agent),
            ua=self._cli_ua(email),
            console=is_console,
            role_name=role_name,
            role_arn=role_arn,
            role_id=role_id,
            user_id=person.sso_user_id if person else _stable_uuid("sso-user", name),
            tls=_TLS[_digest(email) % len(_TLS)],
            session_offset=_digest(account, email) % 3600,
            ip_salt=_digest("ip", name) % 97,
        )

    def iam_user(
        self,
        account: str,
        name: str,
        *,
        ip: str | None = None,
        console: bool | None = None,
        mfa: bool = False,
    ) -> Actor:
        """An IAM user, calling with its access key or (console=True) from a console session."""
        person = _PEOPLE.get(name)
        agent = person.agent if person else "cli"
        is_console = (agent == "console") if console is None else console
        return Actor(
            kind="IAMUser",
            account=account,
            name=name,
            arn=f"arn:aws:iam::{account}:user/{name}",
            principal_id="AIDA" + _stable_b32(17, account, "user", name),
            ips=(ip,) if ip else (person.ips if person else (IPS["office"][5],)),
            agent="console" if is_console else ("cli" if agent == "console" else agent),
            ua=self._cli_ua(name),
            console=is_console,
            mfa=mfa,
            access_key="AKIA" + _stable_b32(16, account, "key", name),
            tls=_TLS[_digest(name) % len(_TLS)],
            session_offset=_digest(account, name) % 3600,
            ip_salt=_digest("ip", name) % 97,
        )

    def root(self, account: str, *, ip: str | None = None, mfa: bool = True) -> Actor:
        """The account's root user, always from the console."""
        return Actor(
            kind="Root",
            account=account,
            name="root",
            arn=f"arn:aws:iam::{account}:root",
            principal_id=account,
            ips=(ip,) if ip else (IPS["office"][0],),
            agent="console",
            console=True,
            mfa=mfa,
            session_offset=_digest(account, "root") % 3600,
        )

    def federated_user(
        self, account: str, name: str, *, issuer: str = "svc-reporting", ip: str | None = None
    ) -> Actor:
        """A GetFederationToken session issued by an IAM user (a legacy reporting tool)."""
        parent = self.iam_user(account, issuer, console=False)
        return Actor(
            kind="FederatedUser",
            account=account,
            name=name,
            arn=f"arn:aws:sts::{account}:federated-user/{name}",
            principal_id=f"{account}:{name}",
            ips=(ip,) if ip else (IPS["office"][6],),
            agent="python",
            issuer=parent,
            session_offset=_digest(account, "fed", name) % 3600,
        )

    def aws_service(self, invoked_by: str) -> Actor:
        """An AWS service acting on its own (userIdentity type AWSService)."""
        return Actor(
            kind="AWSService",
            account="",
            name=invoked_by,
            ips=(invoked_by,),
            agent="service",
            invoked_by=invoked_by,
        )

    def _browser(self, who: str) -> str:
        name = who.split("@", 1)[0]
        ua = self._person_browser.get(name)
        if ua is None:
            ua = self._person_browser[name] = _BROWSERS[_digest(name) % len(_BROWSERS)]
        return ua

    def _cli_ua(self, who: str) -> str:
        d = _digest("ua", who)
        if d % 2:
            os_name, distro = _OLD_CLI_OS[d % len(_OLD_CLI_OS)]
            return _OLD_CLI_UA.format(v=f"{9 + d % 4}.{d % 23}", os=os_name, distro=distro)
        return _CLI_UA.format(v=10 + d % 25, os=_CLI_OS[d % len(_CLI_OS)])

    # ----------------------------------------------------------------- small pieces

    def _uuid(self) -> str:
        """A version-4 UUID from the seeded rng (made 256 at a time: this is the hot path)."""
        buf = self._uuids
        if not buf:
            h = self.rng.randbytes(16 * 256).hex()
            v = _VARIANT
            buf.extend(
                f"{h[i : i + 8]}-{h[i + 8 : i + 12]}-4{h[i + 13 : i + 16]}-"
                f"{v[h[i + 16]]}{h[i + 17 : i + 20]}-{h[i + 20 : i + 32]}"
                for i in range(len(h) - 32, -1, -32)
            )
        return buf.pop()

    def _ts(self, t: int) -> str:
        if t != self._ts_last:
            self._ts_last = t
            self._ts_str = _iso(t)
        return self._ts_str

    def _session(self, a: Actor, t: int) -> tuple[str, str]:
        """(creationDate, temporary ASIA key) of the session a principal uses at t.

        Scripted actors keep the session of their sign-in; the others renew hourly at a
        per-principal minute. The last session sits on the actor (records come in time
        order), the shared caches keep one key per principal and session across actors.
        """
        start = a.session_start or t - (t + a.session_offset) % 3600
        if start == a._start:
            return a._session
        created = self._created_cache.get(start)
        if created is None:
            if len(self._created_cache) > 100_000:
                self._created_cache.clear()
            created = self._created_cache[start] = _iso(start)
        slot = (a.principal_id, start)
        key = self._key_cache.get(slot)
        if key is None:
            if len(self._key_cache) > 100_000:
                self._key_cache.clear()
            key = self._key_cache[slot] = self._temp_key()
        a._start, a._session = start, (created, key)
        return a._session

    def _temp_key(self, prefix: str = "ASIA") -> str:
        return prefix + f"{self.rng.getrandbits(64):016X}".translate(_KEY_CHARS)

    def _pick(self, seq: list[Any] | tuple[Any, ...]) -> Any:
        return seq[int(self.rng.random() * len(seq))]

    def _ui(self, a: Actor, t: int, *, sign_in: bool = False) -> Json:
        """userIdentity exactly as CloudTrail renders each type."""
        kind = a.kind
        if kind == "AssumedRole":
            created, key = self._session(a, t)
            ctx: Json = {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": a.role_id,
                    "arn": a.role_arn,
                    "accountId": a.account,
                    "userName": a.role_name,
                },
                "webIdFederationData": (
                    {"federatedProvider": a.web_identity, "attributes": {}}
                    if a.web_identity
                    else {}
                ),
                "attributes": {
                    "creationDate": created,
                    "mfaAuthenticated": "true" if a.mfa else "false",
                },
            }
            if a.ec2:
                ctx["ec2RoleDelivery"] = "2.0"
            ui: Json = {
                "type": "AssumedRole",
                "principalId": a.principal_id,
                "arn": a.arn,
                "accountId": a.account,
                "accessKeyId": key,
                "sessionContext": ctx,
            }
            if a.invoked_by:
                ui["invokedBy"] = a.invoked_by
            return ui
        if kind == "IAMUser":
            ui = {
                "type": "IAMUser",
                "principalId": a.principal_id,
                "arn": a.arn,
                "accountId": a.account,
                "accessKeyId": "",
                "userName": a.name,
            }
            if sign_in:
                return ui
            if a.console:
                created, ui["accessKeyId"] = self._session(a, t)
                ui["sessionContext"] = {
                    "sessionIssuer": {},
                    "webIdFederationData": {},
                    "attributes": {
                        "creationDate": created,
                        "mfaAuthenticated": "true" if a.mfa else "false",
                    },
                }
            else:
                ui["accessKeyId"] = a.access_key
            return ui
        if kind == "AWSService":
            return {"type": "AWSService", "invokedBy": a.invoked_by}
        if kind == "Root":
            ui = {
                "type": "Root",
                "principalId": a.account,
                "arn": a.arn,
                "accountId": a.account,
                "accessKeyId": "",
            }
            if sign_in:
                return ui
            created, ui["accessKeyId"] = self._session(a, t)
            ui["sessionContext"] = {
                "sessionIssuer": {},
                "webIdFederationData": {},
                "attributes": {
                    "creationDate": created,
                    "mfaAuthenticated": "true" if a.mfa else "false",
                },
            }
            return ui
        if kind == "FederatedUser":
            issuer = a.issuer
            assert issuer is not None
            created, key = self._session(a, t)
            return {
                "type": "FederatedUser",
                "principalId": a.principal_id,
                "arn": a.arn,
                "accountId": a.account,
                "accessKeyId": key,
                "sessionContext": {
                    "sessionIssuer": {
                        "type": "IAMUser",
                        "principalId": issuer.principal_id,
                        "arn": issuer.arn,
                        "accountId": issuer.account,
                        "userName": issuer.name,
                    },
                    "webIdFederationData": {},
                    "attributes": {
                        "creationDate": created,
                        "mfaAuthenticated": "false",
                    },
                },
            }
        if kind == "AWSAccount":
            return {"type": "AWSAccount", "principalId": a.principal_id, "accountId": a.account}
        if kind == "SAMLUser":
            return {
                "type": "SAMLUser",
                "principalId": a.principal_id,
                "userName": a.name,
                "identityProvider": a.provider,
            }
        raise ValueError(f"no userIdentity renderer for {kind}")

    def _agent(self, a: Actor, op: _Op) -> str:
        agent = a.agent
        if agent == "cli":
            return a.ua + op.cli
        if agent == "console":
            return _S3_CONSOLE_UA if op.svc == "s3" else _CONSOLE_UA
        if agent == "terraform":
            return _TF_UA + op.tf
        if agent == "lambda":
            return _BOTO_LAMBDA_UA
        if agent == "java":
            return _JAVA_UA
        if agent == "python":
            return _PYTHON_UA
        return a.ua or a.invoked_by or a.name

    def _s3_extra(self, out: int) -> Json:
        return {
            "SignatureVersion": "SigV4",
            "CipherSuite": "TLS_AES_128_GCM_SHA256",
            "bytesTransferredIn": 0,
            "AuthenticationMethod": "AuthHeader",
            "x-amz-id-2": self._pick(self._amz_id2),
            "bytesTransferredOut": out,
        }

    # ----------------------------------------------------------------- record assembly

    def api_call(
        self,
        actor: Actor,
        op: str,
        when: datetime | float,
        *,
        account: str | None = None,
        region: str | None = None,
        request: Any = ...,
        response: Any = ...,
        additional: Any = ...,
        resources: Any = ...,
        error: tuple[str, str] | None = None,
        event_type: str = "AwsApiCall",
    ) -> Json:
        """One API call record; `...` leaves a part to the realistic default for `op`."""
        spec = self.ops[op]
        t = _epoch(when)
        acct = self._accts.get(account or actor.account) or self._acct_list[0]
        reg = self.global_region if spec.is_global else (region or self.global_region)
        built = spec.build(acct, reg, actor, t)
        return self._assemble(
            actor,
            spec,
            t,
            account or actor.account or acct.id,
            reg,
            built[0] if request is ... else request,
            built[1] if response is ... else response,
            built[2] if additional is ... else additional,
            built[3] if resources is ... else resources,
            error,
            event_type,
        )

    def _call(self, actor: Actor, op: _Op, t: int, acct: _Account, region: str) -> Json:
        if op.is_global:
            region = self.global_region
        req, resp, extra, res = op.build(acct, region, actor, t)
        return self._assemble(actor, op, t, acct.id, region, req, resp, extra, res, None)

    def _assemble(
        self,
        a: Actor,
        op: _Op,
        t: int,
        recipient: str,
        region: str,
        req: Any,
        resp: Any,
        extra: Any,
        res: Any,
        error: tuple[str, str] | None,
        event_type: str = "AwsApiCall",
    ) -> Json:
        ips = a.ips
        r: Json = {
            "eventVersion": op.version,
            "userIdentity": self._ui(a, t),
            "eventTime": self._ts(t),
            "eventSource": op.source,
            "eventName": op.name,
            "awsRegion": region,
            "sourceIPAddress": ips[0] if len(ips) == 1 else ips[(t // 3600 + a.ip_salt) % len(ips)],
            "userAgent": self._agent(a, op),
        }
        if error is not None:
            r["errorCode"], r["errorMessage"] = error
            resp = None
        r["requestParameters"] = req
        r["responseElements"] = resp
        if extra is not None:
            r["additionalEventData"] = extra
        if op.svc == "s3":
            r["requestID"] = f"{self.rng.getrandbits(64):016X}"
        else:
            r["requestID"] = self._uuid()
        r["eventID"] = self._uuid()
        r["readOnly"] = op.read_only
        if res:
            r["resources"] = res
        r["eventType"] = event_type
        r["managementEvent"] = True
        r["recipientAccountId"] = recipient
        if a.vpce and op.svc in {"s3", "sts", "kms", "ec2"}:
            r["vpcEndpointId"] = a.vpce
            r["vpcEndpointAccountId"] = recipient
        r["eventCategory"] = "Management"
        if not a.invoked_by:
            host = op.host.get(region) or op.host[self.regions[0]]
            if op.svc == "s3" and req and "Host" in req:
                host = req["Host"]
            r["tlsDetails"] = {
                "tlsVersion": a.tls[0],
                "cipherSuite": a.tls[1],
                "clientProvidedHostHeader": host,
            }
        if a.console:
            r["sessionCredentialFromConsole"] = "true"
        return r

    def console_login(
        self,
        actor: Actor,
        when: datetime | float,
        *,
        success: bool = True,
        mfa: bool | None = None,
        region: str | None = None,
        error_message: str = "Failed authentication",
        user_agent: str | None = None,
    ) -> Json:
        """A ConsoleLogin sign-in record (signin.amazonaws.com, eventType AwsConsoleSignIn)."""
        t = _epoch(when)
        used_mfa = actor.mfa if mfa is None else mfa
        ui = self._ui(actor, t, sign_in=True)
        region = region or self.global_region
        ips = actor.ips
        r: Json = {
            "eventVersion": "1.09",
            "userIdentity": ui,
            "eventTime": self._ts(t),
            "eventSource": "signin.amazonaws.com",
            "eventName": "ConsoleLogin",
            "awsRegion": region,
            "sourceIPAddress": ips[(t // 3600 + actor.ip_salt) % len(ips)],
            "userAgent": user_agent or self._browser(actor.name),
        }
        if not success:
            r["errorMessage"] = error_message
        r["requestParameters"] = None
        r["responseElements"] = {"ConsoleLogin": "Success" if success else "Failure"}
        extra: Json = {
            "LoginTo": (
                f"https://{region}.console.aws.amazon.com/console/home?hashArgs=%23&"
                f"isauthcode=true&region={region}&state=hashArgsFromTB_{region}_"
                f"{self.rng.getrandbits(64):016x}"
            ),
            "MobileVersion": "No",
        }
        if used_mfa and success and actor.kind in {"Root", "IAMUser"}:
            device = "root-account-mfa-device" if actor.kind == "Root" else actor.name
            extra["MFAIdentifier"] = f"arn:aws:iam::{actor.account}:mfa/{device}"
        extra["MFAUsed"] = "Yes" if used_mfa else "No"
        r["additionalEventData"] = extra
        r["eventID"] = self._uuid()
        r["readOnly"] = False
        r["eventType"] = "AwsConsoleSignIn"
        r["managementEvent"] = True
        r["recipientAccountId"] = actor.account
        r["eventCategory"] = "Management"
        r["tlsDetails"] = {
            "tlsVersion": "TLSv1.3",
            "cipherSuite": "TLS_AES_128_GCM_SHA256",
            "clientProvidedHostHeader": "signin.aws.amazon.com",
        }
        return r

    def _credential_id(self, name: str, t: int) -> str:
        """Identity Center bearer-token id: one per person per 8-hour portal session."""
        slot = (name, t // 28800)
        value = self._cred_cache.get(slot)
        if value is None:
            if len(self._cred_cache) > 100_000:
                self._cred_cache.clear()
            value = self._cred_cache[slot] = _stable_b32(32, "cred", *map(str, slot))
        return value

    def sso_portal(
        self,
        who: str,
        when: datetime | float,
        *,
        account: str,
        op: str = "sso:GetRoleCredentials",
        legacy: bool = False,
        ip: str | None = None,
    ) -> Json:
        """An Identity Center portal call by a cast member (ListAccounts, GetRoleCredentials)."""
        person = _PEOPLE[who.split("@", 1)[0]]
        record = self._sso_portal(person, _epoch(when), op, account, legacy)
        if ip:
            record["sourceIPAddress"] = ip
        return record

    def assume_role(
        self,
        actor: Actor,
        role_name: str,
        session: str,
        when: datetime | float,
        *,
        account: str,
        region: str | None = None,
        duration: int | None = 3600,
    ) -> Json:
        """An sts:AssumeRole of `role_name` in `account` (also by AWS services)."""
        t = _epoch(when)
        acct = self._accts[account]
        role = acct.role_map.get(role_name) or (
            role_name,
            f"arn:aws:iam::{account}:role/{role_name}",
            "AROA" + _stable_b32(17, account, "role", role_name),
        )
        req, resp, _, res = self._assume(acct, role, session, t, duration)
        op = self.ops["sts:AssumeRole"]
        return self._assemble(
            actor, op, t, account, region or self.global_region, req, resp, None, res, None
        )

    def _sso_portal(self, who: Person, t: int, op_key: str, account: str, legacy: bool) -> Json:
        """Identity Center portal calls: IdentityCenterUser (new) or Unknown (older form)."""
        op = self.ops[op_key]
        org = self.org_account
        if legacy:
            ui: Json = {
                "type": "Unknown",
                "principalId": who.sso_user_id,
                "accountId": org,
                "userName": who.email,
            }
        else:
            ui = {
                "type": "IdentityCenterUser",
                "accountId": org,
                "onBehalfOf": {"userId": who.sso_user_id, "identityStoreArn": self.store_arn},
                "credentialId": self._credential_id(who.name, t),
            }
        region = self.global_region
        req: Any = None
        if op_key == "sso:GetRoleCredentials":
            req = {"roleName": who.permission_set, "accountId": account}
        elif op_key == "sso:ListAccountRoles":
            req = {"accountId": account}
        return {
            "eventVersion": "1.08" if legacy else "1.09",
            "userIdentity": ui,
            "eventTime": self._ts(t),
            "eventSource": "sso.amazonaws.com",
            "eventName": op.name,
            "awsRegion": region,
            "sourceIPAddress": who.ips[(t // 3600 + self._person_salt[who.name]) % len(who.ips)],
            "userAgent": self._person_browser[who.name]
            if who.agent == "console"
            else self._person_ua[who.name] + op.cli,
            "requestParameters": req,
            "responseElements": None,
            "requestID": self._uuid(),
            "eventID": self._uuid(),
            "readOnly": True,
            "eventType": "AwsApiCall",
            "managementEvent": True,
            "recipientAccountId": org,
            "eventCategory": "Management",
            "tlsDetails": {
                "tlsVersion": "TLSv1.3",
                "cipherSuite": "TLS_AES_128_GCM_SHA256",
                "clientProvidedHostHeader": op.host[region],
            },
        }

    # ----------------------------------------------------------------- random stream

    def stream(self, n: int, *, start: datetime, span: timedelta) -> Iterator[Json]:
        """n random records spread over [start, start+span), in roughly increasing time."""
        t0 = _epoch(start)
        step = span.total_seconds() / max(n, 1)
        last = t0 + max(int(span.total_seconds()) - 1, 0)
        rnd = self.rng.random
        fams = self._families
        nf = len(fams)
        for i in range(n):
            # a few records land up to 2 s before their neighbours, as in real files
            t = t0 + int((i + rnd()) * step) - (int(rnd() * 3) if i % 7 == 3 else 0)
            t = t0 if t < t0 else (last if t > last else t)
            yield fams[int(rnd() * nf)](t)

    def _acct(self) -> _Account:
        return self._acct_list[int(self.rng.random() * len(self._acct_list))]

    def _region(self) -> str:
        return self._region_table[int(self.rng.random() * len(self._region_table))]

    def _fam_read(self, t: int) -> Json:
        rnd = self.rng.random
        acct = self._acct()
        if rnd() < 0.006:
            return self._call(acct.root, self._pick(self._read_table), t, acct, self._region())
        if rnd() < 0.025:
            p = self._pick(CAST)
            op = "sso:ListAccounts" if rnd() < 0.5 else "sso:ListAccountRoles"
            return self._sso_portal(p, t, op, acct.id, legacy=False)
        actor = acct.readers[int(rnd() * len(acct.readers))]
        op = self._read_table[int(rnd() * len(self._read_table))]
        return self._call(actor, op, t, acct, self._region())

    def _fam_write(self, t: int) -> Json:
        rnd = self.rng.random
        acct = self._acct()
        op = self._write_table[int(rnd() * len(self._write_table))]
        actor = acct.root if rnd() < 0.01 else acct.writers[int(rnd() * len(acct.writers))]
        return self._call(actor, op, t, acct, self._region())

    def _fam_sts(self, t: int) -> Json:
        rnd = self.rng.random
        acct = self._acct()
        x = rnd()
        if x < 0.50:  # people and pipelines assuming roles (chaining from SSO, from IAM users)
            actor = self._pick(acct.assumers)
            return self._call(actor, self.ops["sts:AssumeRole"], t, acct, self.global_region)
        if x < 0.60:  # cross-account: the target account sees the caller as AWSAccount
            return self._cross_account(acct, t)
        if x < 0.75:  # SAML federation from the corporate IdP
            return self._saml(acct, t)
        if x < 0.95:  # Identity Center portal hands out role credentials
            p = self._pick(CAST)
            return self._sso_portal(p, t, "sso:GetRoleCredentials", acct.id, legacy=rnd() < 0.4)
        actor = self._reporters.get(acct.id)
        if actor is None:
            actor = self.iam_user(acct.id, "svc-reporting", ip=IPS["office"][6], console=False)
            actor.agent = "python"
            self._reporters[acct.id] = actor
        return self._call(actor, self.ops["sts:GetFederationToken"], t, acct, self.global_region)

    def _cross_account(self, acct: _Account, t: int) -> Json:
        others = [a for a in self._acct_list if a is not acct] or [acct]
        src = self._pick(others)
        caller = self._actor_cache.get(("xacct", src.id))
        if caller is None:
            caller = self._actor_cache["xacct", src.id] = self._cross_caller(src)
        op = self.ops["sts:AssumeRole"]
        target = acct.role_map["security-audit"]
        req, resp, _, res = self._assume(acct, target, "judy@example.com", t, 3600)
        r = self._assemble(caller, op, t, acct.id, self.global_region, req, resp, None, res, None)
        r["sharedEventID"] = self._uuid()  # the caller's account logs the same call
        return r

    def _cross_caller(self, src: _Account) -> Actor:
        audit_role = src.role_map["security-audit"]
        return Actor(
            kind="AWSAccount",
            account=src.id,
            name="judy@example.com",
            principal_id=f"{audit_role[2]}:judy@example.com",
            ips=_PEOPLE["judy"].ips,
            agent="cli",
            ua=self._cli_ua("judy"),
            tls=_TLS[0],
        )

    def _saml(self, acct: _Account, t: int) -> Json:
        p = self._pick(CAST)
        actor = self._actor_cache.get(("saml", acct.id, p.name))
        if actor is None:
            actor = self._actor_cache["saml", acct.id, p.name] = self._saml_actor(acct, p)
        return self._call(actor, self.ops["sts:AssumeRoleWithSAML"], t, acct, self.global_region)

    def _saml_actor(self, acct: _Account, p: Person) -> Actor:
        idp = base64.b64encode(_stable_hex(20, "idp", acct.id).encode()).decode()[:28]
        return Actor(
            kind="SAMLUser",
            account=acct.id,
            name=p.email,
            principal_id=f"{idp}:{p.email}",
            ips=p.ips,
            agent="browser",
            ua=_BROWSERS[_digest(p.name) % len(_BROWSERS)],
            provider=idp,
        )

    def _fam_console(self, t: int) -> Json:
        rnd = self.rng.random
        acct = self._acct()
        x = rnd()
        if x < 0.08:
            return self.console_login(acct.root, t, success=rnd() > 0.1, mfa=True)
        if x < 0.18:  # Identity Center console federation shows up as an AssumedRole sign-in
            p = self._pick(CAST)
            actor = self._actor_cache.get(("sso-console", acct.id, p.name))
            if actor is None:
                actor = self.person_sso(acct.id, p.name, console=True, _sso=acct.sso)
                self._actor_cache["sso-console", acct.id, p.name] = actor
            return self.console_login(actor, t, mfa=False)
        user = self._pick(acct.users)
        ok = rnd() > 0.1
        if not ok and rnd() < 0.3:  # a mistyped user name: CloudTrail hides it
            r = self.console_login(user, t, success=False, mfa=False)
            r["userIdentity"] = {
                "type": "IAMUser",
                "principalId": "",
                "accountId": acct.id,
                "accessKeyId": "",
                "userName": "HIDDEN_DUE_TO_SECURITY_REASONS",
            }
            r["errorMessage"] = "No username found in supplied account"
            return r
        return self.console_login(user, t, success=ok, mfa=rnd() < 0.85)

    def _fam_error(self, t: int) -> Json:
        acct = self._acct()
        actor = self._pick(acct.failers)
        key, code = self._pick(_ERRORS)
        op = self.ops[key]
        region = self.global_region if op.is_global else self._region()
        req, _, extra, res = op.build(acct, region, actor, t)
        resource = _resource_of(acct.id, region, req)
        arn = actor.arn
        if code in {"AccessDenied", "AccessDeniedException"} and op.svc != "s3":
            msg = (
                f"User: {arn} is not authorized to perform: {op.action} on resource: {resource} "
                f"because no identity-based policy allows the {op.action} action"
            )
        elif code == "AccessDenied":
            msg = "Access Denied"
        elif code == "Client.UnauthorizedOperation":
            msg = (
                f"You are not authorized to perform this operation. User: {arn} is not "
                f"authorized to perform: {op.action} on resource: {resource} because no "
                f"identity-based policy allows the {op.action} action."
            )
            if not op.read_only:
                msg += " Encoded authorization failure message: " + self._pick(self._encoded)
        else:
            msg = _ERROR_MESSAGES[code].format(res=resource, name=resource.rsplit("/", 1)[-1])
        return self._assemble(actor, op, t, acct.id, region, req, None, extra, res, (code, msg))

    def _fam_service(self, t: int) -> Json:
        rnd = self.rng.random
        acct = self._acct()
        x = rnd()
        if x < 0.4:  # CloudTrail asking KMS for a data key to encrypt the next log file
            actor = self._services[0]
            return self._call(actor, self.ops["kms:GenerateDataKey"], t, acct, self._region())
        actor = self._services[1 + int(rnd() * 3)]
        svc = actor.invoked_by
        region = self._region()
        if svc == "lambda.amazonaws.com":
            target = acct.role_map[f"{acct.name}-cost-exporter-role"]
            session = f"{acct.name}-cost-exporter"
        elif svc == "ec2.amazonaws.com":
            target = acct.role_map["app-server-role"]
            session = self._pick(acct.instances[region])
        else:
            target = acct.role_map["ecs-task-role"]
            session = f"{self.rng.getrandbits(128):032x}"
        req, resp, _, res = self._assume(acct, target, session, t, None)
        op = self.ops["sts:AssumeRole"]
        return self._assemble(actor, op, t, acct.id, region, req, resp, None, res, None)

    # ----------------------------------------------------------------- request builders

    def _p_none(self, acct: _Account, region: str, a: Actor, t: int) -> _Built:
        return None, None, None, None

    def _filter(self, name: str, value: str) -> Json:
        return {"items": [{"name": name, "valueSet": {"items": [{"value": value}]}}]}

    def _p_describe_instances(self, acct: _Account, region: str, a: Actor, t: int) -> _Built:
        if self.rng.random() < 0.5:
            req = {
                "instancesSet": {"items": [{"instanceId": self._pick(acct.instances[region])}]},
                "filterSet": {},
            }
        else:
            req = {
                "maxResults": 1000,
                "instancesSet": {},
                "filterSet": self._filter("instance-state-name", "running"),
            }
        return req, None, None, None

    def _p_describe_instance_status(self, acct: _Account, region: str, a: Actor, t: int) -> _Built:
        req = {"instancesSet": {}, "filterSet": {}, "includeAllInstances": True}
        return req, None, None, None

    def _p_describe_security_groups(self, acct: _Account, region: str, a: Actor, t: int) -> _Built:
        req = {
            "securityGroupSet": {},
            "securityGroupIdSet": {"items": [{"groupId": self._pick(acct.sgs[region])}]},
            "filterSet": {},
        }
        return req, None, None, None

    def _p_describe_volumes(self, acct: _Account, region: str, a: Actor, t: int) -> _Built:
        inst = self._pick(acct.instances[region])
        req = {"volumeSet": {}, "filterSet": self._filter("attachment.instance-id", inst)}
        return req, None, None, None

    def _p_describe_vpcs(self, acct: _Account, region: str, a: Actor, t: int) -> _Built:
        return (
            {"vpcSet": {"items": [{"vpcId": acct.vpcs[region]}]}, "filterSet": {}},
            None,
            None,
            None,
        )

    def _p_describe_subnets(self, acct: _Account, region: str, a: Actor, t: int) -> _Built:
        req = {"subnetSet": {}, "filterSet": self._filter("vpc-id", acct.vpcs[region])}
        return req, None, None, None

    def _p_describe_regions(self, acct: _Account, region: str, a: Actor, t: int) -> _Built:
        return {"regionSet": {}, "allRegions": False}, None, None, None

    def _state_change(
        self, acct: _Account, region: str, current: tuple[int, str], previous: tuple[int, str]
    ) -> _Built:
        inst = self._pick(acct.instances[region])
        req: Json = {"instancesSet": {"items": [{"instanceId": inst}]}}
        if current[1] == "stopping":
            req["force"] = False
        resp = {
            "requestId": self._uuid(),
            "instancesSet": {
                "items": [
                    {
                        "instanceId": inst,
                        "currentState": {"code": current[0], "name": current[1]},
                        "previousState": {"code": previous[0], "name": previous[1]},
                    }
                ]
            },
        }
        return req, resp, None, None

    def _p_stop_instances(self, acct: _Account, region: str, a: Actor, t: int) -> _Built:
        return self._state_change(acct, region, (64, "stopping"), (16, "running"))

    def _p_start_instances(self, acct: _Account, region: str, a: Actor, t: int) -> _Built:
        return self._state_change(acct, region, (0, "pending"), (80, "stopped"))

    def _p_terminate_instances(self, acct: _Account, region: str, a: Actor, t: int) -> _Built:
        return self._state_change(acct, region, (32, "shutting-down"), (16, "running"))

    def _p_run_instances(self, acct: _Account, region: str, a: Actor, t: int) -> _Built:
        rng = self.rng
        inst = f"i-0{rng.getrandbits(64):016x}"
        subnet = self._pick(acct.subnets[region])
        sg = self._pick(acct.sgs[region])
        itype = self._pick(("t3.micro", "t3.large", "m6i.xlarge", "c7g.2xlarge"))
        ip = f"10.0.{rng.randrange(0, 64)}.{rng.randrange(4, 254)}"
        eni = f"eni-0{rng.getrandbits(64):016x}"
        az = f"{region}{self._pick('abc')}"
        req = {
            "instancesSet": {
                "items": [{"imageId": acct.amis[region], "minCount": 1, "maxCount": 1}]
            },
            "instanceType": itype,
            "blockDeviceMapping": {},
            "monitoring": {"enabled": False},
            "subnetId": subnet,
            "disableApiTermination": False,
            "disableApiStop": False,
            "clientToken": self._uuid(),
            "networkInterfaceSet": {
                "items": [{"deviceIndex": 0, "groupSet": {"items": [{"groupId": sg}]}}]
            },
            "iamInstanceProfile": {"name": "app-server-role"},
            "tagSpecificationSet": {
                "items": [
                    {
                        "resourceType": "instance",
                        "tags": [{"key": "Name", "value": f"{acct.name}-app"}],
                    }
                ]
            },
            "metadataOptions": {"httpTokens": "required", "httpPutResponseHopLimit": 2},
        }
        item = {
            "instanceId": inst,
            "imageId": acct.amis[region],
            "currentInstanceBootMode": "legacy-bios",
            "instanceState": {"code": 0, "name": "pending"},
            "privateDnsName": f"ip-{ip.replace('.', '-')}.{region}.compute.internal",
            "amiLaunchIndex": 0,
            "productCodes": {},
            "instanceType": itype,
            "launchTime": t * 1000,
            "placement": {"availabilityZone": az, "tenancy": "default"},
            "monitoring": {"state": "disabled"},
            "subnetId": subnet,
            "vpcId": acct.vpcs[region],
            "privateIpAddress": ip,
            "stateReason": {"code": "pending", "message": "pending"},
            "architecture": "x86_64",
            "rootDeviceType": "ebs",
            "rootDeviceName": "/dev/xvda",
            "blockDeviceMapping": {},
            "virtualizationType": "hvm",
            "hypervisor": "xen",
            "tagSet": {"items": [{"key": "Name", "value": f"{acct.name}-app"}]},
            "groupSet": {"items": [{"groupId": sg, "groupName": f"{acct.name}-app"}]},
            "sourceDestCheck": True,
            "networkInterfaceSet": {
                "items": [
                    {
                        "networkInterfaceId": eni,
                        "subnetId": subnet,
                        "vpcId": acct.vpcs[region],
                        "ownerId": acct.id,
                        "status": "in-use",
                        "privateIpAddress": ip,
                        "sourceDestCheck": True,
                        "interfaceType": "interface",
                        "groupSet": {"items": [{"groupId": sg, "groupName": f"{acct.name}-app"}]},
                        "attachment": {
                            "attachmentId": f"eni-attach-0{rng.getrandbits(64):016x}",
                            "deviceIndex": 0,
                            "networkCardIndex": 0,
                            "status": "attaching",
                            "attachTime": t * 1000,
                            "deleteOnTermination": True,
                        },
                    }
                ]
            },
            "ebsOptimized": False,
            "enaSupport": True,
            "cpuOptions": {"coreCount": 1, "threadsPerCore": 2},
            "capacityReservationSpecification": {"capacityReservationPreference": "open"},
            "enclaveOptions": {"enabled": False},
            "metadataOptions": {
                "state": "pending",
                "httpTokens": "required",
                "httpPutResponseHopLimit": 2,
                "httpEndpoint": "enabled",
            },
            "maintenanceOptions": {"autoRecovery": "default"},
        }
        resp = {
            "requestId": self._uuid(),
            "reservationId": f"r-0{rng.getrandbits(64):016x}",
            "ownerId": acct.id,
            "groupSet": {},
            "instancesSet": {"items": [item]},
        }
        return req, resp, None, None

    def _p_create_tags(self, acct: _Account, region: str, a: Actor, t: int) -> _Built:
        req = {
            "resourcesSet": {"items": [{"resourceId": self._pick(acct.instances[region])}]},
            "tagSet": {
                "items": [
                    {"key": "Owner", "value": a.name.split("@", 1)[0]},
                    {"key": "CostCenter", "value": "cc-4711"},
                ]
            },
        }
        return req, {"requestId": self._uuid(), "_return": True}, None, None

    def _p_authorize_ingress(self, acct: _Account, region: str, a: Actor, t: int) -> _Built:
        sg = self._pick(acct.sgs[region])
        port = self._pick((22, 443, 3389, 5432))
        cidr = self._pick(("0.0.0.0/0", "192.0.2.0/24", "10.20.0.0/16"))
        req = {
            "groupId": sg,
            "ipPermissions": {
                "items": [
                    {
                        "ipProtocol": "tcp",
                        "fromPort": port,
                        "toPort": port,
                        "groups": {},
                        "ipRanges": {"items": [{"cidrIp": cidr}]},
                        "ipv6Ranges": {},
                        "prefixListIds": {},
                    }
                ]
            },
        }
        resp = {
            "requestId": self._uuid(),
            "_return": True,
            "securityGroupRuleSet": {
                "items": [
                    {
                        "groupOwnerId": acct.id,
                        "groupId": sg,
                        "securityGroupRuleId": f"sgr-0{self.rng.getrandbits(64):016x}",
                        "isEgress": False,
                        "ipProtocol": "tcp",
                        "fromPort": port,
                        "toPort": port,
                        "cidrIpv4": cidr,
                    }
                ]
            },
        }
        return req, resp, None, None

    def _p_create_snapshot(self, acct: _Account, region: str, a: Actor, t: int) -> _Built:
        vol = self._pick(acct.volumes[region])
        req = {"volumeId": vol, "description": "nightly backup"}
        resp = {
            "requestId": self._uuid(),
            "snapshotId": f"snap-0{self.rng.getrandbits(64):016x}",
            "volumeId": vol,
            "status": "pending",
            "startTime": t * 1000,
            "progress": "",
            "ownerId": acct.id,
            "description": "nightly backup",
            "volumeSize": 100,
            "encrypted": True,
        }
        return req, resp, None, None

    def _bucket_of(self, acct: _Account, region: str) -> tuple[str, str, list[Json]]:
        b = self._pick(acct.buckets[region])
        res = [{"accountId": acct.id, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{b}"}]
        return b, f"{b}.s3.{region}.amazonaws.com", res

    def _p_list_buckets(self, acct: _Account, region: str, a: Actor, t: int) -> _Built:
        extra = self._s3_extra(1800 + int(self.rng.random() * 900))
        return {"Host": f"s3.{region}.amazonaws.com"}, None, extra, None

    def _p_bucket(self, sub: str | None) -> Callable[[_Account, str, Actor, int], _Built]:
        def build(acct: _Account, region: str, a: Actor, t: int) -> _Built:
            b, host, res = self._bucket_of(acct, region)
            req: Json = {"bucketName": b, "Host": host}
            if sub:
                req[sub] = ""
            extra = self._s3_extra(0 if sub is None else 200 + int(self.rng.random() * 900))
            return req, None, extra, res

        return build

    def _p_put_bucket_policy(self, acct: _Account, region: str, a: Actor, t: int) -> _Built:
        b, host, res = self._bucket_of(acct, region)
        req = {
            "bucketPolicy": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "DenyInsecureTransport",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:*",
                        "Resource": [f"arn:aws:s3:::{b}", f"arn:aws:s3:::{b}/*"],
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    }
                ],
            },
            "bucketName": b,
            "Host": host,
            "policy": "",
        }
        return req, None, self._s3_extra(0), res

    def _p_put_bucket_tagging(self, acct: _Account, region: str, a: Actor, t: int) -> _Built:
        b, host, res = self._bucket_of(acct, region)
        req = {
            "bucketName": b,
            "Host": host,
            "tagging": "",
            "Tagging": {
                "xmlns": "http://s3.amazonaws.com/doc/2006-03-01/",
                "TagSet": {
                    "Tag": [{"Key": "env", "Value": acct.name}, {"Key": "owner", "Value": "ops"}]
                },
            },
        }
        return req, None, self._s3_extra(0), res

    def _p_put_public_access_block(self, acct: _Account, region: str, a: Actor, t: int) -> _Built:
        b, host, res = self._bucket_of(acct, region)
        req = {
            "publicAccessBlock": "",
            "bucketName": b,
            "Host": host,
            "PublicAccessBlockConfiguration": {
                "xmlns": "http://s3.amazonaws.com/doc/2006-03-01/",
                "RestrictPublicBuckets": True,
                "BlockPublicPolicy": True,
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
            },
        }
        return req, None, self._s3_extra(0), res

    def _p_create_bucket(self, acct: _Account, region: str, a: Actor, t: int) -> _Built:
        b = f"{acct.name}-scratch-{self.rng.getrandbits(24):06x}"
        req: Json = {"bucketName": b, "Host": f"{b}.s3.{region}.amazonaws.com"}
        if region != "us-east-1":
            req["CreateBucketConfiguration"] = {
                "LocationConstraint": region,
                "xmlns": "http://s3.amazonaws.com/doc/2006-03-01/",
            }
        res = [{"accountId": acct.id, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{b}"}]
        return req, None, self._s3_extra(0), res

    def _user_target(self, acct: _Account) -> str:
        return self._pick(acct.users).name

    def _p_user_name(self, acct: _Account, region: str, a: Actor, t: int) -> _Built:
        return {"userName": self._user_target(acct)}, None, None, None

    def _p_role_name(self, acct: _Account, region: str, a: Actor, t: int) -> _Built:
        return {"roleName": self._pick(acct.roles)[0]}, None, None, None

    def _p_list_policies(self, acct: _Account, region: str, a: Actor, t: int) -> _Built:
        return {"scope": "Local", "onlyAttached": False, "maxItems": 100}, None, None, None

    def _p_create_user(self, acct: _Account, region: str, a: Actor, t: int) -> _Built:
        name = (
            f"svc-{self._pick(('backup', 'etl', 'grafana', 'jenkins'))}-{self.rng.randrange(100)}"
        )
        return self.iam_create_user(acct.id, name, t)

    def iam_create_user(self, account: str, name: str, t: int) -> _Built:
        """CreateUser request and response for `name` (also used by scripted stories)."""
        req = {"userName": name}
        resp = {
            "user": {
                "path": "/",
                "userName": name,
                "userId": "AIDA" + _stable_b32(17, account, "user", name),
                "arn": f"arn:aws:iam::{account}:user/{name}",
                "createDate": _aws_date(t),
            }
        }
        return req, resp, None, None

    def _p_attach_user_policy(self, acct: _Account, region: str, a: Actor, t: int) -> _Built:
        policy = self._pick(("ReadOnlyAccess", "AmazonS3ReadOnlyAccess", "AdministratorAccess"))
        req = {
            "userName": self._user_target(acct),
            "policyArn": f"arn:aws:iam::aws:policy/{policy}",
        }
        return req, None, None, None

    def _p_create_access_key(self, acct: _Account, region: str, a: Actor, t: int) -> _Built:
        return self.iam_create_access_key(acct.id, self._user_target(acct), t)

    def iam_create_access_key(self, account: str, user: str, t: int) -> _Built:
        """CreateAccessKey request and response (the secret is never logged, as in AWS)."""
        key = self._temp_key("AKIA")
        resp = {
            "accessKey": {
                "userName": user,
                "accessKeyId": key,
                "status": "Active",
                "createDate": _aws_date(t),
            }
        }
        return {"userName": user}, resp, None, None

    def _p_delete_access_key(self, acct: _Account, region: str, a: Actor, t: int) -> _Built:
        user = self._user_target(acct)
        req = {"userName": user, "accessKeyId": "AKIA" + _stable_b32(16, acct.id, "old", user)}
        return req, None, None, None

    def _trust(self, principal: Json) -> str:
        doc = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}],
        }
        return orjson.dumps(doc).decode()

    def _p_create_role(self, acct: _Account, region: str, a: Actor, t: int) -> _Built:
        name = f"{acct.name}-{self._pick(('batch', 'etl', 'canary'))}-role"
        trust = self._trust({"Service": "ec2.amazonaws.com"})
        req = {
            "roleName": name,
            "assumeRolePolicyDocument": trust,
            "description": "managed by terraform",
        }
        resp = {
            "role": {
                "path": "/",
                "roleName": name,
                "roleId": "AROA" + _stable_b32(17, acct.id, "role", name),
                "arn": f"arn:aws:iam::{acct.id}:role/{name}",
                "createDate": _aws_date(t),
                "assumeRolePolicyDocument": trust.replace('"', "%22").replace(":", "%3A"),
            }
        }
        return req, resp, None, None

    def _p_put_role_policy(self, acct: _Account, region: str, a: Actor, t: int) -> _Built:
        bucket = self._pick(acct.buckets[self.global_region])
        doc = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["s3:GetObject", "s3:PutObject"],
                    "Resource": f"arn:aws:s3:::{bucket}/*",
                }
            ],
        }
        req = {
            "roleName": self._pick(acct.roles)[0],
            "policyName": "inline-s3-access",
            "policyDocument": orjson.dumps(doc).decode(),
        }
        return req, None, None, None

    def _p_attach_role_policy(self, acct: _Account, region: str, a: Actor, t: int) -> _Built:
        policy = self._pick(
            ("ReadOnlyAccess", "CloudWatchAgentServerPolicy", "AdministratorAccess")
        )
        req = {
            "roleName": self._pick(acct.roles)[0],
            "policyArn": f"arn:aws:iam::aws:policy/{policy}",
        }
        return req, None, None, None

    def _p_update_assume_role_policy(self, acct: _Account, region: str, a: Actor, t: int) -> _Built:
        role = self._pick(acct.roles)[0]
        req = {
            "roleName": role,
            "policyDocument": self._trust({"AWS": f"arn:aws:iam::{acct.id}:root"}),
        }
        return req, None, None, None

    def _assume(
        self,
        acct: _Account,
        role: tuple[str, str, str],
        session: str,
        t: int,
        duration: int | None,
    ) -> _Built:
        name, arn, rid = role
        req: Json = {"roleArn": arn, "roleSessionName": session}
        if duration:
            req["durationSeconds"] = duration
        resp = {
            "credentials": {
                "accessKeyId": self._temp_key(),
                "expiration": _aws_date(t + (duration or 3600)),
            },
            "assumedRoleUser": {
                "assumedRoleId": f"{rid}:{session}",
                "arn": f"arn:aws:sts::{acct.id}:assumed-role/{name}/{session}",
            },
        }
        res = [{"accountId": acct.id, "type": "AWS::IAM::Role", "ARN": arn}]
        return req, resp, None, res

    def _p_assume_role(self, acct: _Account, region: str, a: Actor, t: int) -> _Built:
        role = self._pick(acct.assumable)
        return self._assume(acct, role, a.name.split("@", 1)[0], t, 3600)

    def _p_assume_role_saml(self, acct: _Account, region: str, a: Actor, t: int) -> _Built:
        role = acct.role_map["Engineers-SAML"]
        req, resp, _, res = self._assume(acct, role, a.name, t, 3600)
        req["sAMLAssertionID"] = f"_{self.rng.getrandbits(128):032x}"
        req["principalArn"] = f"arn:aws:iam::{acct.id}:saml-provider/CorpIdP"
        resp["packedPolicySize"] = 4
        resp["subject"] = a.name
        resp["subjectType"] = "persistent"
        resp["issuer"] = "https://idp.example.com/saml2/idp/metadata"
        resp["audience"] = "https://signin.aws.amazon.com/saml"
        resp["nameQualifier"] = self._name_qualifiers[acct.id]
        return req, resp, None, res

    def _p_federation_token(self, acct: _Account, region: str, a: Actor, t: int) -> _Built:
        req = {"name": "reporting", "durationSeconds": 43200}
        resp = {
            "credentials": {"accessKeyId": self._temp_key(), "expiration": _aws_date(t + 43200)},
            "federatedUser": {
                "federatedUserId": f"{acct.id}:reporting",
                "arn": f"arn:aws:sts::{acct.id}:federated-user/reporting",
            },
            "packedPolicySize": 9,
        }
        return req, resp, None, None

    def _p_role_credentials(self, acct: _Account, region: str, a: Actor, t: int) -> _Built:
        return {"roleName": "AdministratorAccess", "accountId": acct.id}, None, None, None

    def _p_list_account_roles(self, acct: _Account, region: str, a: Actor, t: int) -> _Built:
        return {"accountId": acct.id}, None, None, None

    def _key_arn(self, acct: _Account, region: str) -> str:
        return f"arn:aws:kms:{region}:{acct.id}:key/{self._pick(acct.keys[region])}"

    def _p_describe_key(self, acct: _Account, region: str, a: Actor, t: int) -> _Built:
        arn = self._key_arn(acct, region)
        res = [{"accountId": acct.id, "type": "AWS::KMS::Key", "ARN": arn}]
        return {"keyId": arn}, None, None, res

    def _p_generate_data_key(self, acct: _Account, region: str, a: Actor, t: int) -> _Built:
        arn = self._key_arn(acct, region)
        day = time.strftime("%Y/%m/%d", time.gmtime(t))
        req = {
            "keyId": arn,
            "encryptionContext": {
                "aws:cloudtrail:arn": self.trail_arn,
                "aws:s3:arn": (
                    f"arn:aws:s3:::{self.trail_bucket}/AWSLogs/{acct.id}/CloudTrail/"
                    f"{region}/{day}/{acct.id}_CloudTrail_{region}_"
                    f"{time.strftime('%Y%m%dT%H%MZ', time.gmtime(t))}_"
                    f"{self._temp_key('')}.json.gz"
                ),
            },
            "keySpec": "AES_256",
        }
        res = [{"accountId": acct.id, "type": "AWS::KMS::Key", "ARN": arn}]
        return req, None, None, res

    def _p_function_name(self, acct: _Account, region: str, a: Actor, t: int) -> _Built:
        return {"functionName": self._pick(acct.functions[region])}, None, None, None

    def _function_config(self, acct: _Account, region: str, fn: str, t: int) -> Json:
        return {
            "functionName": fn,
            "functionArn": f"arn:aws:lambda:{region}:{acct.id}:function:{fn}",
            "runtime": "python3.12",
            "role": acct.role_map[f"{acct.name}-cost-exporter-role"][1],
            "handler": "app.handler",
            "codeSize": 48213,
            "description": "",
            "timeout": 60,
            "memorySize": 512,
            "lastModified": time.strftime("%Y-%m-%dT%H:%M:%S.000+0000", time.gmtime(t)),
            "codeSha256": base64.b64encode(self.rng.randbytes(32)).decode(),
            "version": "$LATEST",
            "environment": {},
            "tracingConfig": {"mode": "PassThrough"},
            "revisionId": self._uuid(),
            "state": "Active",
            "lastUpdateStatus": "InProgress",
            "lastUpdateStatusReason": "The function is being created.",
            "lastUpdateStatusReasonCode": "Creating",
            "packageType": "Zip",
            "architectures": ["arm64"],
            "ephemeralStorage": {"size": 512},
            "snapStart": {"applyOn": "None", "optimizationStatus": "Off"},
            "loggingConfig": {"logFormat": "Text", "logGroup": f"/aws/lambda/{fn}"},
        }

    def _p_update_function(self, acct: _Account, region: str, a: Actor, t: int) -> _Built:
        fn = self._pick(acct.functions[region])
        req = {"functionName": fn, "timeout": 60, "memorySize": 512, "environment": {}}
        return req, self._function_config(acct, region, fn, t), None, None

    def _p_update_code(self, acct: _Account, region: str, a: Actor, t: int) -> _Built:
        fn = self._pick(acct.functions[region])
        req = {
            "functionName": fn,
            "s3Bucket": self._pick(acct.buckets[region]),
            "s3Key": f"lambda/{fn}/{self.rng.getrandbits(40):010x}.zip",
            "publish": False,
            "dryRun": False,
        }
        return req, self._function_config(acct, region, fn, t), None, None

    def _p_describe_trails(self, acct: _Account, region: str, a: Actor, t: int) -> _Built:
        return {"trailNameList": [], "includeShadowTrails": True}, None, None, None

    def _p_trail_name(self, acct: _Account, region: str, a: Actor, t: int) -> _Built:
        res = [
            {"accountId": self.org_account, "type": "AWS::CloudTrail::Trail", "ARN": self.trail_arn}
        ]
        return {"name": self.trail_arn}, None, None, res

    def _p_lookup_events(self, acct: _Account, region: str, a: Actor, t: int) -> _Built:
        req = {
            "maxResults": 50,
            "lookupAttributes": [{"attributeKey": "EventName", "attributeValue": "ConsoleLogin"}],
        }
        return req, None, None, None


_ACCOUNT_NAMES = {"111111111111": "prod", "222222222222": "staging", "333333333333": "log-archive"}

# Relative weights inside each family; table order is part of the seeded output.
_READS: tuple[tuple[str, int], ...] = (
    ("ec2:DescribeInstances", 14),
    ("ec2:DescribeInstanceStatus", 5),
    ("ec2:DescribeSecurityGroups", 5),
    ("ec2:DescribeVolumes", 4),
    ("ec2:DescribeVpcs", 2),
    ("ec2:DescribeSubnets", 2),
    ("ec2:DescribeRegions", 2),
    ("s3:ListBuckets", 5),
    ("s3:GetBucketPolicy", 3),
    ("s3:GetBucketAcl", 3),
    ("s3:GetBucketLocation", 4),
    ("s3:GetBucketEncryption", 2),
    ("s3:GetBucketVersioning", 2),
    ("s3:GetBucketPublicAccessBlock", 2),
    ("iam:ListUsers", 2),
    ("iam:GetUser", 2),
    ("iam:ListRoles", 2),
    ("iam:GetRole", 3),
    ("iam:ListAttachedRolePolicies", 2),
    ("iam:ListAccessKeys", 2),
    ("iam:GetAccountSummary", 1),
    ("iam:ListPolicies", 1),
    ("sts:GetCallerIdentity", 10),
    ("kms:DescribeKey", 3),
    ("kms:ListKeys", 1),
    ("kms:ListAliases", 1),
    ("lambda:ListFunctions20150331", 2),
    ("lambda:GetFunction20150331v2", 3),
    ("lambda:GetPolicy20150331v2", 1),
    ("cloudtrail:DescribeTrails", 1),
    ("cloudtrail:GetTrailStatus", 1),
    ("cloudtrail:LookupEvents", 1),
)
_WRITES: tuple[tuple[str, int], ...] = (
    ("ec2:RunInstances", 30),
    ("ec2:StopInstances", 60),
    ("ec2:StartInstances", 60),
    ("ec2:TerminateInstances", 25),
    ("ec2:CreateTags", 120),
    ("ec2:AuthorizeSecurityGroupIngress", 25),
    ("ec2:CreateSnapshot", 60),
    ("s3:PutBucketPolicy", 15),
    ("s3:PutBucketTagging", 40),
    ("s3:PutBucketPublicAccessBlock", 10),
    ("s3:CreateBucket", 8),
    ("iam:CreateUser", 8),
    ("iam:AttachUserPolicy", 8),
    ("iam:CreateAccessKey", 8),
    ("iam:DeleteAccessKey", 8),
    ("iam:CreateRole", 8),
    ("iam:PutRolePolicy", 15),
    ("iam:AttachRolePolicy", 8),
    ("iam:UpdateAssumeRolePolicy", 4),
    ("lambda:UpdateFunctionConfiguration20150331v2", 30),
    ("lambda:UpdateFunctionCode20150331v2", 40),
    ("cloudtrail:StopLogging", 1),
    ("cloudtrail:DeleteTrail", 1),
)
_ERRORS: tuple[tuple[str, str], ...] = (
    ("ec2:DescribeInstances", "Client.UnauthorizedOperation"),
    ("ec2:StopInstances", "Client.UnauthorizedOperation"),
    ("ec2:RunInstances", "Client.UnauthorizedOperation"),
    ("ec2:DescribeInstances", "Client.RequestLimitExceeded"),
    ("iam:CreateUser", "AccessDenied"),
    ("iam:AttachRolePolicy", "AccessDenied"),
    ("iam:GetUser", "NoSuchEntityException"),
    ("iam:GetRole", "NoSuchEntityException"),
    ("s3:GetBucketPolicy", "NoSuchBucketPolicy"),
    ("s3:GetBucketEncryption", "ServerSideEncryptionConfigurationNotFoundError"),
    ("s3:PutBucketPolicy", "AccessDenied"),
    ("kms:DescribeKey", "AccessDeniedException"),
    ("lambda:GetFunction20150331v2", "ResourceNotFoundException"),
    ("sts:AssumeRole", "AccessDenied"),
    ("cloudtrail:LookupEvents", "ThrottlingException"),
)
_ERROR_MESSAGES = {
    "Client.RequestLimitExceeded": "Request limit exceeded.",
    "NoSuchEntityException": "The entity with name {name} cannot be found.",
    "NoSuchBucketPolicy": "The bucket policy does not exist",
    "ServerSideEncryptionConfigurationNotFoundError": (
        "The server side encryption configuration was not found"
    ),
    "ResourceNotFoundException": "Function not found: {res}",
    "ThrottlingException": "Rate exceeded",
}


def _resource_of(account: str, region: str, req: Any) -> str:
    """The ARN an error message names, from the request's parameters."""
    if not isinstance(req, dict):
        return "*"
    if "userName" in req:
        return f"arn:aws:iam::{account}:user/{req['userName']}"
    if "roleName" in req:
        return f"arn:aws:iam::{account}:role/{req['roleName']}"
    if "roleArn" in req:
        return str(req["roleArn"])
    if "instancesSet" in req and req["instancesSet"].get("items"):
        inst = req["instancesSet"]["items"][0].get("instanceId")
        if inst:
            return f"arn:aws:ec2:{region}:{account}:instance/{inst}"
    if "bucketName" in req:
        return f"arn:aws:s3:::{req['bucketName']}"
    if "keyId" in req:
        return str(req["keyId"])
    if "functionName" in req:
        return f"arn:aws:lambda:{region}:{account}:function:{req['functionName']}"
    return "*"


# --------------------------------------------------------------------------- public API


def generate_records(
    n: int,
    *,
    start: datetime,
    span: timedelta,
    seed: int = 0,
    accounts: list[str] | None = None,
    regions: list[str] | None = None,
) -> Iterator[Json]:
    """Yield n realistic CloudTrail records over [start, start+span), roughly time-ordered."""
    factory = CloudTrailFactory(accounts=accounts, regions=regions, seed=seed)
    return factory.stream(n, start=start, span=span)


class _TreeWriter:
    """Buffers one delivery interval per account/region and writes it as CloudTrail does."""

    def __init__(
        self,
        root: Path,
        per_file: int,
        organization_id: str | None,
        compress: bool,
        level: int,
        seed: int,
    ) -> None:
        if per_file < 1:
            raise ValueError("per_file must be at least 1")
        self.base = Path(root) / "AWSLogs"
        if organization_id:
            self.base = self.base / organization_id
        self.per_file = per_file
        self.compress = compress
        self.level = _LEVELS[max(0, min(9, level))]
        self.rng = random.Random(seed)
        self.open: dict[tuple[str, str], list[Any]] = {}  # key -> [interval start, [bytes]]
        self.paths: list[Path] = []
        self.events = 0
        self.watermark = -1
        self._last_str = ""
        self._last_t = 0
        self._dirs: set[Path] = set()

    def add(self, record: Json) -> None:
        ts = record["eventTime"]
        if ts != self._last_str:
            self._last_str = ts
            self._last_t = parse_event_time(ts)
        t = self._last_t
        account = record.get("recipientAccountId") or record["userIdentity"].get("accountId", "")
        key = (account, record["awsRegion"])
        iv = t - t % INTERVAL
        bucket = self.open.get(key)
        if bucket is None or iv > bucket[0]:
            if bucket is not None and bucket[1]:
                self._flush(key, bucket)
            bucket = self.open[key] = [iv, []]
        # a record older than its open interval is delivered with it, late, as AWS does
        items = bucket[1]
        items.append(orjson.dumps(record))
        if len(items) >= self.per_file:
            self._flush(key, bucket)
        if iv > self.watermark:
            self.watermark = iv
            for k, b in list(self.open.items()):  # close quiet streams an interval behind
                if b[0] < iv - INTERVAL:
                    if b[1]:
                        self._flush(k, b)
                    del self.open[k]

    def close(self) -> None:
        for key, bucket in sorted(self.open.items(), key=lambda kv: kv[1][0]):
            if bucket[1]:
                self._flush(key, bucket)
        self.open.clear()

    def _flush(self, key: tuple[str, str], bucket: list[Any]) -> None:
        account, region = key
        items: list[bytes] = bucket[1]
        # delivered 1-6 minutes after the interval closes; names carry delivery time
        delivered = bucket[0] + INTERVAL + 60 + self.rng.randrange(300)
        tm = time.gmtime(delivered)
        folder = (
            self.base
            / account
            / "CloudTrail"
            / region
            / f"{tm.tm_year:04d}"
            / f"{tm.tm_mon:02d}"
            / f"{tm.tm_mday:02d}"
        )
        if folder not in self._dirs:
            folder.mkdir(parents=True, exist_ok=True)
            self._dirs.add(folder)
        suffix = "".join(self.rng.choices(_ALNUM, k=16))
        stamp = time.strftime("%Y%m%dT%H%MZ", tm)
        name = f"{account}_CloudTrail_{region}_{stamp}_{suffix}.json"
        data = b'{"Records":[' + b",".join(items) + b"]}"
        if self.compress:
            name += ".gz"
            data = _gz.compress(data, self.level, mtime=delivered)
        path = folder / name
        path.write_bytes(data)
        self.paths.append(path)
        self.events += len(items)
        bucket[1] = []


def write_tree(
    root: Path,
    records: Iterable[Json],
    *,
    per_file: int = 1000,
    organization_id: str | None = None,
    gzip: bool = True,
    level: int = 6,
    seed: int = 0,
) -> list[Path]:
    """Write records as CloudTrail delivers them to S3; returns the files in write order.

    Holds at most one 5-minute interval per account/region, so any number of time-ordered
    records stream through. ``seed`` fixes the random file-name suffixes and delivery lags.
    """
    writer = _TreeWriter(Path(root), per_file, organization_id, gzip, level, seed)
    for record in records:
        writer.add(record)
    writer.close()
    return writer.paths


def main(argv: list[str] | None = None) -> int:
    """CLI: write N generated events under OUT_DIR in the CloudTrail S3 layout."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("out_dir", type=Path, metavar="OUT_DIR")
    parser.add_argument("--events", type=int, required=True, help="number of records")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--start",
        default=DEFAULT_START.strftime("%Y-%m-%dT%H:%M:%SZ"),
        help="first event time, ISO 8601 (UTC if no offset); default %(default)s",
    )
    parser.add_argument("--span-hours", type=float, default=24.0)
    parser.add_argument("--org", default=None, help="organization id, e.g. o-abc123def4")
    parser.add_argument("--per-file", type=int, default=1000)
    parser.add_argument("--accounts", default=None, help="comma-separated account ids")
    parser.add_argument("--regions", default=None, help="comma-separated regions")
    parser.add_argument("--no-gzip", action="store_true", help="write plain .json files")
    parser.add_argument("--level", type=int, default=6, help="gzip level 0-9 (default 6)")
    args = parser.parse_args(argv)
    start = datetime.fromisoformat(args.start.replace("Z", "+00:00"))
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    began = time.perf_counter()
    records = generate_records(
        args.events,
        start=start,
        span=timedelta(hours=args.span_hours),
        seed=args.seed,
        accounts=args.accounts.split(",") if args.accounts else None,
        regions=args.regions.split(",") if args.regions else None,
    )
    paths = write_tree(
        args.out_dir,
        records,
        per_file=args.per_file,
        organization_id=args.org,
        gzip=not args.no_gzip,
        level=args.level,
        seed=args.seed,
    )
    took = time.perf_counter() - began
    print(f"wrote {len(paths)} files, {args.events} events to {args.out_dir} in {took:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
