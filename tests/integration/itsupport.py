"""Helpers for the integration tests: workspaces, the CLI as a subprocess, the daemon.

The CLI runs as users run it, as a subprocess with no terminal (so logs are JSON lines
on stderr); the daemon runs in a session of its own, so a finalizer can kill it
together with its worker processes.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import tomllib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import pytest

from daemon.logtypes import normalize_record
from daemon.normalize.alert import DATASET as ALERT_DATASET
from daemon.normalize.audit import DATASET as AUDIT_DATASET
from daemon.normalize.audit import SOURCE as AUDIT_SOURCE
from daemon.store.alert_events import SOURCE as ALERT_SOURCE

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
ORG = "o-test1234ab"
DAY_DIR = Path("AWSLogs", ORG, "111111111111", "CloudTrail", "us-east-1", "2026", "11", "20")
"""Where hand-made files go: a folder as an organization trail delivers it."""
ONE_TRAIL: dict[str, Any] = {"accounts": ["111111111111"], "regions": ["us-east-1"]}
"""ctgen arguments for records of one account and region, as DAY_DIR holds."""


def load_ctgen() -> ModuleType:
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    import ctgen

    return ctgen


# --------------------------------------------------------------------------- records


@dataclass
class Generated:
    """Records written into a tree, and the files they went to."""

    records: list[dict[str, Any]]
    paths: list[Path]

    @property
    def ids(self) -> set[str]:
        return {r["eventID"] for r in self.records}


def generate(
    ctgen: ModuleType,
    n: int,
    *,
    seed: int,
    start: datetime = datetime(2026, 11, 20, tzinfo=UTC),
    span: timedelta = timedelta(hours=1),
    **kwargs: Any,
) -> list[dict[str, Any]]:
    return list(ctgen.generate_records(n, start=start, span=span, seed=seed, **kwargs))


def write_tree(
    ctgen: ModuleType,
    root: Path,
    records: list[dict[str, Any]],
    *,
    per_file: int = 1000,
    seed: int = 0,
) -> Generated:
    paths = ctgen.write_tree(root, records, per_file=per_file, organization_id=ORG, seed=seed)
    return Generated(records, [Path(p) for p in paths])


def log_name(tag: str, suffix: str = ".json.gz") -> str:
    """A file name like CloudTrail's, with ``tag`` in place of the random part."""
    return f"111111111111_CloudTrail_us-east-1_20261120T0100Z_{tag}{suffix}"


def put_file(root: Path, name: str, data: bytes) -> Path:
    """Write ``data`` under the tree's day folder, atomically as ``aws s3 sync`` does."""
    folder = root / DAY_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    partial = folder / f".{name}.partial"
    partial.write_bytes(data)
    partial.rename(path)
    return path


def records_file(records: Iterable[Any], *, compress: bool = True) -> bytes:
    document = {"Records": list(records)}
    try:
        data = orjson.dumps(document)
    except TypeError:  # orjson stops at 255 levels; the stdlib writes deeper documents
        data = json.dumps(document, separators=(",", ":")).encode()
    return gzip.compress(data, compresslevel=1) if compress else data


# --------------------------------------------------------------------------- CLI


@dataclass
class CliResult:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def logs(self) -> list[dict[str, Any]]:
        return parse_logs(self.stderr)

    @property
    def summary(self) -> dict[str, float]:
        """The ``backfill: key=value ...`` line as numbers."""
        return parse_summary(self.stdout)

    def __str__(self) -> str:
        return (
            f"$ {' '.join(self.args)}\nexit {self.returncode}\n"
            f"--- stdout\n{self.stdout[-4000:]}\n--- stderr\n{self.stderr[-4000:]}"
        )


def parse_logs(text: str) -> list[dict[str, Any]]:
    """The JSON log lines of ``text``; anything else (a traceback) is skipped."""
    found = []
    for line in text.splitlines():
        if line.startswith("{"):
            with contextlib.suppress(orjson.JSONDecodeError):
                found.append(orjson.loads(line))
    return found


def parse_summary(stdout: str) -> dict[str, float]:
    lines = [line for line in stdout.splitlines() if line.startswith("backfill:")]
    assert lines, f"no 'backfill:' summary line in stdout:\n{stdout}"
    assert lines[-1] == stdout.rstrip("\n").splitlines()[-1], "the summary is not the last line"
    pairs = (part.partition("=") for part in lines[-1].removeprefix("backfill:").split())
    return {key: float(value) for key, _, value in pairs}


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"AUDITCORR_CONFIG", "COLUMNS", "LINES"}}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, str):
        return orjson.dumps(value).decode()  # a JSON string is a valid TOML basic string
    raise TypeError(f"no TOML for {value!r}")


def copy_demo_trail(workspace: Workspace) -> None:
    shutil.copytree(EXAMPLES / "demo" / "AWSLogs", workspace.data / "trail" / "AWSLogs")


def write_changes_demo(workspace: Workspace, extra: str = "", *, with_trail: bool = True) -> None:
    """The demo trail (unless ``with_trail`` is false: an empty folder for it) and the
    example change records as two sources, alice in the identity map; ``extra`` is
    appended to the config."""
    trail, changes = workspace.data / "trail", workspace.data / "changes"
    trail.mkdir(parents=True)
    if with_trail:
        copy_demo_trail(workspace)
    shutil.copytree(EXAMPLES / "changes", changes)
    workspace.config.write_text(
        f"""
[daemon]
state_dir = {toml_value(workspace.state)}
workers = 1

[store]
retention_days = 0

[sources.trail]
type = "cloudtrail_files"
path = {toml_value(trail)}
poll_interval_secs = 0.2

[sources.changes]
type = "changes_files"
path = {toml_value(changes)}
poll_interval_secs = 0.2

[[identity.people]]
id = "alice"
email = ["alice@example.com"]
unix = ["alice"]
"""
        + extra
    )


def bundled_demo(root: Path) -> Workspace:
    """A copy of the repository's config.toml and examples/ under ``root``, as a user
    has them, with the store in the workspace and the API on a free port."""
    workspace = Workspace(root)
    shutil.copytree(EXAMPLES / "demo", workspace.root / "examples" / "demo")
    shutil.copytree(EXAMPLES / "changes", workspace.root / "examples" / "changes")
    text = (REPO / "config.toml").read_text()
    assert tomllib.loads(text)["daemon"]["state_dir"] == "state", "the bundled state_dir moved"
    text = text.replace('state_dir = "state"', f'state_dir = "{workspace.state}"', 1).replace(
        'listen = "127.0.0.1:8080"', 'listen = "127.0.0.1:0"', 1
    )
    workspace.config.write_text(text)
    return workspace


def backfilled_demo(root: Path) -> tuple[Workspace, CliResult]:
    """The bundled demo as after ``make run``: backfilled."""
    workspace = bundled_demo(root)
    result = workspace.backfill()
    assert result.returncode == 0, str(result)
    return workspace, result


def auditcorr(*args: str, cwd: Path, timeout: float = 180) -> CliResult:
    """Run the CLI as ``python -m daemon.cli ARGS`` without a terminal."""
    argv = [sys.executable, "-m", "daemon.cli", *args]
    done = subprocess.run(
        argv,
        cwd=cwd,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return CliResult(argv, done.returncode, done.stdout, done.stderr)


@dataclass
class Workspace:
    """A temporary directory as an operator would lay it out."""

    root: Path
    data: Path = field(init=False)
    config: Path = field(init=False)
    state: Path = field(init=False)
    reader: Path | None = None
    """Config the timeline is read with, when ``config`` is being broken on purpose."""

    def __post_init__(self) -> None:
        self.data = self.root / "data"
        self.config = self.root / "config.toml"
        self.state = self.root / "state"
        self.data.mkdir(parents=True, exist_ok=True)

    @property
    def db(self) -> Path:
        return self.state / "timeline.db"

    def config_text(
        self,
        sources: dict[str, dict[str, Any]] | None = None,
        *,
        poll_interval_secs: float = 0.2,
        workers: int = 1,
    ) -> str:
        if sources is None:
            sources = {"ct_org": {"path": self.data}}
        lines = [
            "[daemon]",
            f"state_dir = {toml_value(self.state)}",
            'log_format = "auto"',
            f"workers = {workers}",
            "",
            "[store]",
            'type = "sqlite"',
            "retention_days = 0",
        ]
        for name, given in sources.items():
            lines += ["", f"[sources.{name}]", 'type = "cloudtrail_files"']
            settings = {"poll_interval_secs": poll_interval_secs, **given}
            lines += [f"{key} = {toml_value(value)}" for key, value in settings.items()]
        return "\n".join(lines) + "\n"

    def write_config(self, sources: dict[str, dict[str, Any]] | None = None, **kwargs: Any) -> None:
        self.config.write_text(self.config_text(sources, **kwargs))

    def cli(
        self, command: str, *args: str, config: Path | None = None, timeout: float = 180
    ) -> CliResult:
        config = config or self.config
        return auditcorr(command, "--config", str(config), *args, cwd=self.root, timeout=timeout)

    def backfill(self, *args: str) -> CliResult:
        return self.cli("backfill", *args)

    def timeline(self, *args: str) -> list[dict[str, Any]]:
        """ECS documents of ``auditcorr timeline --json`` (read with ``reader`` if set)."""
        result = self.cli("timeline", "--json", "--limit", "1000000", *args, config=self.reader)
        assert result.returncode == 0, str(result)
        return [orjson.loads(line) for line in result.stdout.splitlines()]

    def events_read(self, *args: str) -> list[dict[str, Any]]:
        """The timeline's events read from sources: alert and audit entries left out."""
        return [doc for doc in self.timeline(*args) if read_from_a_source(doc)]

    def timeline_ids(self, *args: str) -> list[str]:
        return [doc["event"]["id"] for doc in self.timeline(*args)]

    def count(self) -> int:
        return count_events(self.db)


def count_events(db: Path, table: str = "events") -> int:
    """Rows in ``table`` through a read-only connection beside the writer; 0 before it exists.

    Of ``events``, the events read from sources: the alerts' own timeline entries
    (source ``rules``) and the daemon's audit entries (source ``auditcorr``) are left out.
    """
    if not db.exists():
        return 0
    sql = f"SELECT count(*) FROM {table}"
    params: tuple[str, ...] = ()
    if table == "events":
        sql += " WHERE source NOT IN (?, ?)"
        params = (ALERT_SOURCE, AUDIT_SOURCE)
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)) as c:
            return int(c.execute(sql, params).fetchone()[0])
    except sqlite3.OperationalError as err:
        if "no such table" in str(err):
            return 0
        raise


def checkpoints(db: Path) -> dict[str, dict[str, Any]]:
    """Each source's committed checkpoints (key -> value), read beside the writer."""
    if not db.exists():
        return {}
    found: dict[str, dict[str, Any]] = {}
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)) as conn:
        try:
            rows = conn.execute("SELECT source, key, value FROM checkpoints").fetchall()
        except sqlite3.OperationalError as err:
            if "no such table" in str(err):
                return {}
            raise
    for source, key, value in rows:
        found.setdefault(source, {})[key] = orjson.loads(value)
    return found


def read_to_end(db: Path, source: str, *paths: Path) -> bool:
    """True once ``source`` committed, for each file it tails, the checkpoint of the last
    byte of the file now at that path: the tailer has nothing of it left to read.

    Checkpoints commit with their events, so what was read is stored by then; write a
    line after the data first, so that a truncated file too is read to a new end.
    """
    saved = checkpoints(db).get(source, {})
    for path in paths:
        value, now = saved.get(str(path)), path.stat()
        if value is None or (value["inode"], value["offset"]) != (now.st_ino, now.st_size):
            return False
    return True


def wait_for(
    what: str,
    predicate: Callable[[], Any],
    *,
    timeout: float,
    interval: float = 0.1,
    context: Callable[[], str] | None = None,
) -> Any:
    """Poll ``predicate`` until it returns something true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            detail = context() if context else ""
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}\n{detail}")
        time.sleep(interval)


# --------------------------------------------------------------------------- the daemon


def session_members(sid: int) -> list[tuple[int, str]]:
    """Live processes (pid, command line) of session ``sid``; zombies are left out."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        state, session = fields[0], int(fields[3])
        if session == sid and state != "Z":
            found.append((int(entry.name), cmdline))
    return found


class Daemon:
    """``auditcorr run`` as a child process in its own session (its pid is the group id)."""

    def __init__(self, workspace: Workspace, name: str, env: dict[str, str] | None = None) -> None:
        self.workspace = workspace
        self.log_path = workspace.root / f"{name}.log"
        self.env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Daemon:
        argv = [sys.executable, "-m", "daemon.cli", "run", "--config", str(self.workspace.config)]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                argv,
                cwd=self.workspace.root,
                env={**cli_env(), **self.env},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def logs(self) -> list[dict[str, Any]]:
        return parse_logs(self.log_path.read_text(errors="replace"))

    def events(self, name: str) -> list[dict[str, Any]]:
        return [entry for entry in self.logs() if entry.get("event") == name]

    def tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return f"--- {self.log_path.name} (last {lines} lines)\n" + "\n".join(
            text.splitlines()[-lines:]
        )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_started(self, timeout: float = 30) -> None:
        def started() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                pytest.fail(f"daemon exited with {self.proc.returncode}\n{self.tail()}")
            return bool(self.events("source_started"))

        wait_for("the daemon to start its sources", started, timeout=timeout, context=self.tail)

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, sig)

    def stop(self, timeout: float = 10, *, service: bool = False) -> int:
        """SIGTERM, then the exit code; fails if it does not exit within ``timeout``.
        With ``service`` every process of the daemon gets it, as systemd stops a service
        (``KillMode=control-group``): its workers and their fork server too."""
        assert self.proc is not None
        if service:
            os.killpg(self.proc.pid, signal.SIGTERM)
        else:
            self.signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"daemon still running {timeout:.0f}s after SIGTERM\n{self.tail()}")

    def kill_group(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)


def stored_documents(db: Path, limit: int = 10_000_000) -> list[dict[str, Any]]:
    """Stored ECS documents, decoded by the product's own read path, oldest first."""
    from daemon.store.base import EventQuery
    from daemon.store.sqlite import SqliteStore

    store = SqliteStore(db, retention_days=0, readonly=True, normalize=normalize_record)
    try:
        return store.search(EventQuery(limit=limit, order="oldest"))
    finally:
        store.close()


def read_from_a_source(doc: dict[str, Any]) -> bool:
    """An event a source read: neither an alert's entry nor the daemon's own audit entry."""
    return doc["event"]["dataset"] not in (ALERT_DATASET, AUDIT_DATASET)


def is_alert_entry(doc: dict[str, Any]) -> bool:
    """An alert's own entry on the timeline (raised or updated), not an event read."""
    return bool(doc["event"]["dataset"] == ALERT_DATASET)


def stored_ids(db: Path) -> Counter[str]:
    """How often each ``event.id`` of the events read from sources is stored."""
    return Counter(doc["event"]["id"] for doc in stored_documents(db) if read_from_a_source(doc))


def alert_entry_ids(db: Path) -> Counter[str]:
    """How often each alert entry (``<alert id>-<count>``) is stored."""
    return Counter(doc["event"]["id"] for doc in stored_documents(db) if is_alert_entry(doc))


def alerts_as_they_stand(db: Path) -> Counter[str]:
    """The entry id each stored alert has at its count now: what a backfill writes."""
    from daemon.store.sqlite import SqliteStore

    store = SqliteStore(db, retention_days=0, readonly=True, normalize=normalize_record)
    try:
        return Counter(f"{alert.id}-{alert.count}" for alert in store.alerts(limit=1_000_000))
    finally:
        store.close()
