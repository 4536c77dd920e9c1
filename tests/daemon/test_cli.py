"""The ``auditcorr`` command line: options every command takes."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.cli import EXIT_CONFIG, EXIT_OK, _parser, command_parsers, main

CONFIG = Path(__file__).resolve().parents[2] / "config.toml"


def test_every_command_takes_config() -> None:
    """Each command that runs, nested ones included, accepts --config and -c."""
    commands = {sub.prog.removeprefix("auditcorr "): sub for sub in command_parsers(_parser())}
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
