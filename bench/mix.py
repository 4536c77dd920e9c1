"""A realistic syslog mix (issue 16): the traffic of a fleet rather than one repeated line.

2,000 hosts and 100,000 users.  Per 100 lines, about:

* 20 sshd failures: 70 % from a pool of 500 scanning addresses trying common
  account names, 30 % a real user mistyping a password from a random address;
* 15 accepted sshd logins of real users from random addresses;
* 7 sudo commands of real users;
* 58 application lines: systemd session starts (a quarter of them), cron, a web
  application, the kernel.

Lines are RFC 3164 with the time stamp they are given (UTC), so a sender can
stamp them with the current time and a store can be built with any past
times.  ``Line`` says what each line is, so a benchmark can work out which
alerts the built-in rules should raise.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Kind = Literal["failure", "accepted", "sudo", "service", "app"]

SCANNER_NAMES = [
    *("root", "admin", "ubuntu", "test", "oracle", "postgres", "git", "user", "guest"),
    *("deploy", "ftp", "www-data", "pi", "support", "jenkins", "hadoop", "nagios", "mysql"),
    *("dev", "ansible"),
]
COMMANDS = (
    "/usr/bin/systemctl restart nginx",
    "/usr/bin/apt-get upgrade -y",
    "/usr/bin/vim /etc/hosts",
    "/usr/sbin/useradd -m tmpuser",
    "/usr/bin/journalctl -u app --since today",
    "/bin/cat /var/log/auth.log",
)
SERVICE_LINE = "systemd[1]: Started session {n} of user {user}."
"""A service start to the daemon: a change on its host (with no user of its own)."""
APP_LINES = (
    SERVICE_LINE,
    "CRON[{pid}]: ({user}) CMD (/usr/local/bin/backup --quiet {n})",
    'app[{pid}]: {address} - "GET /api/v1/orders/{n} HTTP/1.1" 200 {size} {ms}ms',
    "kernel: [{n}.{ms:03d}] eth0: link up, 1000 Mbps, full duplex",
)


@dataclass(frozen=True, slots=True)
class Line:
    kind: Kind
    host: str
    user: str
    address: str


def stamp_of(moment: datetime) -> str:
    """The RFC 3164 time stamp of ``moment`` (no year, the day padded with a space)."""
    return f"{moment:%b} {moment.day:2d} {moment:%H:%M:%S}"


class Mix:
    """Lines of the mix, the same for the same seed."""

    def __init__(self, seed: int = 16, users: int = 100_000, hosts: int = 2_000) -> None:
        self.random = random.Random(seed)
        self.users = users
        self.hosts = [f"{('web', 'db', 'app', 'bastion')[n % 4]}-{n:04d}" for n in range(hosts)]
        self.scanners = [self._address() for _ in range(500)]
        self.scanner_names = SCANNER_NAMES + [f"admin{n}" for n in range(980)]

    def _address(self) -> str:
        r = self.random.getrandbits(32)
        return f"{(r >> 24) % 223 + 1}.{r >> 16 & 255}.{r >> 8 & 255}.{r & 255 or 1}"

    def _user(self) -> str:
        return f"u{self.random.randrange(self.users):05d}"

    def line(self, stamp: str) -> tuple[str, Line]:
        """One line with the time stamp ``stamp`` (``stamp_of``), and what it is."""
        rnd = self.random
        host = rnd.choice(self.hosts)
        pid = rnd.randrange(1000, 60000)
        head = f"{stamp} {host}"
        draw = rnd.random()
        if draw < 0.20:
            if rnd.random() < 0.7:
                user, address = rnd.choice(self.scanner_names), rnd.choice(self.scanners)
            else:
                user, address = self._user(), self._address()
            port = rnd.randrange(1024, 65536)
            text = (
                f"<38>{head} sshd[{pid}]: Failed password for {user} from {address} "
                f"port {port} ssh2"
            )
            return text, Line("failure", host, user, address)
        if draw < 0.35:
            user, address = self._user(), self._address()
            port = rnd.randrange(1024, 65536)
            text = (
                f"<38>{head} sshd[{pid}]: Accepted publickey for {user} from {address} "
                f"port {port} ssh2: ED25519 SHA256:{rnd.getrandbits(64):016x}"
            )
            return text, Line("accepted", host, user, address)
        if draw < 0.42:
            user = self._user()
            text = (
                f"<85>{head} sudo: {user} : TTY=pts/{pid % 20} ; PWD=/home/{user} ; "
                f"USER=root ; COMMAND={rnd.choice(COMMANDS)}"
            )
            return text, Line("sudo", host, user, "")
        user, address = self._user(), self._address()
        template = rnd.choice(APP_LINES)
        body = template.format(
            n=rnd.randrange(1_000_000),
            pid=pid,
            user=user,
            address=address,
            size=rnd.randrange(200, 90_000),
            ms=rnd.randrange(1, 1000),
        )
        kind: Kind = "service" if template is SERVICE_LINE else "app"
        return f"<30>{head} {body}", Line(kind, host, user, address)
