"""The ``auditcorr`` command line: options every command takes."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from daemon.cli.base import EXIT_CONFIG, EXIT_OK
from daemon.cli.main import build_parser, main

CONFIG = Path(__file__).resolve().parents[3] / "config.toml"


def command_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """The parsers of the commands that run, nested ones included (``alerts``, ``alerts
    retry``, ``rules list``; not ``rules`` alone)."""
    found = [parser] if parser.get_default("handler") is not None else []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found += command_parsers(sub)
    return found


def test_every_command_takes_config() -> None:
    """Each command that runs, nested ones included, accepts --config and -c."""
    commands = {sub.prog.removeprefix("auditcorr "): sub for sub in command_parsers(build_parser())}
    nested = {"alerts retry", "rules list", "rules test", "api hash-token"}
    assert {"run", "doctor", "alerts", "migrate-store"} | nested <= set(commands)
    assert not {"rules", "api"} & set(commands), "groups that do not run by themselves"
    for name, sub in commands.items():
        assert {"--config", "-c"} <= set(sub._option_string_actions), name


def test_a_command_that_needs_no_config_checks_the_one_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``rules list --config`` runs with a valid config and stops at an invalid one."""
    assert main(["rules", "list", "--config", str(CONFIG)]) == EXIT_OK
    assert "cloudtrail_tampering" in capsys.readouterr().out
    broken = tmp_path / "broken.toml"
    broken.write_text("[daemon]\nno_such_key = 1\n")
    assert main(["rules", "list", "--config", str(broken)]) == EXIT_CONFIG
    assert "daemon.no_such_key: unknown key" in capsys.readouterr().err


def test_config_before_a_subcommand_is_kept() -> None:
    """``alerts --config X retry 3`` uses X: the subcommand's own --config default does not
    overwrite it, and its own --config still works."""
    parser = build_parser()
    before = parser.parse_args(["alerts", "--config", "x.toml", "retry", "3"])
    after = parser.parse_args(["alerts", "retry", "3", "--config", "y.toml"])
    assert (before.config, before.id) == ("x.toml", 3)
    assert after.config == "y.toml"


def test_a_group_alone_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """``rules`` and ``api`` run nothing by themselves: status 2 and the missing command."""
    for group in ("rules", "api"):
        with pytest.raises(SystemExit) as stopped:
            main([group])
        assert stopped.value.code == EXIT_CONFIG
        assert "required: COMMAND" in capsys.readouterr().err
