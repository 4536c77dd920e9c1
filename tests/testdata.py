"""Where test inputs come from, and the one rule for what a test needs from outside.

What a test needs and may not find (a program, a server, a third-party corpus)
skips the test naming it, except under ``CI=true``, where it fails, so CI never
passes by skipping: ``unavailable()`` is that rule, ``need()`` and ``corpus()`` use it.

The project's own samples live in ``tests/samples/`` and are always there: the suite
covers every feature with them.  Third-party corpora (SigmaHQ rules, Panther's CloudTrail
cases, go-libaudit's audit logs; each listed with its origin in ``MANIFEST.tsv`` there)
sit beside the repository in ``../shared/data`` and widen some tests.  A fresh clone has
no ``../shared``: a test that needs a corpus then skips naming it, except under
``CI=true``, where it fails so CI never passes by skipping.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import NoReturn

import pytest

from daemon.rules import BUILTIN

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "tests" / "samples"
"""The project's own real-format samples."""
CORPORA = REPO.parent / "shared" / "data"
"""The third-party corpora, as CI lays them out beside the repository."""


def unavailable(what: str) -> NoReturn:
    """Skip the test because ``what`` is missing; under ``CI=true`` fail it instead."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} (CI must provide it: see .ci/run)")
    pytest.skip(what)


def need(program: str) -> str:
    """The path of ``program`` (also looked for in the sbin folders), or unavailable."""
    found = shutil.which(program) or next(
        (p for p in (f"/usr/sbin/{program}", f"/sbin/{program}") if os.access(p, os.X_OK)), None
    )
    if found is None:
        unavailable(f"{program} is not installed")
    return found


def corpus(name: str | Path) -> Path:
    """The path of a corpus file or folder (``"sigma/aws"``), or skip (fail under CI).

    Call it in the test or fixture that reads the corpus, never at import, so only
    the tests that need the corpus skip.
    """
    path = CORPORA / name
    if not path.exists():
        unavailable(f"third-party corpus {path.relative_to(CORPORA)} not found in {CORPORA}")
    return path


def corpus_files(name: str, pattern: str) -> list[Path]:
    """The corpus files matching ``pattern``, to parametrize a test over.

    Without the corpus this is its missing folder alone, so the test still runs and its
    ``corpus(path)`` call skips or fails naming it: an empty parameter list would skip
    silently, under CI too.
    """
    return sorted((CORPORA / name).glob(pattern)) or [CORPORA / name]


def input_file(path: Path) -> Path:
    """A test input given by its full path: one of ours as it is, a corpus file through
    ``corpus()``, for tests parametrized over both."""
    return path if path.is_relative_to(SAMPLES) else corpus(path)


RULE_PACKS = ["builtin", "builtin_and_sigmahq"]
"""Rule packs a test runs over: ours alone always, with SigmaHQ's when the corpus is there."""


def rule_pack(name: str) -> list[str]:
    """The rule paths of a pack in ``RULE_PACKS``: the built-in pack, or it with every
    SigmaHQ aws and linux rule (a corpus: skips or fails without it)."""
    if name == "builtin":
        return [BUILTIN]
    return [BUILTIN, str(corpus("sigma/aws")), str(corpus("sigma/linux"))]
