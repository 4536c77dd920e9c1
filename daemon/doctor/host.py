"""What ``auditcorr doctor`` checks on the host: directories, store, disk, ports, clock.

Every check only looks: nothing is written but a temporary file in the state
directory, removed at once, and the store is read without making SQLite's -wal and
-shm files (see ``read_store``), so a doctor run as root never leaves root-owned
files beside the service's store.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import socket
import sqlite3
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from connectors.base import Check
from connectors.config import host_port
from daemon.store import schema

MIN_FREE_BYTES = 1 << 30
"""Less free space than this (or 5 % of the file system) fails the disk check."""
MIN_FREE_RATIO = 0.05
CLOCK_TOLERANCE = timedelta(minutes=5)
_TIME_ERROR = 5
"""adjtimex(2) returns TIME_ERROR while the kernel's clock is not synchronized."""


def _existing_ancestor(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def state_dir(path: Path) -> Check:
    """The state directory exists (or can be made) and takes new files."""
    name = "state directory writable"
    hint = (
        f"create it for the service user: install -d -o auditcorr -g auditcorr -m 0750 {path}"
        " (the unit's StateDirectory= makes /var/lib/auditcorr)"
    )
    if not path.exists():
        parent = _existing_ancestor(path)
        if os.access(parent, os.W_OK | os.X_OK):
            return Check(name, True, f"{path} does not exist yet; it is made at first start")
        return Check(name, False, f"{path} does not exist and {parent} is not writable", hint)
    if not path.is_dir():
        return Check(name, False, f"{path} is not a directory", hint)
    try:
        with tempfile.TemporaryFile(dir=path, prefix=".doctor-"):
            pass
    except OSError as err:
        return Check(name, False, f"{path}: {err.strerror}", hint)
    return Check(name, True, str(path))


@dataclass(frozen=True)
class StoreFacts:
    """What a read of the store tells: its schema and its newest write."""

    version: int
    last_write: datetime | None


def read_store(path: Path) -> StoreFacts:
    """Schema version and the newest checkpoint write; raises sqlite3.Error.

    A running daemon's recent writes, the schema among them, sit in the -wal
    file until a checkpoint: the store is read through it whenever it is there.
    Without a -wal and -shm file the store file holds everything, and it is
    read immutable, because a plain read-only open would create them (owned by
    whoever runs doctor).
    """
    wal = [Path(f"{path}-{suffix}").exists() for suffix in ("wal", "shm")]
    uri = f"file:{path}?mode=ro" + ("" if all(wal) else "&immutable=1")
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
        version = schema.version_of(db)
        row = None
        if version:
            row = db.execute("SELECT max(updated_at) FROM checkpoints").fetchone()
    last = datetime.fromtimestamp(row[0] / 1e6, UTC) if row and row[0] else None
    return StoreFacts(version, last)


def store(path: Path) -> tuple[Check, StoreFacts | None]:
    """The store file and its folder are writable and its schema is one this version reads."""
    name = "store writable"
    hint = f"the service user must own it: chown auditcorr:auditcorr {path}*"
    if not path.exists():
        return Check(name, True, f"{path} does not exist yet; it is made at first start"), None
    folder = path.parent
    if not os.access(path, os.R_OK | os.W_OK):
        return Check(name, False, f"{path}: no read and write access for this user", hint), None
    if not os.access(folder, os.W_OK | os.X_OK):
        # SQLite creates its -wal and -shm files beside the store.
        detail = f"{folder}: not writable, so SQLite cannot make its -wal and -shm files"
        return Check(name, False, detail, hint), None
    try:
        facts = read_store(path)
    except sqlite3.Error as err:
        detail = f"{path}: not a readable store: {err}"
        return Check(name, False, detail, "restore it from a backup or move it aside"), None
    latest = len(schema.MIGRATIONS)
    if facts.version > latest:
        detail = f"{path}: schema {facts.version} is newer than this auditcorr ({latest})"
        return Check(name, False, detail, "install the newer auditcorr again"), facts
    detail = f"{path} (schema {facts.version})"
    if facts.version < latest:
        detail += f"; upgraded to schema {latest} at the next start, after a backup"
    return Check(name, True, detail), facts


def disk_space(
    path: Path, *, min_free: int = MIN_FREE_BYTES, min_ratio: float = MIN_FREE_RATIO
) -> Check:
    """Room for the store to grow on the file system that holds it."""
    where = _existing_ancestor(path)
    usage = shutil.disk_usage(where)
    free_gib = usage.free / (1 << 30)
    detail = f"{free_gib:.1f} GiB free of {usage.total / (1 << 30):.1f} GiB on {where}"
    if usage.free < min_free or usage.free < usage.total * min_ratio:
        hint = (
            "free space or move state_dir to a larger file system; lower"
            " [store].retention_days to keep less"
        )
        return Check("disk space", False, detail, hint)
    return Check("disk space", True, detail)


@dataclass(frozen=True)
class Listen:
    """A ``listen`` setting: ``udp:0.0.0.0:5514``, ``tcp:[::]:6514``, ``127.0.0.1:8080``."""

    protocol: str
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Listen:
        scheme, sep, rest = text.partition(":")
        protocol = "tcp"
        if sep and scheme in {"udp", "tcp", "tls", "http", "https"}:
            protocol, text = ("udp" if scheme == "udp" else "tcp"), rest
        host, port = host_port(text, "[udp:|tcp:]HOST:PORT")
        return cls(protocol, host, port)


def port_free(owner: str, listen: str) -> Check:
    """Nothing else listens where ``owner`` will: bind it for a moment, then let go."""
    name = f"port free: {owner} {listen}"
    try:
        where = Listen.parse(listen)
    except ValueError as err:
        return Check(name, False, str(err), "write it as [udp:|tcp:]HOST:PORT")
    if where.port == 0:
        return Check(name, True, f"{where.protocol}: a free port is picked at start")
    kind = socket.SOCK_DGRAM if where.protocol == "udp" else socket.SOCK_STREAM
    try:
        infos = socket.getaddrinfo(
            where.host or None, where.port, type=kind, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as err:
        return Check(name, False, f"{where.host}: {err.strerror}", "use a local address or name")
    family, _, _, _, address = infos[0]
    with socket.socket(family, kind) as sock:
        if kind == socket.SOCK_STREAM:
            # As servers bind: a port in TIME_WAIT is free.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as err:
            return _bind_failed(name, where, err)
    return Check(name, True, f"{where.protocol} {where.port} is free")


def _bind_failed(name: str, where: Listen, err: OSError) -> Check:
    if err.errno == errno.EACCES and where.port < 1024:
        # Not allowed to try: the unit grants CAP_NET_BIND_SERVICE, this shell may not.
        if where.port in listening_ports(where.protocol):
            return Check(
                name, False, f"{where.protocol} {where.port} is in use", _in_use_hint(where)
            )
        return Check(
            name,
            True,
            f"{where.protocol} {where.port} is free (binding it needs CAP_NET_BIND_SERVICE,"
            " which the unit grants)",
        )
    if err.errno == errno.EADDRINUSE:
        return Check(name, False, f"{where.protocol} {where.port} is in use", _in_use_hint(where))
    if err.errno == errno.EADDRNOTAVAIL:
        return Check(name, False, f"{where.host} is not an address of this host", "fix the host")
    return Check(name, False, f"cannot bind: {err.strerror}", None)


def _in_use_hint(where: Listen) -> str:
    flag = "u" if where.protocol == "udp" else "t"
    return (
        f"see what holds it: ss -l{flag}np 'sport = :{where.port}'; pick another port, or stop"
        " the other program (a running auditcorr holds its own ports)"
    )


def listening_ports(protocol: str) -> set[int]:
    """Local ports with a listening TCP socket or a bound UDP socket, from /proc/net."""
    found: set[int] = set()
    for table in (f"/proc/net/{protocol}", f"/proc/net/{protocol}6"):
        with contextlib.suppress(OSError):
            lines = Path(table).read_text().splitlines()[1:]
            for line in lines:
                fields = line.split()
                state = fields[3]
                # 0A: TCP LISTEN; 07: UDP socket bound (TCP_CLOSE in the shared table).
                if state == ("07" if protocol == "udp" else "0A"):
                    found.add(int(fields[1].rpartition(":")[2], 16))
    return found


def kernel_clock_synchronized() -> bool | None:
    """Whether the kernel says NTP keeps the clock in sync; None when it cannot be asked."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        # struct timex is under 256 bytes on every architecture; modes = 0 only reads.
        state = int(libc.adjtimex(ctypes.create_string_buffer(512)))
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return state != _TIME_ERROR


def clock(now: datetime, last_write: datetime | None, synchronized: bool | None) -> Check:
    """The clock is not behind the store's newest write, and NTP keeps it in sync."""
    name = "clock"
    if last_write is not None and last_write - now > CLOCK_TOLERANCE:
        detail = (
            f"now is {now:%Y-%m-%d %H:%M:%S} UTC, but the store was written at"
            f" {last_write:%Y-%m-%d %H:%M:%S} UTC: the clock went back"
        )
        return Check(name, False, detail, "set the time and enable NTP (chronyd or timesyncd)")
    if synchronized is False:
        detail = f"{now:%Y-%m-%d %H:%M:%S} UTC, not synchronized (the kernel says so)"
        hint = "enable NTP: timedatectl set-ntp true, or start chronyd"
        return Check(name, False, detail, hint)
    sync = {True: "synchronized", None: "sync state unknown"}[synchronized]
    return Check(name, True, f"{now:%Y-%m-%d %H:%M:%S} UTC, {sync}")
