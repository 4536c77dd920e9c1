"""Loading config.toml: defaults, paths, every problem reported with its key path, secrets, CLI."""

from __future__ import annotations

import subprocess
import sys
import types
from collections.abc import Callable
from pathlib import Path
from textwrap import dedent
from typing import Literal

import pytest

from connectors import registry
from connectors.base import ConfigError, Emit, Source
from connectors.config import ConnectorConfig, Secret, SecretStr
from connectors.sources.cloudtrail_files import CloudtrailFilesConfig
from daemon.cli import main as cli_main
from daemon.config import ConfigFileError, load_config

REPO = Path(__file__).resolve().parents[2]
AUDITCORR = Path(sys.executable).with_name("auditcorr")

WriteConfig = Callable[[str], Path]


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "etc"
    (folder / "trail").mkdir(parents=True)
    return folder


@pytest.fixture
def write_config(config_dir: Path) -> WriteConfig:
    """Write TOML text (dedented) to ``config.toml`` in a folder that holds ``trail/``."""

    def write(text: str) -> Path:
        path = config_dir / "config.toml"
        path.write_text(dedent(text))
        return path

    return write


def problems(path: Path) -> list[ConfigError]:
    with pytest.raises(ConfigFileError) as caught:
        load_config(path)
    assert caught.value.path == path
    return caught.value.errors


# -- loading ---------------------------------------------------------------------


def test_bundled_config_loads() -> None:
    """The documented reference config in the repository loads as it is."""
    config = load_config(REPO / "config.toml")
    assert config.path == REPO / "config.toml"
    demo = config.sources["demo_trail"]
    assert isinstance(demo, CloudtrailFilesConfig)
    assert demo.path == REPO / "examples" / "demo"
    assert config.daemon.state_dir == REPO / "state"
    assert config.store_path == REPO / "state" / "timeline.db"


def test_defaults(write_config: WriteConfig) -> None:
    """An empty file is a valid config with documented defaults."""
    config = load_config(write_config(""))
    assert config.daemon.timezone == "UTC"
    assert config.daemon.log_format == "auto"
    assert config.daemon.workers is None
    assert config.store.type == "sqlite"
    assert config.store.path is None
    assert config.store.retention_days == 90
    assert config.store_path == config.daemon.state_dir / "timeline.db"
    assert config.rules.paths == []
    assert config.rules.allowed_lateness == "20m"
    assert config.rules.suppress_for == "1h"
    assert config.identity.people == []
    assert config.api is None  # no [api] section: no HTTP server
    assert config.sources == {}
    assert config.outputs == {}
    assert not config.cluster.enabled
    assert config.cluster.failover_secs == 15.0
    assert config.member.endswith(f":{config.daemon.state_dir}")


def test_default_state_dir_is_relative_to_the_config_file(
    write_config: WriteConfig, config_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without state_dir the store lands in ``state/`` beside the config, not in the cwd."""
    monkeypatch.chdir(tmp_path)
    config = load_config(write_config(""))
    assert config.daemon.state_dir == config_dir / "state"
    assert config.store_path == config_dir / "state" / "timeline.db"


def test_relative_paths_resolve_against_the_config_folder(
    write_config: WriteConfig, config_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Relative paths are taken from the config file's folder, whatever the working directory."""
    path = write_config(
        """
        [daemon]
        state_dir = "var/state"
        [store]
        path = "db/timeline.db"
        [rules]
        paths = ["rules", "/usr/share/auditcorr/rules"]
        [sources.ct_prod]
        type = "cloudtrail_files"
        path = "trail"
        """
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_config(Path("../etc/config.toml"))
    assert config.path == path
    assert config.daemon.state_dir == config_dir / "var" / "state"
    assert config.store_path == config_dir / "db" / "timeline.db"
    assert config.rules.paths == [config_dir / "rules", Path("/usr/share/auditcorr/rules")]
    assert config.sources["ct_prod"].path == config_dir / "trail"  # type: ignore[attr-defined]


def test_home_in_paths_is_expanded(
    write_config: WriteConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``~`` in a path means the home directory."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    config = load_config(write_config('[daemon]\nstate_dir = "~/auditcorr"\n'))
    assert config.daemon.state_dir == tmp_path / "home" / "auditcorr"


def test_full_config_loads(write_config: WriteConfig) -> None:
    """Every section of the documented shape is accepted together."""
    config = load_config(
        write_config(
            """
            [daemon]
            timezone = "Asia/Tokyo"
            log_format = "json"
            workers = 2
            [store]
            retention_days = 30
            [sources.ct_prod]
            type = "cloudtrail_files"
            path = "trail"
            poll_interval_secs = 5
            [rules]
            allowed_lateness = "15m"
            suppress_for = "2h"
            [[identity.people]]
            id = "alice"
            unix = ["asmith"]
            aws = ["alice.smith", "alice@example.com"]
            email = ["alice@example.com"]
            [api]
            listen = "0.0.0.0:9000"
            """
        )
    )
    assert str(config.daemon.zone) == "Asia/Tokyo"
    assert config.daemon.workers == 2
    assert config.store.retention_days == 30
    assert config.sources["ct_prod"].type == "cloudtrail_files"
    assert config.identity.people[0].aws == ["alice.smith", "alice@example.com"]
    assert config.api is not None
    assert config.api.listen == "0.0.0.0:9000"


# -- problems --------------------------------------------------------------------

SOURCE = '[sources.ct_prod]\ntype = "cloudtrail_files"\npath = "trail"\n'


@pytest.mark.parametrize(
    ("text", "where", "expected"),
    [
        pytest.param(
            "bogus = 1\n",
            "bogus",
            "bogus: unknown key (hint: known: ",
            id="unknown-top-level-key",
        ),
        pytest.param(
            '[daemon]\ntimezon = "UTC"\n',
            "daemon.timezon",
            "daemon.timezon: unknown key (hint: did you mean 'timezone'?",
            id="unknown-daemon-key",
        ),
        pytest.param(
            '[store]\nretention_days = "ten"\n',
            "store.retention_days",
            "store.retention_days: Input should be a valid integer",
            id="wrong-type",
        ),
        pytest.param(
            "[store]\nretention_days = -1\n",
            "store.retention_days",
            "store.retention_days: Input should be greater than or equal to 0",
            id="negative-retention",
        ),
        pytest.param(
            '[store]\ntype = "postgres"\n',
            "store.type",
            "store.type: Input should be 'sqlite' or 'postgresql'",
            id="unknown-store-type",
        ),
        pytest.param(
            '[store]\ntype = "postgresql"\n',
            "store.dsn",
            'store.dsn: required when type = "postgresql"',
            id="postgresql-without-dsn",
        ),
        pytest.param(
            '[store]\ntype = "postgresql"\ndsn = "env:AUDITCORR_TEST_UNSET_DSN"\n',
            "store.dsn",
            "store.dsn: environment variable AUDITCORR_TEST_UNSET_DSN is not set",
            id="postgresql-dsn-from-a-missing-variable",
        ),
        pytest.param(
            '[store]\ntype = "postgresql"\ndsn = "host=db"\npath = "t.db"\n',
            "store.path",
            'store.path: only for type = "sqlite"',
            id="postgresql-with-a-path",
        ),
        pytest.param(
            '[store]\ndsn = "host=db"\n',
            "store.dsn",
            'store.dsn: only for type = "postgresql"',
            id="sqlite-with-a-dsn",
        ),
        pytest.param(
            "[cluster]\nenabled = true\n",
            "cluster.enabled",
            "cluster.enabled: several daemons share one timeline only in a PostgreSQL store"
            ' (hint: set [store] type = "postgresql"',
            id="cluster-on-sqlite",
        ),
        pytest.param(
            "[cluster]\nfailover_secs = 1\n",
            "cluster.failover_secs",
            "cluster.failover_secs: Input should be greater than or equal to 3",
            id="cluster-failover-too-short",
        ),
        pytest.param(
            "[store]\npool_size = 0\n",
            "store.pool_size",
            "store.pool_size: Input should be greater than or equal to 1",
            id="no-pool",
        ),
        pytest.param(
            '[daemon]\ntimezone = "Mars/Olympus_Mons"\n',
            "daemon.timezone",
            "daemon.timezone: unknown time zone 'Mars/Olympus_Mons' (examples: UTC, Asia/Tokyo)",
            id="bad-timezone",
        ),
        pytest.param(
            '[daemon]\nlog_format = "xml"\n',
            "daemon.log_format",
            "daemon.log_format: Input should be 'auto', 'json' or 'console'",
            id="bad-log-format",
        ),
        pytest.param(
            '[rules]\nallowed_lateness = "soon"\n',
            "rules.allowed_lateness",
            "rules.allowed_lateness: not a duration: 'soon' (examples: 90s, 20m, 2h, 7d)",
            id="bad-duration",
        ),
        pytest.param(
            '[rules]\nsuppress_for = "99999999999d"\n',
            "rules.suppress_for",
            "rules.suppress_for: ",
            id="huge-duration",
        ),
        pytest.param(
            '[[identity.people]]\nname = "Alice"\n',
            "identity.people.0.id",
            "identity.people.0.id: missing required key",
            id="person-without-id",
        ),
        pytest.param(
            '[sources.ct_prod]\npath = "trail"\n',
            "sources.ct_prod.type",
            "sources.ct_prod.type: missing required key (hint: known: ",
            id="source-without-type",
        ),
        pytest.param(
            '[sources.ct_prod]\ntype = "cloudtrail_file"\npath = "trail"\n',
            "sources.ct_prod.type",
            "sources.ct_prod.type: unknown source type 'cloudtrail_file'"
            " (hint: did you mean 'cloudtrail_files'? known: ",
            id="unknown-source-type",
        ),
        pytest.param(
            '[outputs.ops_chat]\ntype = "slak"\n',
            "outputs.ops_chat.type",
            "outputs.ops_chat.type: unknown output type 'slak' (hint: did you mean 'slack'?",
            id="unknown-output-type",
        ),
        pytest.param(
            SOURCE + 'pathh = "trail"\n',
            "sources.ct_prod.pathh",
            "sources.ct_prod.pathh: unknown key (hint: did you mean 'path'?",
            id="unknown-source-key",
        ),
        pytest.param(
            '[sources.ct_prod]\ntype = "cloudtrail_files"\npath = "x"\n',
            "sources.ct_prod.path",
            "sources.ct_prod.path: no such directory 'x'",
            id="no-such-directory",
        ),
        pytest.param(
            '[sources.ct_prod]\ntype = "cloudtrail_files"\n',
            "sources.ct_prod.path",
            "sources.ct_prod.path: missing required key",
            id="source-missing-key",
        ),
        pytest.param(
            SOURCE + "poll_interval_secs = 0\n",
            "sources.ct_prod.poll_interval_secs",
            "sources.ct_prod.poll_interval_secs: Input should be greater than 0 (got 0)",
            id="source-value-out-of-range",
        ),
        pytest.param(
            '[sources.CT-Prod]\ntype = "cloudtrail_files"\npath = "trail"\n',
            "sources.CT-Prod",
            "sources.CT-Prod: ids are lower-case snake_case (hint: e.g. ct_prod, bastion_auth)",
            id="bad-source-id",
        ),
        pytest.param(
            '[sources.rules]\ntype = "cloudtrail_files"\npath = "trail"\n',
            "sources.rules",
            "sources.rules: the source id 'rules' is reserved: alerts on the timeline are stored"
            " under it (hint: choose another id, e.g. rule_files)",
            id="reserved-source-id",
        ),
    ],
)
def test_each_problem_names_its_key_path(
    write_config: WriteConfig, text: str, where: str, expected: str
) -> None:
    """A single problem is reported once, under its TOML key path, with a useful message."""
    (problem,) = problems(write_config(text))
    assert problem.path == where
    assert str(problem).startswith(expected)


def test_missing_directory_message_has_the_exact_shape(write_config: WriteConfig) -> None:
    """A missing source directory reads exactly as the value was written, without noise."""
    (problem,) = problems(
        write_config('[sources.ct_prod]\ntype = "cloudtrail_files"\npath = "x"\n')
    )
    assert str(problem) == "sources.ct_prod.path: no such directory 'x'"
    assert problem.message == "no such directory 'x'"
    assert problem.hint is None


def test_wrong_type_quotes_the_value(write_config: WriteConfig) -> None:
    """A value of the wrong type is quoted in the message so the operator finds it."""
    (problem,) = problems(write_config('[store]\nretention_days = "ten"\n'))
    assert "'ten'" in str(problem)


def test_a_listen_port_out_of_range_is_said_once_with_the_range(
    write_config: WriteConfig,
) -> None:
    """A port past 65535, in [api] or a listener source, names the valid range and quotes
    the value once."""
    path = write_config(
        """
        [sources.net]
        type = "syslog_udp"
        listen = "udp:127.0.0.1:99999"
        [api]
        listen = "127.0.0.1:99999"
        """
    )
    found = {problem.path: problem.message for problem in problems(path)}
    assert found == {
        "api.listen": "the port must be 1-65535, or 0 for any free port (got '127.0.0.1:99999')",
        "sources.net.listen": (
            "the port must be 1-65535, or 0 for any free port (got 'udp:127.0.0.1:99999')"
        ),
    }


def test_all_section_problems_are_listed(write_config: WriteConfig) -> None:
    """Several problems in the fixed sections are all reported in one go."""
    found = problems(
        write_config(
            """
            bogus = 1
            [daemon]
            timezon = "UTC"
            timezone = "Mars/Olympus_Mons"
            [store]
            retention_days = "ten"
            [rules]
            allowed_lateness = "soon"
            """
        )
    )
    assert {p.path for p in found} == {
        "bogus",
        "daemon.timezon",
        "daemon.timezone",
        "store.retention_days",
        "rules.allowed_lateness",
    }


def test_all_connector_problems_are_listed(write_config: WriteConfig) -> None:
    """Problems in several sources (and several in one source) are all reported."""
    found = problems(
        write_config(
            """
            [sources.ct_prod]
            type = "cloudtrail_files"
            path = "x"
            pathh = "trail"
            [sources.no_type]
            path = "trail"
            [sources.typo]
            type = "cloudtrail_file"
            [sources.CT-Prod]
            type = "cloudtrail_files"
            """
        )
    )
    assert [p.path for p in found] == [
        "sources.ct_prod.path",
        "sources.ct_prod.pathh",
        "sources.no_type.type",
        "sources.typo.type",
        "sources.CT-Prod",
    ]


def test_every_problem_in_the_file_is_listed_at_once(write_config: WriteConfig) -> None:
    """Problems in fixed sections do not hide those in sources: all come out together."""
    found = problems(
        write_config(
            """
            bogus = 1
            [daemon]
            timezon = "UTC"
            [store]
            retention_days = "ten"
            [sources.ct_prod]
            type = "cloudtrail_files"
            path = "x"
            [sources.typo]
            type = "cloudtrail_file"
            """
        )
    )
    assert {p.path for p in found} == {
        "bogus",
        "daemon.timezon",
        "store.retention_days",
        "sources.ct_prod.path",
        "sources.typo.type",
    }


def test_error_text_lists_every_problem(write_config: WriteConfig) -> None:
    """The exception's text has one line per problem, each starting with its key path."""
    with pytest.raises(ConfigFileError) as caught:
        load_config(write_config('[daemon]\ntimezon = "UTC"\n[store]\nretention_days = "ten"\n'))
    lines = str(caught.value).splitlines()
    assert len(lines) == 2
    assert sorted(line.split(":")[0] for line in lines) == [
        "daemon.timezon",
        "store.retention_days",
    ]


def test_invalid_toml_is_one_problem_with_its_position(write_config: WriteConfig) -> None:
    """A syntax error names the file and the line instead of raising from tomllib."""
    path = write_config('[daemon\nstate_dir = "state"\n')
    (problem,) = problems(path)
    assert problem.path == ""
    assert str(path) in str(problem)
    assert "not valid TOML" in str(problem)
    assert "line 1" in str(problem)


def test_missing_config_file(tmp_path: Path) -> None:
    """A config file that is not there is a config problem, not a traceback."""
    path = tmp_path / "absent.toml"
    (problem,) = problems(path)
    assert f"cannot read {path}" in str(problem)


# -- secrets ---------------------------------------------------------------------

PROBE_MODULE = "auditcorr_tests_secret_probe"


def register_secret_source(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register a test-only source type ``secret_probe`` whose config holds a secret ``token``."""

    class SecretProbeConfig(ConnectorConfig):
        type: Literal["secret_probe"] = "secret_probe"
        token: SecretStr

    class SecretProbeSource(Source):
        config_model = SecretProbeConfig

        async def run(self, emit: Emit) -> None:
            return None

    module = types.ModuleType(PROBE_MODULE)
    module.SecretProbeSource = SecretProbeSource  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, PROBE_MODULE, module)
    monkeypatch.setitem(registry.SOURCES, "secret_probe", f"{PROBE_MODULE}:SecretProbeSource")


def secret_config(write_config: WriteConfig, reference: str) -> Path:
    return write_config(f'[sources.vault]\ntype = "secret_probe"\ntoken = "{reference}"\n')


def test_env_secret_is_resolved_and_never_shown(
    write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``env:NAME`` reads the variable; the value appears in no repr or str."""
    register_secret_source(monkeypatch)
    monkeypatch.setenv("AUDITCORR_TEST_TOKEN", "hunter2-value")
    config = load_config(secret_config(write_config, "env:AUDITCORR_TEST_TOKEN"))
    token = config.sources["vault"].token  # type: ignore[attr-defined]
    assert token.reveal() == "hunter2-value"
    assert token.reference == "env:AUDITCORR_TEST_TOKEN"
    for shown in (repr(token), str(token), f"{token}", repr(config), str(config.sources)):
        assert "hunter2-value" not in shown


def test_missing_env_variable_is_named(
    write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unset variable is a problem at the key path that names the variable."""
    register_secret_source(monkeypatch)
    monkeypatch.delenv("AUDITCORR_TEST_UNSET", raising=False)
    (problem,) = problems(secret_config(write_config, "env:AUDITCORR_TEST_UNSET"))
    assert (
        str(problem) == "sources.vault.token: environment variable AUDITCORR_TEST_UNSET is not set"
    )


def test_file_secret_is_read_and_stripped(
    write_config: WriteConfig, config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``file:/path`` is read without its trailing newline; a relative path is from the config."""
    register_secret_source(monkeypatch)
    (config_dir / "credentials").mkdir()
    secret_file = config_dir / "credentials" / "token"
    secret_file.write_text("s3cr3t-from-file\n")
    absolute = load_config(secret_config(write_config, f"file:{secret_file}"))
    assert absolute.sources["vault"].token.reveal() == "s3cr3t-from-file"  # type: ignore[attr-defined]
    relative = load_config(secret_config(write_config, "file:credentials/token"))
    token = relative.sources["vault"].token  # type: ignore[attr-defined]
    assert token.reveal() == "s3cr3t-from-file"
    assert "s3cr3t-from-file" not in repr(token)


def test_missing_secret_file_is_a_problem(
    write_config: WriteConfig, config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unreadable secret file is a problem at the key path naming the file."""
    register_secret_source(monkeypatch)
    (problem,) = problems(secret_config(write_config, "file:/run/credentials/none/token"))
    assert problem.path == "sources.vault.token"
    assert str(problem) == (
        "sources.vault.token: cannot read secret file '/run/credentials/none/token':"
        " No such file or directory"
    )


def test_check_config_summary_hides_secrets(
    write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """check-config prints a secret as its reference, never its value."""
    register_secret_source(monkeypatch)
    monkeypatch.setenv("AUDITCORR_TEST_TOKEN", "hunter2-value")
    monkeypatch.setattr(cli_main, "configure", lambda *_args, **_kwargs: None)
    path = secret_config(write_config, "env:AUDITCORR_TEST_TOKEN")
    assert cli_main.main(["check-config", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "vault: secret_probe" in out
    assert "env:AUDITCORR_TEST_TOKEN" in out
    assert "hunter2-value" not in out


def test_postgresql_dsn_from_a_file_is_shown_without_its_password(
    write_config: WriteConfig,
    config_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A PostgreSQL store's dsn comes from a file; check-config names the database, not the
    password."""
    (config_dir / "dsn").write_text("postgresql://auditcorr:s3cret-pw@db.example.net/timeline\n")
    path = write_config('[store]\ntype = "postgresql"\ndsn = "file:dsn"\npool_size = 4\n')
    config = load_config(path)
    assert config.store.dsn is not None
    assert config.store.dsn.reveal().endswith("@db.example.net/timeline")
    assert config.store.pool_size == 4
    monkeypatch.setattr(cli_main, "configure", lambda *_args, **_kwargs: None)
    assert cli_main.main(["check-config", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "store: postgresql" in out
    assert "db.example.net" in out
    assert "s3cret-pw" not in out


@pytest.mark.parametrize("reference", ["env:SOME_TOKEN", "file:/run/credentials/x", "inline"])
def test_secret_repr_never_contains_the_value(reference: str) -> None:
    """repr, str and format of a Secret show where it came from, not what it is."""
    secret = Secret("correct horse battery staple", reference)
    for shown in (repr(secret), str(secret), f"{secret}", format(secret), f"{secret!r}"):
        assert "correct horse" not in shown
        assert reference in shown
    assert secret.reveal() == "correct horse battery staple"


# -- CLI -------------------------------------------------------------------------


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    assert AUDITCORR.exists(), f"{AUDITCORR} missing: is the package installed in this venv?"
    return subprocess.run(
        [str(AUDITCORR), *args], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.integration
def test_cli_check_config_accepts_a_valid_file(write_config: WriteConfig) -> None:
    """``auditcorr check-config`` exits 0 and prints a summary of a valid file."""
    path = write_config("[store]\nretention_days = 30\n" + SOURCE)
    result = run_cli("check-config", "--config", str(path))
    assert result.returncode == 0, result.stderr
    assert f"{path}: valid" in result.stdout
    assert "retention 30 days" in result.stdout
    assert "sources: 1" in result.stdout
    assert "ct_prod: cloudtrail_files" in result.stdout


@pytest.mark.integration
def test_cli_check_config_reports_problems_with_exit_2(write_config: WriteConfig) -> None:
    """``auditcorr check-config`` exits 2 and prints each problem's key path on stderr."""
    path = write_config(
        '[sources.ct_prod]\ntype = "cloudtrail_files"\npath = "x"\npoll_interval = 5\n'
    )
    result = run_cli("check-config", "--config", str(path))
    assert result.returncode == 2
    assert result.stdout == ""
    assert f"{path}: 2 problem(s) found" in result.stderr
    assert "sources.ct_prod.path: no such directory 'x'" in result.stderr
    assert "sources.ct_prod.poll_interval: unknown key" in result.stderr
    assert "Traceback" not in result.stderr
