"""The ``auditcorr`` command line: options every command takes."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.cli import EXIT_CONFIG, EXIT_OK, _parser, leaf_parsers, main

CONFIG = Path(__file__).resolve().parents[2] / "config.toml"


def test_every_command_takes_config() -> None:
    """Each command that runs, nested ones included, accepts --config and -c."""
    leaves = {leaf.prog.removeprefix("auditcorr "): leaf for leaf in leaf_parsers(_parser())}
    assert {"run", "doctor", "rules list", "rules test", "migrate-store", "api hash-token"} <= set(
        leaves
    )
    for name, leaf in leaves.items():
        assert {"--config", "-c"} <= set(leaf._option_string_actions), name


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
