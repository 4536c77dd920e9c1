"""systemd's notify protocol, spoken without a compiled library.

Under ``Type=notify`` systemd passes a datagram socket in ``NOTIFY_SOCKET``;
the daemon reports READY=1 once it works, STATUS= lines for
``systemctl status``, WATCHDOG=1 keep-alives from the event loop (so a hung
loop gets the service restarted) and STOPPING=1 when it shuts down.  Outside
systemd every call does nothing.
"""

from __future__ import annotations

import os
import socket

import structlog

log = structlog.get_logger()


class Notifier:
    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        # A leading '@' names a socket in the abstract namespace.
        self._address = "\0" + address[1:] if address.startswith("@") else address
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        watched = usec.isdigit() and (not pid or pid == str(os.getpid()))
        self.watchdog_secs = int(usec) / 1e6 if watched else None
        """How often systemd expects WATCHDOG=1, or None when it does not watch."""

    @property
    def enabled(self) -> bool:
        return bool(self._address)

    def send(self, *lines: str) -> None:
        if not self._address:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto("\n".join(lines).encode(), self._address)
        except OSError as err:
            log.warning("systemd_notify_failed", error=str(err))

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={status}", f"MAINPID={os.getpid()}")

    def status(self, status: str) -> None:
        self.send(f"STATUS={status}")

    def watchdog(self) -> None:
        self.send("WATCHDOG=1")

    def stopping(self) -> None:
        self.send("STOPPING=1", "STATUS=stopping: committing what was read")
