"""Helpers for the syslog integration tests: configs with syslog sources, ports, waiting."""

from __future__ import annotations

import contextlib
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from itsupport import Daemon, Workspace, toml_value, wait_for
from testdata import need


def write_config(workspace: Workspace, sources: dict[str, dict[str, Any]]) -> None:
    """A config with the given sources; each dict holds ``type`` and its settings."""
    lines = [
        "[daemon]",
        f"state_dir = {toml_value(workspace.state)}",
        'log_format = "json"',
        "workers = 1",
        "",
        "[store]",
        "retention_days = 0",
    ]
    for name, settings in sources.items():
        lines += ["", f"[sources.{name}]"]
        lines += [f"{key} = {_toml(value)}" for key, value in settings.items()]
    workspace.config.write_text("\n".join(lines) + "\n")


def _toml(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    return toml_value(value)


def ports(daemon: Daemon, count: int) -> dict[str, int]:
    """The ports the daemon's listeners got (they listen on port 0), by source id."""

    def found() -> dict[str, int] | None:
        got = {e["component_id"]: int(e["port"]) for e in daemon.events("listening")}
        return got if len(got) >= count else None

    result: dict[str, int] = wait_for(
        "the listeners to listen", found, timeout=30, context=daemon.tail
    )
    return result


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def rsyslogd(
    folder: Path, listen: int, action: str, modules: tuple[str, ...] = ()
) -> Iterator[subprocess.Popen[bytes]]:
    """rsyslogd in the foreground with its own config: imtcp on ``listen`` in, the
    ``action(...)`` statement out, after loading ``modules`` (e.g. ``omrelp``)."""
    folder.mkdir()
    config = folder / "rsyslog.conf"
    config.write_text(
        f'global(workDirectory="{folder}")\n'
        'module(load="imtcp")\n'
        + "".join(f'module(load="{module}")\n' for module in modules)
        + f'input(type="imtcp" address="127.0.0.1" port="{listen}")\n'
        + action
        + "\n"
    )
    argv = [need("rsyslogd"), "-n", "-f", str(config), "-i", str(folder / "rsyslogd.pid")]
    proc = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=(folder / "rsyslogd.err").open("wb")
    )
    try:

        def listening() -> bool:
            if proc.poll() is not None:
                pytest.fail(f"rsyslogd exited: {(folder / 'rsyslogd.err').read_text()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", listen), 1):
                return True
            return False

        wait_for("rsyslogd to listen", listening, timeout=20)
        yield proc
    finally:
        proc.terminate()
        proc.wait(10)
