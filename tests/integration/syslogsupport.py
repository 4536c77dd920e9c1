"""Helpers for the syslog integration tests: configs with syslog sources, ports, waiting."""

from __future__ import annotations

from typing import Any

from itsupport import Daemon, Workspace, toml_value, wait_for


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
        got = {e["source"]: int(e["port"]) for e in daemon.events("listening")}
        return got if len(got) >= count else None

    result: dict[str, int] = wait_for(
        "the listeners to listen", found, timeout=30, context=daemon.tail
    )
    return result
