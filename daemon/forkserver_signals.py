"""Imported first by the workers' fork server: it lets SIGTERM pass.

systemd stops a service by sending SIGTERM to every process of it
(``KillMode=control-group``).  The fork server would die of it, and the pool
reads a dead server as every worker dead, so a stop would break the pool that
is draining what was read.  The workers it forks ignore SIGTERM too
(``daemon.process.init_worker``); the daemon decides when they stop, and the
server ends when the daemon's end of its pipe closes, after any exit.
Imported by nothing else: the daemon itself must die of SIGTERM until it
handles it.
"""

from __future__ import annotations

import signal

signal.signal(signal.SIGTERM, signal.SIG_IGN)
