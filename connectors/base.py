"""The contract between the daemon and its connectors.

A source is a transport: it reads raw payloads, tags them with their log type
and says where it got to (a checkpoint).  The daemon decodes, normalizes and
stores them, committing the checkpoint in the same transaction as the events,
and only then resolves the future ``emit`` returned, so a source that must
acknowledge upstream (delete an SQS message) can wait for it.

Errors are grouped by what the caller does next, not by where they came from.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self

if TYPE_CHECKING:
    # Not imported at run time: decoding worker processes load this module to
    # unpickle batches and stay small without pydantic and asyncio.
    import asyncio

    from connectors.config import ConnectorConfig

JSON = dict[str, Any]


class AuditcorrError(Exception):
    """Base of the errors below."""


class ConfigError(AuditcorrError):
    """Stop at start: the configuration is wrong.  ``path`` is the TOML key path."""

    def __init__(self, path: str, message: str, hint: str | None = None) -> None:
        self.path = path
        self.message = message
        self.hint = hint
        text = f"{path}: {message}" if path else message
        if hint:
            text += f" (hint: {hint})"
        super().__init__(text)


class TransientError(AuditcorrError):
    """Retry with full-jitter backoff: timeouts, throttling, a peer restarting."""


class AuthError(AuditcorrError):
    """Credentials refused: retry with a long backoff and log loudly."""


class ThrottledError(TransientError):
    """The peer asked to be left alone for a while (HTTP 429/503 with ``Retry-After``)."""

    def __init__(self, message: str, *, retry_after_secs: float | None = None) -> None:
        self.retry_after_secs = retry_after_secs
        super().__init__(message)


class PermanentError(AuditcorrError):
    """Retrying cannot help: count it and drop the work item."""


class NormalizationError(AuditcorrError):
    """One bad record or payload: count it, quarantine it, go on.

    ``position`` says where in the payload (record index or byte offset);
    ``raw`` carries the offending bytes when they are known.
    """

    def __init__(self, reason: str, *, position: int | None = None, raw: bytes | None = None):
        self.reason = reason
        self.position = position
        self.raw = raw
        super().__init__(reason)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Where a source got to under one key (a file, a shard, an account/region)."""

    key: str
    value: JSON


@dataclass(slots=True)
class RawBatch:
    """One payload as a source read it, not yet decoded."""

    log_type: str
    """Which normalizer applies: ``cloudtrail``, ``syslog``, ``auditd``, ``change``."""
    origin: str
    """Where it came from, for logs and quarantine: a path, ``s3://bucket/key``, a peer."""
    payload: bytes
    checkpoints: list[Checkpoint] = field(default_factory=list)
    """Committed together with the events decoded from ``payload``."""
    error: str | None = None
    """Set when the source could not read the payload at all (it is quarantined)."""


Emit = Callable[[RawBatch], Awaitable["asyncio.Future[None]"]]
"""Hand a batch to the pipeline; waits while queues are full (backpressure).

The returned future resolves once the batch's events and checkpoints are
committed to the store.
"""


@dataclass(frozen=True, slots=True)
class IntakeRequest:
    """An HTTP request the daemon's API server received for a push source."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    peer: str


@dataclass(frozen=True, slots=True)
class IntakeResponse:
    status: int
    body: JSON


IntakeHandler = Callable[[IntakeRequest], Awaitable[IntakeResponse]]


class Intake(abc.ABC):
    """Routes of the daemon's HTTP server that push sources (``changes_http``) serve.

    The server applies the route's body-size limit and its time limit before
    calling the handler; authentication is the handler's, as each source has
    its token.
    """

    @abc.abstractmethod
    def route(
        self, method: str, path: str, handler: IntakeHandler, *, max_body_bytes: int
    ) -> Callable[[], None]:
        """Serve ``method path`` with ``handler`` until the returned callable is called;
        larger bodies are refused (413) before the handler sees them."""


@dataclass(frozen=True, slots=True)
class Check:
    """One line of ``auditcorr doctor``: what was checked, whether it holds, what to do if not."""

    name: str
    """What was checked, short: ``path readable``, ``s3:GetObject on org-trail-logs``."""
    ok: bool
    detail: str = ""
    """What was found: ``/srv/cloudtrail: 1520 log files``, or the error."""
    hint: str | None = None
    """On failure: what the operator should do about it."""


@dataclass(frozen=True, slots=True)
class SourceContext:
    """What the daemon tells a source when it starts."""

    source_id: str
    checkpoints: Mapping[str, JSON]
    """The committed checkpoints of this source, by key."""
    mode: Literal["follow", "backfill"] = "follow"
    """``backfill``: read what is there now, then return from ``run``."""
    since: datetime | None = None
    until: datetime | None = None
    intake: Intake | None = None
    """The daemon's HTTP server, for sources that receive pushes; None without ``[api]``."""


class _Lifecycle:
    """``async with`` opens clients and sockets; leaving it calls ``aclose``."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close what ``__aenter__`` or the work opened; the default has nothing open."""


@dataclass(frozen=True, slots=True)
class Metric:
    """One sample a source publishes on ``/metrics``; the daemon adds the ``source`` label."""

    name: str
    """Without the ``auditcorr_`` prefix, e.g. ``syslog_messages_total``."""
    value: float
    labels: dict[str, str] = field(default_factory=dict)
    help: str = ""
    kind: Literal["counter", "gauge"] = "counter"


class Source(_Lifecycle, abc.ABC):
    """A transport that yields raw payloads.

    ``__init__`` does no I/O; ``async with`` opens clients; ``run`` is one long
    coroutine in which cancellation means shutdown.
    """

    config_model: ClassVar[type[ConnectorConfig]]

    def __init__(self, config: Any, context: SourceContext) -> None:
        self.config = config
        self.context = context

    @abc.abstractmethod
    async def run(self, emit: Emit) -> None:
        """Read and emit until cancelled (or, in backfill mode, until caught up)."""

    async def checks(self) -> list[Check]:
        """What ``auditcorr doctor`` should verify for this source; none by default.

        Called on a fresh instance (no checkpoints, never entered with ``async
        with``): open what the checks need and close it before returning.  Only
        look, never change anything upstream: dry calls, HEADs, listing one
        object, a connect without sending.  Each check is one ``Check`` naming
        what it tested, with a hint on failure; an expected failure (access
        denied, unreachable) is a failed ``Check``, not an exception.  The
        doctor gives each source 30 seconds and reports an exception as a
        failed check.
        """
        return []

    def metrics(self) -> list[Metric]:
        """What this source counts, for ``/metrics``; nothing by default."""
        return []


# -- outputs -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Notification:
    """One message an output delivers.

    ``alert``: one alert.  ``digest``: the alerts held during quiet hours.
    ``summary``: alerts grouped because the output's rate limit was reached.
    ``alerts`` are documents in the alert schema (``docs/outputs.md``).
    """

    kind: Literal["alert", "digest", "summary"]
    alerts: list[JSON]
    key: str
    """Idempotency key: the alert id, or for a group a hash of its alert ids."""


@dataclass(frozen=True, slots=True)
class OutputContext:
    """What the daemon tells an output when it starts."""

    output_id: str
    timezone: str = "UTC"
    """Zone name for local times in messages (next to UTC)."""


class Output(_Lifecycle, abc.ABC):
    """Delivers notifications to one channel.

    The daemon owns retries, backoff, routing and concurrency: ``send`` makes
    one attempt and raises ``TransientError`` (``ThrottledError`` with the
    peer's wait), ``AuthError`` or ``PermanentError`` when it did not land.
    ``send`` may run concurrently, up to the output's ``concurrency``.
    """

    config_model: ClassVar[type[ConnectorConfig]]

    def __init__(self, config: Any, context: OutputContext) -> None:
        self.config = config
        self.context = context

    @abc.abstractmethod
    async def send(self, notification: Notification) -> None:
        """Deliver once; return only when the channel accepted it."""

    async def checks(self) -> list[Check]:
        """What ``auditcorr doctor`` should verify for this output; none by default.

        The contract of ``Source.checks()``: a fresh instance, never entered;
        only look — resolve, connect, handshake, log in — and never send an
        alert; an unreachable channel is a failed ``Check`` with a hint.
        """
        return []
