"""Connections a cluster member keeps open beside its store: leader lock, heartbeat.

TCP keepalives are asked for on both ends.  The server's side matters most:
a leader whose host dies sends no FIN, and PostgreSQL releases its session
advisory lock only once it notices the connection is dead, which its own
keepalives (set here per session) bound to about ``KEEPALIVE_IDLE_SECS +
KEEPALIVE_COUNT * KEEPALIVE_INTERVAL_SECS`` seconds instead of the kernel's
two hours.  The client's side lets a member notice a database that went away.
"""

from __future__ import annotations

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from daemon.store.base import StoreUnavailableError
from daemon.store.postgres import describe

KEEPALIVE_IDLE_SECS = 4
KEEPALIVE_INTERVAL_SECS = 2
KEEPALIVE_COUNT = 3


def conninfo(dsn: str) -> str:
    """``dsn`` with keepalives on the client and the server side of the connection."""
    given = conninfo_to_dict(dsn).get("options") or ""
    server = (
        f"-c tcp_keepalives_idle={KEEPALIVE_IDLE_SECS}"
        f" -c tcp_keepalives_interval={KEEPALIVE_INTERVAL_SECS}"
        f" -c tcp_keepalives_count={KEEPALIVE_COUNT}"
    )
    return make_conninfo(
        dsn,
        application_name="auditcorr-cluster",
        keepalives=1,
        keepalives_idle=KEEPALIVE_IDLE_SECS,
        keepalives_interval=KEEPALIVE_INTERVAL_SECS,
        keepalives_count=KEEPALIVE_COUNT,
        options=f"{given} {server}".strip(),
    )


async def connect(dsn: str) -> psycopg.AsyncConnection:
    """An autocommit session connection with keepalives."""
    try:
        return await psycopg.AsyncConnection.connect(conninfo(dsn), autocommit=True)
    except psycopg.OperationalError as err:
        raise StoreUnavailableError(f"cannot connect to {describe(dsn)}: {err}") from err
