"""Config field types shared by connector models: paths relative to the config, secrets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError, create_model

from connectors.config import ConfigPath, ExistingDir, ExistingFile, Secret, SecretStr


def model(annotation: Any) -> type[BaseModel]:
    """A one-field model ``value: annotation``, built per test so a broken type fails one test."""
    built: type[BaseModel] = create_model("Probe", value=(annotation, ...))
    return built


def validate(annotation: Any, value: Any, base_dir: Path | None = None) -> Any:
    context = {"base_dir": base_dir} if base_dir is not None else None
    return model(annotation).model_validate({"value": value}, context=context).value  # type: ignore[attr-defined]


def error_of(annotation: Any, value: Any, base_dir: Path | None = None) -> dict[str, Any]:
    with pytest.raises(ValidationError) as caught:
        validate(annotation, value, base_dir)
    (error,) = caught.value.errors(include_url=False)
    return dict(error)


# -- ExistingDir -----------------------------------------------------------------


def test_existing_dir_relative_to_base_dir(tmp_path: Path) -> None:
    """A relative directory is looked up in, and resolved against, base_dir."""
    (tmp_path / "trail").mkdir()
    assert validate(ExistingDir, "trail", tmp_path) == tmp_path / "trail"


def test_existing_dir_absolute_is_kept(tmp_path: Path) -> None:
    """An absolute directory ignores base_dir; Path values are accepted too."""
    assert validate(ExistingDir, str(tmp_path), Path("/elsewhere")) == tmp_path
    assert validate(ExistingDir, tmp_path, Path("/elsewhere")) == tmp_path


def test_existing_dir_missing_names_the_value_as_written(tmp_path: Path) -> None:
    """A missing directory is a ``no_dir`` error quoting the value the operator wrote."""
    error = error_of(ExistingDir, "nope", tmp_path)
    assert error["type"] == "no_dir"
    assert error["msg"] == "no such directory 'nope'"


def test_existing_dir_rejects_a_file(tmp_path: Path) -> None:
    """A file where a directory is expected is not accepted."""
    (tmp_path / "trail.json").write_text("{}")
    assert error_of(ExistingDir, "trail.json", tmp_path)["type"] == "no_dir"


def test_existing_dir_without_context_uses_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a base_dir in the context a relative path is taken from the cwd."""
    (tmp_path / "trail").mkdir()
    monkeypatch.chdir(tmp_path)
    assert validate(ExistingDir, "trail") == Path("trail")
    assert error_of(ExistingDir, "absent")["type"] == "no_dir"


def test_existing_file(tmp_path: Path) -> None:
    """ExistingFile accepts a file relative to base_dir and refuses a directory."""
    (tmp_path / "rules.yml").write_text("title: x\n")
    assert validate(ExistingFile, "rules.yml", tmp_path) == tmp_path / "rules.yml"
    error = error_of(ExistingFile, ".", tmp_path)
    assert (error["type"], error["msg"]) == ("no_file", "no such file '.'")


# -- ConfigPath ------------------------------------------------------------------


def test_config_path_relative_to_base_dir_need_not_exist(tmp_path: Path) -> None:
    """A relative ConfigPath is joined to base_dir, whether or not it exists yet."""
    assert validate(ConfigPath, "state/timeline.db", tmp_path) == tmp_path / "state/timeline.db"


def test_config_path_absolute_is_kept() -> None:
    """An absolute ConfigPath stays as written."""
    assert validate(ConfigPath, "/var/lib/auditcorr", Path("/etc/auditcorr")) == Path(
        "/var/lib/auditcorr"
    )


def test_config_path_expands_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``~`` is the home directory, not a folder under base_dir."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert validate(ConfigPath, "~/state", Path("/etc/auditcorr")) == tmp_path / "home" / "state"


@pytest.mark.parametrize("value", ["", 42, ["state"], None])
def test_config_path_rejects_non_paths(value: Any) -> None:
    """Only a non-empty string (or Path) is a path."""
    error = error_of(ConfigPath, value, Path("/etc/auditcorr"))
    assert (error["type"], error["msg"]) == ("path_type", "expected a path as a string")


# -- SecretStr -------------------------------------------------------------------


def test_secret_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """``env:NAME`` takes the variable's value and remembers only the reference for display."""
    monkeypatch.setenv("AUDITCORR_TEST_SECRET", "swordfish")
    secret = validate(SecretStr, "env:AUDITCORR_TEST_SECRET")
    assert isinstance(secret, Secret)
    assert secret.reveal() == "swordfish"
    assert secret.reference == "env:AUDITCORR_TEST_SECRET"
    assert "swordfish" not in repr(secret)


def test_secret_from_missing_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unset variable is a ``secret_env`` error naming it."""
    monkeypatch.delenv("AUDITCORR_TEST_SECRET", raising=False)
    error = error_of(SecretStr, "env:AUDITCORR_TEST_SECRET")
    assert error["type"] == "secret_env"
    assert error["msg"] == "environment variable AUDITCORR_TEST_SECRET is not set"


def test_empty_env_variable_is_a_value(monkeypatch: pytest.MonkeyPatch) -> None:
    """A variable that is set but empty resolves to the empty string, not an error."""
    monkeypatch.setenv("AUDITCORR_TEST_SECRET", "")
    assert validate(SecretStr, "env:AUDITCORR_TEST_SECRET").reveal() == ""


def test_secret_from_file_relative_to_base_dir(tmp_path: Path) -> None:
    """``file:`` reads the file (relative to base_dir) without its trailing newline."""
    (tmp_path / "token").write_text("swordfish\n")
    secret = validate(SecretStr, "file:token", tmp_path)
    assert secret.reveal() == "swordfish"
    assert secret.reference == f"file:{tmp_path / 'token'}"
    assert validate(SecretStr, f"file:{tmp_path / 'token'}", Path("/x")).reveal() == "swordfish"


def test_secret_from_missing_file(tmp_path: Path) -> None:
    """An unreadable file is a ``secret_file`` error with the resolved path and the reason."""
    error = error_of(SecretStr, "file:absent", tmp_path)
    assert error["type"] == "secret_file"
    assert (
        error["msg"]
        == f"cannot read secret file '{tmp_path / 'absent'}': No such file or directory"
    )


def test_secret_inline_value() -> None:
    """A plain string is an inline secret, shown only as ``inline``."""
    secret = validate(SecretStr, "swordfish")
    assert secret.reveal() == "swordfish"
    assert repr(secret) == "Secret(inline)"


@pytest.mark.parametrize("value", [42, None, ["env:X"]])
def test_secret_rejects_non_strings(value: Any) -> None:
    """Only strings are secrets."""
    assert error_of(SecretStr, value)["type"] == "secret_type"


def test_secret_instance_passes_through() -> None:
    """An already-built Secret (e.g. from model_copy) is kept as it is."""
    given = Secret("swordfish", "env:X")
    assert validate(SecretStr, given) is given


def test_secret_equality_and_hash_follow_the_value() -> None:
    """Two secrets with the same value are equal whatever their reference."""
    assert Secret("a", "env:A") == Secret("a", "file:/run/a")
    assert Secret("a", "env:A") != Secret("b", "env:A")
    assert hash(Secret("a", "env:A")) == hash(Secret("a", "inline"))
    assert Secret("a", "env:A") != "a"


def test_secret_dump_never_contains_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dumping a model that holds a secret shows no value (python and JSON modes)."""
    monkeypatch.setenv("AUDITCORR_TEST_SECRET", "swordfish")
    probe = model(SecretStr).model_validate({"value": "env:AUDITCORR_TEST_SECRET"})
    assert "swordfish" not in repr(probe)
    assert "swordfish" not in str(probe.model_dump())
    assert "swordfish" not in probe.model_dump_json()
