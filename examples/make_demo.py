"""Build the bundled demo data set: one day (2026-11-20 UTC) of CloudTrail and of the
on-prem hosts' syslog, dpkg and audit logs, with a story in it.

The operators' first tour runs on this data, and later correlation rules are tested
against it, so it is deterministic: running this script again rewrites the same records.
Background noise comes from ctgen (benign calls only, so every alert in the demo belongs
to the story); the story is scripted below and described in examples/demo/README.md.

    python examples/make_demo.py            # rewrites examples/demo/AWSLogs and hosts/
    python examples/make_demo.py /tmp/demo  # or anywhere else
"""

from __future__ import annotations

import random
import shutil
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

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


# --------------------------------------------------------------------------- on-prem hosts

BASTION_IP = "10.20.0.5"
HOSTS = ("bastion01", "web01", "db01")
UIDS = {"alice": 1001, "bob": 1002, "carol": 1003}
SSH_KEYS = {
    "alice": "ED25519 SHA256:q0b2Hk7tL3VYx4yJw8Jm5c1nQyWv0mB9sA6eR2fK3dI",
    "bob": "ED25519 SHA256:Zt4pM1xN8cV7bQ2wE5rT9yU3iO6pA0sD1fG4hJ7kL2m",
    "carol": "RSA SHA256:nB3vC6xZ9aS2dF5gH8jK1lQ4wE7rT0yU3iO6pA9sD2f",
}


class Line(NamedTuple):
    """One syslog line of a host, before it is written in rsyslog's file format."""

    when: datetime
    host: str
    program: str
    pid: int | None
    message: str


class HostLog:
    """The lines of the on-prem chapters, with process ids and ports that look real."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.lines: list[Line] = []
        self.dpkg: list[tuple[datetime, str]] = []
        self.audit_lines: list[str] = []
        self._serial = 48210

    def pid(self) -> int:
        return self.rng.randrange(2000, 60000)

    def port(self) -> int:
        return self.rng.randrange(32768, 61000)

    def add(self, when: datetime, host: str, program: str, message: str, pid: int | None) -> None:
        # sub-second stamps that keep the order lines were added in within a second
        micro = len(self.lines) * 2000 + self.rng.randrange(2000)
        assert micro < 1_000_000, "too many lines for the sub-second stamps"
        self.lines.append(Line(when + timedelta(microseconds=micro), host, program, pid, message))

    def ssh_login(self, when: datetime, host: str, user: str, ip: str) -> None:
        """A public-key login with its PAM and logind lines."""
        pid, port = self.pid(), self.port()
        self.add(
            when,
            host,
            "sshd",
            f"Accepted publickey for {user} from {ip} port {port} ssh2: {SSH_KEYS[user]}",
            pid,
        )
        self.add(
            when,
            host,
            "sshd",
            f"pam_unix(sshd:session): session opened for user {user}(uid={UIDS[user]}) by (uid=0)",
            pid,
        )
        self.add(
            when,
            host,
            "systemd-logind",
            f"New session {self.rng.randrange(100, 900)} of user {user}.",
            612,
        )

    def sudo(
        self, when: datetime, host: str, user: str, command: str, refused: bool = False
    ) -> None:
        """A sudo command as sudo logs it (refused: the user is not in sudoers)."""
        head = f"{user} : user NOT in sudoers ; " if refused else f"{user} : "
        pid = self.pid()
        self.add(
            when,
            host,
            "sudo",
            f"{head}TTY=pts/0 ; PWD=/home/{user} ; USER=root ; COMMAND={command}",
            pid,
        )
        if not refused:
            self.add(
                when,
                host,
                "sudo",
                f"pam_unix(sudo:session): session opened for user root(uid=0)"
                f" by {user}(uid={UIDS[user]})",
                pid,
            )

    def apt(self, when: datetime, packages: list[tuple[str, str | None, str]]) -> None:
        """dpkg.log lines of one apt run: (package, old version or None, new version)
        unpacked one a second, then configured."""
        self.dpkg.append((when, "startup archives unpack"))
        for name, old, new in packages:
            verb, half = ("upgrade", "configured") if old else ("install", "installed")
            self.dpkg.append((when, f"{verb} {name} {old or '<none>'} {new}"))
            self.dpkg.append((when, f"status half-{half} {name} {old or new}"))
            self.dpkg.append((when, f"status unpacked {name} {new}"))
            when += timedelta(seconds=1)
        self.dpkg.append((when, "startup packages configure"))
        for name, _, new in packages:
            self.dpkg.append((when, f"configure {name} {new} <none>"))
            self.dpkg.append((when, f"status installed {name} {new}"))
            when += timedelta(seconds=1)

    def restart(self, when: datetime, host: str, unit: str, description: str) -> None:
        """systemd's lines for a restarted service."""
        for offset, verb in enumerate(("Stopping", "Stopped", "Starting", "Started")):
            tail = "..." if verb.endswith("ing") else "."
            self.add(
                when + timedelta(seconds=offset // 2),
                host,
                "systemd",
                f"{verb} {unit} - {description}{tail}",
                1,
            )

    def cron(self, when: datetime, host: str, command: str) -> None:
        """A root cron job: session lines and the command, none of them a change."""
        pid = self.pid()
        self.add(
            when,
            host,
            "CRON",
            "pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)",
            pid,
        )
        self.add(when, host, "CRON", f"(root) CMD ({command})", pid + 1)
        self.add(
            when + timedelta(seconds=1),
            host,
            "CRON",
            "pam_unix(cron:session): session closed for user root",
            pid,
        )

    def ssh_guess(self, when: datetime, host: str, user: str, ip: str, known: bool) -> None:
        """One password guess over SSH: sshd's lines for an existing or unknown user."""
        pid, port = self.pid(), self.port()
        if known:
            self.add(
                when, host, "sshd", f"Failed password for {user} from {ip} port {port} ssh2", pid
            )
            who = f"authenticating user {user}"
        else:
            self.add(when, host, "sshd", f"Invalid user {user} from {ip} port {port}", pid)
            failed = f"Failed password for invalid user {user} from {ip} port {port} ssh2"
            self.add(when + timedelta(seconds=2), host, "sshd", failed, pid)
            who = f"invalid user {user}"
        closed = f"Connection closed by {who} {ip} port {port} [preauth]"
        self.add(when + timedelta(seconds=3), host, "sshd", closed, pid)

    def audit(self, when: datetime, kind: str, pid: int | None, uid: int, body: str) -> None:
        """A record of carol's session in db01's audit log, in auditd's enriched format
        (names after a 0x1d character)."""
        self._serial += self.rng.randrange(3, 40)
        stamp = f"{when.timestamp():.3f}"
        process = f"pid={pid} " if pid is not None else ""
        names = f'UID="{"carol" if uid else "root"}" AUID="carol"'
        self.audit_lines.append(
            f"node=db01 type={kind} msg=audit({stamp}:{self._serial}): "
            f"{process}uid={uid} auid=1003 ses=412 {body}\x1d{names}"
        )

    def audit_sudo(self, when: datetime, pid: int, command: str) -> None:
        """sudo's USER_CMD record: the command hex-encoded, as auditd writes it."""
        cmd = command.encode().hex().upper()
        body = f'cwd="/home/carol" cmd={cmd} exe="/usr/bin/sudo" terminal=pts/0 res=success'
        self.audit(when, "USER_CMD", pid, 1003, f"msg='{body}'")


def onprem() -> HostLog:
    """The on-prem chapters of the day, host by host."""
    log = HostLog(SEED + 1000)
    office_alice, office_carol = ctgen.CAST[0].ips[0], ctgen.CAST[2].ips[0]
    bob_ip = ctgen.CAST[1].ips[1]

    # Routine all day: cron on every host, quiet.
    for host in HOSTS:
        for hour in range(0, 24, 6):
            log.cron(at(f"{hour:02d}:17:01"), host, "cd / && run-parts --report /etc/cron.hourly")
    log.cron(at("02:30:01"), "db01", "/usr/local/bin/pg-nightly-dump")

    # 01:52-02:03 an address brute-forces SSH on the bastion (it never gets in).
    t = at("01:52:04")
    guesses = ["admin", "admin", "ubuntu", "root", "root", "oracle", "deploy", "root", "git"]
    for i, user in enumerate([*guesses, "mallory", "mallory", "root"]):
        log.ssh_guess(t, "bastion01", user, ATTACKER_IP, known=user in ("root", "mallory"))
        t += timedelta(seconds=40 + 7 * (i % 5))

    # 08:50 and 09:58 alice on the bastion; 10:00-10:12 the approved nginx upgrade on web01.
    log.ssh_login(at("08:50:12"), "bastion01", "alice", office_alice)
    log.ssh_login(at("09:58:40"), "bastion01", "alice", office_alice)
    log.ssh_login(at("10:01:55"), "web01", "alice", BASTION_IP)
    log.sudo(at("10:03:10"), "web01", "alice", "/usr/bin/apt-get install --only-upgrade -y nginx")
    upgrade = ("1.22.1-9", "1.22.1-9+deb12u1")
    log.apt(at("10:03:14"), [("nginx-common:all", *upgrade), ("nginx:amd64", *upgrade)])
    nginx = "A high performance web server and a reverse proxy server"
    log.restart(at("10:03:17"), "web01", "nginx.service", nginx)
    log.sudo(at("10:06:42"), "web01", "alice", "/usr/bin/systemctl restart nginx")
    log.restart(at("10:06:42"), "web01", "nginx.service", nginx)

    # 11:41 alice installs tcpdump on web01: 41 minutes after the window closed.
    log.ssh_login(at("11:39:30"), "web01", "alice", BASTION_IP)
    log.sudo(at("11:41:05"), "web01", "alice", "/usr/bin/apt-get install -y tcpdump")
    log.apt(at("11:41:09"), [("tcpdump:amd64", None, "4.99.3-1")])

    # 16:31 bob (read-only everywhere) tries sudo on web01 and is refused.
    log.ssh_login(at("16:30:02"), "bastion01", "bob", bob_ip)
    log.ssh_login(at("16:31:20"), "web01", "bob", BASTION_IP)
    log.sudo(at("16:32:48"), "web01", "bob", "/usr/bin/systemctl restart nginx", refused=True)

    # 23:05 carol, late at night on db01: a new account, then auditd stopped.
    log.ssh_login(at("23:04:11"), "bastion01", "carol", office_carol)
    log.ssh_login(at("23:05:02"), "db01", "carol", BASTION_IP)
    log.sudo(at("23:07:31"), "db01", "carol", "/usr/sbin/useradd -m -s /bin/bash pgbackup")
    pid = log.pid()
    log.add(at("23:07:31"), "db01", "useradd", "new group: name=pgbackup, GID=1004", pid)
    home = "home=/home/pgbackup, shell=/bin/bash, from=/dev/pts/0"
    log.add(
        at("23:07:31"),
        "db01",
        "useradd",
        f"new user: name=pgbackup, UID=1004, GID=1004, {home}",
        pid,
    )
    log.sudo(at("23:09:12"), "db01", "carol", "/usr/bin/systemctl stop auditd")
    auditd = "auditd.service - Security Auditing Service"
    log.add(at("23:09:12"), "db01", "systemd", f"Stopping {auditd}...", 1)
    log.add(at("23:09:13"), "db01", "systemd", f"Stopped {auditd}.", 1)

    # db01's audit log of the same night, up to auditd's own end (carol is uid 1003).
    sshd = f'exe="/usr/sbin/sshd" hostname={BASTION_IP} addr={BASTION_IP} terminal=/dev/pts/0'
    log.audit(at("23:05:02"), "USER_LOGIN", 40211, 0, f"msg='op=login id=1003 {sshd} res=success'")
    log.audit_sudo(at("23:07:31"), 40388, "useradd -m -s /bin/bash pgbackup")
    useradd = 'exe="/usr/sbin/useradd" hostname=db01 addr=? terminal=pts/0 res=success'
    log.audit(at("23:07:31"), "ADD_GROUP", 40390, 0, f"msg='op=add-group id=1004 {useradd}'")
    log.audit(at("23:07:31"), "ADD_USER", 40390, 0, f"msg='op=add-user id=1004 {useradd}'")
    log.audit_sudo(at("23:09:12"), 40502, "systemctl stop auditd")
    log.audit(at("23:09:12"), "DAEMON_END", None, 0, "op=terminate pid=1 res=success")
    return log


def write_hosts(out_dir: Path) -> int:
    """Rewrite out_dir/hosts: per host the syslog file a central rsyslog server keeps,
    web01's dpkg.log and db01's audit.log; returns the number of lines."""
    log = onprem()
    root = out_dir / "hosts"
    shutil.rmtree(root, ignore_errors=True)
    written = 0
    for host in HOSTS:
        lines = sorted((line for line in log.lines if line.host == host), key=lambda ln: ln.when)
        text = "".join(
            f"{line.when.isoformat()} {line.host} "
            f"{line.program}{f'[{line.pid}]' if line.pid is not None else ''}: {line.message}\n"
            for line in lines
        )
        _write(root / host / "syslog", text)
        written += len(lines)
    dpkg = sorted(log.dpkg, key=lambda entry: entry[0])
    _write(root / "web01" / "dpkg.log", "".join(f"{t:%Y-%m-%d %H:%M:%S} {m}\n" for t, m in dpkg))
    _write(root / "db01" / "audit.log", "".join(f"{record}\n" for record in log.audit_lines))
    return written + len(dpkg) + len(log.audit_lines)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def build(out_dir: Path) -> tuple[int, int]:
    """Rewrite out_dir/AWSLogs (and out_dir/hosts); returns (files, records) of the trail."""
    records = noise() + list(story())
    records.sort(key=lambda r: r["eventTime"])  # stable: story order kept within a second
    shutil.rmtree(out_dir / "AWSLogs", ignore_errors=True)
    paths = ctgen.write_tree(out_dir, records, organization_id=ORG, seed=SEED)
    write_hosts(out_dir)
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
