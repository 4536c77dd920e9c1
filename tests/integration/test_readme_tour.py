"""The README's and the demo README's tours say what the commands print on the demo.

Every ``.venv/bin/auditcorr`` command in a ``sh`` block of those pages runs on a
backfilled copy of the demo and must succeed; where a ``text`` block follows the
command (nothing but blank lines between them), the command's output must match it.
A line ``...`` in a text block stands for any number of lines, ``...`` inside a
line for any text; a backfill's timing figures are not compared.  ``make run``'s
block is compared with the alerts the same console output prints during the
backfill, since both come from the same config.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from dataclasses import dataclass

import pytest
from itsupport import REPO, Workspace, auditcorr, backfilled_demo, cli_env

pytestmark = pytest.mark.integration

PAGES = ("README.md", "examples/demo/README.md")
CLI = ".venv/bin/auditcorr"
TIMINGS = re.compile(r"\b(seconds|events_per_sec)=\S+")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Shown:
    """A command of a page and the output the page shows for it, if any."""

    page: str
    command: str
    output: str | None

    def __str__(self) -> str:
        return f"{self.page}: {self.command}"


def shown(page: str) -> list[Shown]:
    """The page's commands in order, each with the text block right after it."""
    text = (REPO / page).read_text()
    blocks = [(m.group(1), m.group(2), m.start(), m.end()) for m in FENCE.finditer(text)]
    found = []
    for index, (kind, body, _, end) in enumerate(blocks):
        if kind != "sh":
            continue
        commands = [line.split("  #")[0].strip() for line in body.splitlines() if line.strip()]
        following = blocks[index + 1] if index + 1 < len(blocks) else None
        output = None
        if following and following[0] == "text" and not text[end : following[2]].strip():
            output = following[1]
        for command in commands:
            last = command is commands[-1]
            found.append(Shown(page, command, output if last else None))
    return found


def matches(expected: str, actual: str) -> bool:
    """``actual`` fits ``expected``, with ``...`` lines and ``...`` within lines as wildcards."""
    pattern = []
    for line in TIMINGS.sub(r"\1=", expected).splitlines():
        if line.strip() == "...":
            pattern.append(r"(?:[^\n]*\n)*?")
        else:
            pattern.append(".*".join(map(re.escape, line.split("..."))) + r"\n")
    return re.fullmatch("".join(pattern), TIMINGS.sub(r"\1=", actual), re.DOTALL) is not None


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, str]:
    """The backfilled demo, and what its console output printed during the backfill."""
    workspace, result = backfilled_demo(tmp_path_factory.mktemp("tour"))
    return workspace, result.stdout.rpartition("\nbackfill:")[0] + "\n"


TOUR = [
    item
    for page in PAGES
    for item in shown(page)
    if item.command.startswith(CLI) or (item.command == "make run" and item.output)
]


def test_the_tours_show_commands_with_their_output() -> None:
    """The pages hold the commands this test runs, most of them with their output."""
    assert len([item for item in TOUR if item.command.startswith(CLI)]) >= 15
    assert len([item for item in TOUR if item.output is not None]) >= 8


@pytest.mark.parametrize("item", TOUR, ids=str)
def test_the_page_says_what_the_command_prints(item: Shown, demo: tuple[Workspace, str]) -> None:
    """Each command of the tour succeeds on the demo and prints what the page shows."""
    workspace, console = demo
    argv = shlex.split(item.command)
    if argv[:2] == ["make", "run"]:
        actual = console
    else:
        assert "--config" in argv, f"{item}: every command of the tour names its config"
        at = argv.index("--config") + 1
        argv[at] = str(workspace.config)
        result = auditcorr(*argv[1:], cwd=workspace.root)
        assert result.returncode == 0, str(result)
        actual = result.stdout
    if item.output is not None:
        assert matches(item.output, actual), f"{item} printed:\n{actual}"


def test_wildcards_match_as_the_pages_use_them() -> None:
    """``...`` lines take any number of lines, ``...`` in a line any text, timings are free."""
    assert matches("a\n...\nz\n", "a\nb\nc\nz\n")
    assert matches("a\n...\nz\n", "a\nz\n")
    assert matches("what: An ... hours: ...\n", "what: An address in 6 hours: yes\n")
    assert matches("files=1 seconds=0.1\n", "files=1 seconds=12.5\n")
    assert not matches("a\nz\n", "a\nb\nz\n")
    assert not matches("files=1 seconds=0.1\n", "files=2 seconds=0.1\n")


@pytest.mark.parametrize("command", ["timeline", "whois", "export"])
def test_a_reader_that_stops_early_ends_the_command_quietly(
    command: str, demo: tuple[Workspace, str]
) -> None:
    """``auditcorr … | head -1``: the command exits 0 without a traceback."""
    workspace, _ = demo
    args = {"timeline": ["--limit", "1000"], "whois": ["alice"], "export": ["--format", "ndjson"]}[
        command
    ]
    argv = [sys.executable, "-m", "daemon.cli", command, "--config", str(workspace.config), *args]
    with subprocess.Popen(
        argv, cwd=workspace.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env()
    ) as proc:
        assert proc.stdout is not None
        assert proc.stderr is not None
        assert proc.stdout.readline()
        proc.stdout.close()
        errors = proc.stderr.read().decode()
        assert proc.wait(timeout=120) == 0, errors
    assert "Traceback" not in errors
