"""Loading ``config.toml`` into typed, validated objects.

Everything wrong is reported at once, each with its TOML key path and a hint,
before anything starts: unknown keys, wrong types, missing files and secrets.
Connector sections are validated by the model their ``type`` names in the
registry.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
import socket
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from connectors import registry
from connectors.base import ConfigError
from connectors.config import (
    ConfigPath,
    ConnectorConfig,
    ExistingFile,
    Secret,
    SecretStr,
    SourceConfig,
    host_port,
)
from daemon import filters
from daemon.identity import IdentityMap
from daemon.identity import build as build_identity_map
from daemon.logtypes import normalize_record
from daemon.normalize.audit import SOURCE as AUDIT_SOURCE
from daemon.store.alert_events import SOURCE as ALERT_SOURCE
from daemon.store.open import StoreSettings
from daemon.timeparse import parse_duration

_ID = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
RESERVED_SOURCES = {
    ALERT_SOURCE: "alerts on the timeline are stored under it",
    AUDIT_SOURCE: "the daemon's own audit entries are stored under it",
}


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DaemonSection(Section):
    state_dir: ConfigPath = Field(default=Path("state"), validate_default=True)
    timezone: str = "UTC"
    log_format: Literal["auto", "json", "console"] = "auto"
    workers: int | None = Field(default=None, ge=1, le=64)
    """Processes that decode and normalize; default: one per core (at most 8)."""

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (examples: UTC, Asia/Tokyo)") from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class StoreSection(Section):
    type: Literal["sqlite", "postgresql"] = "sqlite"
    path: ConfigPath | None = None
    """SQLite only; default: ``timeline.db`` in ``[daemon].state_dir``."""
    dsn: SecretStr | None = Field(default=None, validate_default=True)
    """PostgreSQL only: a libpq connection string or URI (it may hold a password)."""
    pool_size: int = Field(default=2, ge=1, le=32)
    """Connections (SQLite: read-only ones) the HTTP API queries the store with."""
    retention_days: int = Field(default=90, ge=0)
    """Events older than this are pruned; 0 keeps everything."""

    @field_validator("path")
    @classmethod
    def _path_for_sqlite(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is not None and info.data.get("type") == "postgresql":
            raise ValueError('only for type = "sqlite"; PostgreSQL is reached through dsn')
        return value

    @field_validator("dsn")
    @classmethod
    def _dsn_for_postgresql(cls, value: Secret | None, info: ValidationInfo) -> Secret | None:
        kind = info.data.get("type")
        if kind == "postgresql" and value is None:
            raise ValueError(
                'required when type = "postgresql": a connection string such as'
                ' "postgresql://auditcorr@db.example.net/auditcorr", or "env:NAME" /'
                ' "file:/path" holding one'
            )
        if kind == "sqlite" and value is not None:
            raise ValueError('only for type = "postgresql"; SQLite uses path')
        return value


def _duration(value: str) -> str:
    parse_duration(value)
    return value


class RulesSection(Section):
    builtin: bool = True
    """Load the built-in rule pack besides ``paths``."""
    paths: list[ConfigPath] = []
    allowed_lateness: str = "20m"
    suppress_for: str = "1h"

    _check_lateness = field_validator("allowed_lateness", "suppress_for")(_duration)

    def rule_paths(self) -> list[str]:
        return (["builtin"] if self.builtin else []) + [str(path) for path in self.paths]


class UnixAccountSection(Section):
    name: str
    hosts: list[str] = []
    """Host name globs where this account is the person's; empty: every host."""


class Person(Section):
    id: str
    name: str | None = None
    unix: list[str | UnixAccountSection] = []
    """Account names, or ``{ name = "root", hosts = ["db-*"] }`` for some hosts only."""
    aws: list[str] = []
    """IAM user/role ARNs (globs allowed), role-session names, Identity Center e-mails or names."""
    email: list[str] = []
    groups: list[str] = []


class IdentitySection(Section):
    people: list[Person] = []

    @field_validator("people")
    @classmethod
    def _unique(cls, people: list[Person]) -> list[Person]:
        seen: set[str] = set()
        for person in people:
            if person.id in seen:
                raise ValueError(f"person id {person.id!r} appears twice")
            seen.add(person.id)
        return people

    def identity_map(self) -> IdentityMap:
        return build_identity_map(person.model_dump() for person in self.people)


_TOKEN_HASH = re.compile(r"^sha256:[0-9a-f]{64}$")
_HOST_NAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,62})?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62})?)*\.?$"
)


class ApiToken(Section):
    """A bearer token the API accepts, kept only as its hash."""

    name: str
    """Who holds it: shows in the access log."""
    role: Literal["reader", "changes", "admin"]
    hash: str
    """``sha256:<hex>`` as ``auditcorr api hash-token`` prints it."""

    @field_validator("hash")
    @classmethod
    def _hash(cls, value: str) -> str:
        if not _TOKEN_HASH.match(value):
            raise ValueError(
                "expected 'sha256:' and 64 hex digits; make one with 'auditcorr api hash-token'"
            )
        return value


_API_LISTEN = "host:port, e.g. 127.0.0.1:8080 or [::1]:8080"


class ApiSection(Section):
    listen: str = "127.0.0.1:8080"
    """``host:port``; the web page and the API are served here."""
    allowed_hosts: list[str] = []
    """DNS names clients reach the API by; a request naming another host is refused."""
    cert_file: ExistingFile | None = None
    """PEM certificate (chain): the API answers HTTPS."""
    key_file: ExistingFile | None = None
    client_ca_file: ExistingFile | None = None
    """Clients must present a certificate this CA issued."""
    allow_plain_http: bool = False
    """Accept tokens over plain HTTP on a non-loopback address (behind a TLS proxy)."""
    tokens: list[ApiToken] = []
    """Without a token, only clients on the loopback interface may read."""
    max_page_size: int = Field(default=1000, ge=1, le=10_000)
    max_body_bytes: int = Field(default=1 << 20, ge=1024)
    query_timeout_secs: float = Field(default=10.0, gt=0, le=300)

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        if not host_port(value, _API_LISTEN)[0]:
            raise ValueError(f"expected {_API_LISTEN}")
        return value

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        for name in value:
            if not _HOST_NAME.match(name):
                raise ValueError(
                    f"expected a host name without port, like api.example.com: {name!r}"
                )
        return [name.lower().rstrip(".") for name in value]

    @model_validator(mode="after")
    def _tls_pair(self) -> Self:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file: both or neither")
        if self.client_ca_file is not None and self.cert_file is None:
            raise ValueError("client_ca_file needs cert_file and key_file")
        return self

    @property
    def address(self) -> tuple[str, int]:
        return host_port(self.listen, _API_LISTEN)

    @property
    def on_loopback(self) -> bool:
        """Only this host can connect: a name or address of the loopback interface."""
        host = self.address[0]
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False


def plain_http_tokens(api: ApiSection, sources: dict[str, ConnectorConfig]) -> list[str]:
    """Where bearer tokens would cross the network unencrypted: the keys that hold them.

    Tokens are the API's own and those of push sources (a ``token`` field on a
    source served by the API); on loopback or with TLS they stay private.
    """
    if api.cert_file is not None or api.on_loopback:
        return []
    found = ["api.tokens"] if api.tokens else []
    found += [
        f"sources.{name}.token"
        for name, source in sources.items()
        if "token" in type(source).model_fields
    ]
    return found


class ClusterSection(Section):
    """Several daemons on one PostgreSQL store working as one (docs/scale.md)."""

    enabled: bool = False
    member: str | None = Field(default=None, min_length=1, max_length=200)
    """This daemon's name among the members; default: host name and state directory."""
    failover_secs: float = Field(default=15.0, ge=3.0, le=600.0)
    """How soon another member takes over the correlator from a leader that stopped."""


class TopLevel(Section):
    daemon: DaemonSection
    store: StoreSection = StoreSection()
    sources: dict[str, dict[str, Any]] = {}
    outputs: dict[str, dict[str, Any]] = {}
    rules: RulesSection = RulesSection()
    identity: IdentitySection = IdentitySection()
    api: ApiSection | None = None
    cluster: ClusterSection = ClusterSection()


@dataclass(frozen=True)
class Config:
    path: Path
    daemon: DaemonSection
    store: StoreSection
    sources: dict[str, ConnectorConfig]
    outputs: dict[str, ConnectorConfig]
    rules: RulesSection
    identity: IdentitySection
    api: ApiSection | None
    """None when the config has no ``[api]`` section: no HTTP server."""
    cluster: ClusterSection

    @property
    def store_path(self) -> Path:
        """Where the SQLite store is (or would be)."""
        return self.store.path or self.daemon.state_dir / "timeline.db"

    @property
    def member(self) -> str:
        """This daemon's name in a cluster: stable across restarts, so it finds its own leases."""
        return self.cluster.member or f"{socket.gethostname()}:{self.daemon.state_dir}"

    def store_settings(self) -> StoreSettings:
        """What ``open_store`` needs of this config, as plain values: the store knows no
        config."""
        return StoreSettings(
            path=self.store_path,
            dsn=self.store.dsn.reveal() if self.store.dsn is not None else None,
            retention_days=self.store.retention_days,
            state_dir=self.daemon.state_dir,
            member=self.member,
            normalize=normalize_record,
        )


class ConfigFileError(Exception):
    """Every problem found in one config file."""

    def __init__(self, path: Path, errors: list[ConfigError]) -> None:
        self.path = path
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


def load_config(path: Path) -> Config:
    """Read and validate; raises ConfigFileError listing every problem."""
    path = path.resolve() if path.exists() else path
    try:
        text = path.read_bytes()
    except OSError as err:
        problem = ConfigError("", f"cannot read {path}: {err.strerror}")
        raise ConfigFileError(path, [problem]) from err
    try:
        data = tomllib.loads(text.decode())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigFileError(path, [ConfigError("", f"{path}: not valid TOML: {err}")]) from err
    context = {"base_dir": path.parent}
    errors: list[ConfigError] = []
    # [daemon] is validated even when absent, so its default paths resolve
    # against the config file like written ones.
    data.setdefault("daemon", {})
    top: TopLevel | None = None
    try:
        top = TopLevel.model_validate(data, context=context)
    except ValidationError as err:
        errors.extend(_convert(err, (), TopLevel))
    # Connector sections are checked even when other sections have problems,
    # so one run of check-config lists everything.
    sources = _connectors("sources", _tables(data, "sources"), registry.SOURCES, context, errors)
    outputs = _connectors("outputs", _tables(data, "outputs"), registry.OUTPUTS, context, errors)
    if top is not None and top.cluster.enabled and top.store.type != "postgresql":
        errors.append(
            ConfigError(
                "cluster.enabled",
                "several daemons share one timeline only in a PostgreSQL store",
                hint='set [store] type = "postgresql" and dsn, or enabled = false',
            )
        )
    if top is not None and top.api is not None and not top.api.allow_plain_http:
        errors.extend(
            ConfigError(
                key,
                f"this token would travel over plain HTTP to {top.api.listen}",
                hint="set [api] cert_file and key_file, listen on 127.0.0.1, or, behind a"
                " TLS proxy, allow_plain_http = true",
            )
            for key in plain_http_tokens(top.api, sources)
        )
    if errors or top is None:
        raise ConfigFileError(path, errors)
    return Config(
        path=path,
        daemon=top.daemon,
        store=top.store,
        sources=sources,
        outputs=outputs,
        rules=top.rules,
        identity=top.identity,
        api=top.api,
        cluster=top.cluster,
    )


def _tables(data: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    found = data.get(kind, {})
    if not isinstance(found, dict):
        return {}
    return {name: table for name, table in found.items() if isinstance(table, dict)}


def _connectors(
    kind: str,
    tables: dict[str, dict[str, Any]],
    table: dict[str, str],
    context: dict[str, Any],
    errors: list[ConfigError],
) -> dict[str, ConnectorConfig]:
    found: dict[str, ConnectorConfig] = {}
    for name, section in tables.items():
        where = f"{kind}.{name}"
        if not _ID.match(name):
            errors.append(
                ConfigError(
                    where, "ids are lower-case snake_case", hint="e.g. ct_prod, bastion_auth"
                )
            )
            continue
        if kind == "sources" and name in RESERVED_SOURCES:
            errors.append(
                ConfigError(
                    where,
                    f"the source id {name!r} is reserved: {RESERVED_SOURCES[name]}",
                    hint="choose another id, e.g. rule_files",
                )
            )
            continue
        type_name = section.get("type")
        if not isinstance(type_name, str):
            errors.append(ConfigError(f"{where}.type", "missing required key", hint=_known(table)))
            continue
        if type_name not in table:
            errors.append(
                ConfigError(
                    f"{where}.type",
                    f"unknown {kind[:-1]} type {type_name!r}",
                    hint=_known(table, type_name),
                )
            )
            continue
        model: type[ConnectorConfig] = registry.load(table, type_name).config_model
        try:
            found[name] = model.model_validate(section, context=context)
        except ValidationError as err:
            errors.extend(_convert(err, (kind, name), model))
            continue
        errors.extend(_filter_errors(where, found[name]))
    return found


def _filter_errors(where: str, config: ConnectorConfig) -> list[ConfigError]:
    """A source's ``keep``/``drop`` expressions that do not compile, each at its key path."""
    if not isinstance(config, SourceConfig):
        return []
    return [
        ConfigError(
            f"{where}.{key}",
            message,
            hint="the timeline's search syntax: field:value, words, -term; see docs/filters.md",
        )
        for key, message in filters.problems(config.keep, config.drop)
    ]


def _known(table: Iterable[str], near: str | None = None) -> str:
    names = sorted(table)
    if not names:
        return "none are available yet"
    close = difflib.get_close_matches(near, names, n=1) if near else []
    if close:
        return f"did you mean {close[0]!r}? known: {', '.join(names)}"
    return f"known: {', '.join(names)}"


def _convert(
    err: ValidationError, prefix: tuple[str, ...], model: type[BaseModel]
) -> list[ConfigError]:
    out = []
    for item in err.errors(include_url=False):
        loc = tuple(str(p) for p in item["loc"])
        where = ".".join(prefix + loc)
        kind = item["type"]
        given = item.get("input")
        if kind == "extra_forbidden":
            fields = _fields_at(model, loc[:-1])
            hint = _known(fields, loc[-1]) if fields else None
            out.append(ConfigError(where, "unknown key", hint=hint))
        elif kind == "missing":
            out.append(ConfigError(where, "missing required key"))
        else:
            message = item["msg"].removeprefix("Value error, ")
            if kind not in {"no_dir", "no_file", "secret_env", "secret_file"} and not isinstance(
                given, dict
            ):
                message += f" (got {given!r})"
            out.append(ConfigError(where, message))
    return out


def _fields_at(model: type[BaseModel], loc: tuple[str, ...]) -> list[str]:
    """The keys allowed at ``loc`` inside ``model``, for "did you mean" hints."""
    current: Any = model
    for part in loc:
        info = getattr(current, "model_fields", {}).get(part)
        if info is None:
            return []
        current = info.annotation
    return list(getattr(current, "model_fields", {}))
