"""Config field types shared by connector models (and the daemon's own sections).

Relative paths are resolved against the config file's directory, which the
loader passes as validation context ``base_dir``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError, core_schema


def _base_dir(info: ValidationInfo) -> Path:
    context = info.context or {}
    return Path(context.get("base_dir", "."))


def _resolve(value: Any, info: ValidationInfo) -> Path:
    if not isinstance(value, str | Path) or str(value) == "":
        raise PydanticCustomError("path_type", "expected a path as a string")
    path = Path(value).expanduser()
    return path if path.is_absolute() else _base_dir(info) / path


def _existing_dir(value: Any, info: ValidationInfo) -> Path:
    path = _resolve(value, info)
    if not path.is_dir():
        raise PydanticCustomError("no_dir", "no such directory '{path}'", {"path": str(value)})
    return path


def _existing_file(value: Any, info: ValidationInfo) -> Path:
    path = _resolve(value, info)
    if not path.is_file():
        raise PydanticCustomError("no_file", "no such file '{path}'", {"path": str(value)})
    return path


ConfigPath = Annotated[Path, BeforeValidator(_resolve)]
"""A path, relative to the config file when not absolute."""
ExistingDir = Annotated[Path, BeforeValidator(_existing_dir)]
ExistingFile = Annotated[Path, BeforeValidator(_existing_file)]


class Secret:
    """A value that never shows in logs, reprs or config summaries.

    Written in config as ``env:NAME`` (an environment variable), ``file:/path``
    (a file's content, as systemd's ``LoadCredential=`` provides), or inline.
    """

    __slots__ = ("_value", "reference")

    def __init__(self, value: str, reference: str) -> None:
        self._value = value
        self.reference = reference

    def reveal(self) -> str:
        return self._value

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        # Dumps (config summaries) show where the value comes from, never the value.
        return core_schema.is_instance_schema(
            cls,
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda secret: secret.reference if secret.reference != "inline" else "***"
            ),
        )

    def __repr__(self) -> str:
        return f"Secret({self.reference})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def _secret(value: Any, info: ValidationInfo) -> Secret:
    if isinstance(value, Secret):
        return value
    if not isinstance(value, str):
        raise PydanticCustomError(
            "secret_type", "expected a string: env:NAME, file:/path or a value"
        )
    if value.startswith("env:"):
        name = value[4:]
        found = os.environ.get(name)
        if found is None:
            raise PydanticCustomError(
                "secret_env", "environment variable {name} is not set", {"name": name}
            )
        return Secret(found, f"env:{name}")
    if value.startswith("file:"):
        path = _resolve(value[5:], info)
        try:
            content = path.read_text().rstrip("\n")
        except OSError as err:
            raise PydanticCustomError(
                "secret_file",
                "cannot read secret file '{path}': {error}",
                {"path": str(path), "error": err.strerror or str(err)},
            ) from err
        return Secret(content, f"file:{path}")
    return Secret(value, "inline")


SecretStr = Annotated[Secret, BeforeValidator(_secret)]


def host_port(text: str, form: str) -> tuple[str, int]:
    """``HOST:PORT`` of a ``listen`` setting (``[::1]:514`` for IPv6) as (host, port).

    Raises ValueError saying ``expected {form}`` when there is no port, and the
    valid range when the port is past it; port 0 asks the kernel for a free one.
    """
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"expected {form}")
    if int(port) > 65535:
        raise ValueError("the port must be 1-65535, or 0 for any free port")
    return host.strip("[]"), int(port)


class ConnectorConfig(BaseModel):
    """Base of every connector's config model: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str


class SourceConfig(ConnectorConfig):
    """Settings every source has; the daemon applies them in its decode workers."""

    keep: list[str] = []
    """Search expressions: store only events matching one of them (empty: every event)."""
    drop: list[str] = []
    """Search expressions: never store an event matching any of them."""

    def selection(self) -> dict[str, Any]:
        """Settings the log type's decoder checks on each raw record before normalizing
        (see ``selector`` in daemon/normalize/); none by default."""
        return {}


CloudtrailCategory = Literal["Management", "Data", "Insight", "NetworkActivity"]


class CloudtrailSourceConfig(SourceConfig):
    """Settings of every CloudTrail source: which records to read, chosen on the raw record."""

    event_categories: list[CloudtrailCategory] = []
    """Only records of these ``eventCategory`` values (empty: all)."""
    read_only: bool | None = None
    """Only records whose ``readOnly`` is this (unset: both)."""

    def selection(self) -> dict[str, Any]:
        chosen: dict[str, Any] = {}
        if self.event_categories:
            chosen["event_categories"] = list(self.event_categories)
        if self.read_only is not None:
            chosen["read_only"] = self.read_only
        return chosen


_QUIET = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")
SeverityName = Literal["informational", "low", "medium", "high", "critical"]


class OutputConfig(ConnectorConfig):
    """Settings every output has: its target, routing, and delivery budget.

    The daemon applies them; an output's own model adds its protocol settings.
    """

    endpoint: str
    min_severity: SeverityName = "informational"
    include_rules: list[str] = []
    """Only these rule ids (empty: all)."""
    exclude_rules: list[str] = []
    include_tags: list[str] = []
    """Only alerts with one of these ATT&CK tags or a tag under them (empty: all)."""
    exclude_tags: list[str] = []
    environments: list[Literal["cloud", "on-prem", "hybrid"]] = []
    """Only alerts of these environments (empty: all)."""
    quiet_hours: str | None = None
    """``HH:MM-HH:MM`` in the daemon's time zone: alerts are held and sent as one digest after."""
    quiet_hours_min_severity: SeverityName = "critical"
    """Alerts of this severity or above go out during quiet hours too."""
    max_messages_per_minute: int | None = Field(default=None, ge=1)
    """Over this, waiting alerts are grouped into one summary message."""
    concurrency: int = Field(default=4, ge=1, le=64)
    timeout_secs: float = Field(default=10.0, gt=0)
    max_age_secs: float = Field(default=86400.0, gt=0)
    """After this long without success a delivery is marked failed (and kept)."""

    @field_validator("quiet_hours")
    @classmethod
    def _quiet(cls, value: str | None) -> str | None:
        if value is not None and not _QUIET.match(value):
            raise ValueError("expected HH:MM-HH:MM, e.g. 22:00-07:00")
        return value

    def quiet_span(self) -> tuple[int, int] | None:
        """Quiet hours as minutes of the day (start, end); the span may wrap midnight."""
        found = _QUIET.match(self.quiet_hours or "")
        if found is None:
            return None
        hour, minute, end_hour, end_minute = (int(part) for part in found.groups())
        return hour * 60 + minute, end_hour * 60 + end_minute
