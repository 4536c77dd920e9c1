"""Fixtures for the integration tests: the real ``auditcorr`` CLI in a temporary workspace.

Every test gets a directory of its own holding a ``config.toml``, a CloudTrail tree
written by ``examples/ctgen.py`` and the state directory.  Helpers live in
``itsupport.py`` beside this file.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from itsupport import Daemon, Workspace, load_ctgen


@pytest.fixture(scope="session")
def ctgen() -> ModuleType:
    return load_ctgen()


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path)


@pytest.fixture
def daemons() -> Iterator[Callable[[Workspace, str], Daemon]]:
    """Start daemons; every one is killed with its whole process group at teardown."""
    started: list[Daemon] = []

    def start(
        workspace: Workspace, name: str = "daemon", env: dict[str, str] | None = None
    ) -> Daemon:
        daemon = Daemon(workspace, name, env).start()
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.kill_group()
