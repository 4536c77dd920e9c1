"""Tests-wide setup.

pytest puts the folder of a root conftest on ``sys.path``, so every test folder can
import the tests-wide support modules beside this file (``testdata``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from hypothesis import HealthCheck, settings

# Property tests check what parsers do, not how fast: on a shared two-core machine an
# example can take longer than hypothesis' default deadline of 200 ms.
settings.register_profile("auditcorr", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("auditcorr")


@pytest.fixture(autouse=True, scope="session")
def _loggers_never_cached() -> Iterator[None]:
    """The daemon caches each logger on first use; a test that runs the CLI in-process
    would leave loggers bound to its own, later closed, stream, and every later
    ``capture_logs`` would miss their lines. Tests keep loggers uncached."""
    configure = structlog.configure

    def uncached(*args: Any, **kwargs: Any) -> None:
        configure(*args, **{**kwargs, "cache_logger_on_first_use": False})

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(structlog, "configure", uncached)
        yield


@pytest.fixture(autouse=True)
def _root_log_handlers_restored() -> Iterator[None]:
    """A test that configures the daemon's logging points the root logger at its own
    captured stderr, which pytest closes after it; the next tests get the handlers
    from before."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
