"""Real authentication lines per program and distribution family (auth_lines/*.jsonl).

Each line of a corpus file is ``{"family", "line", "expect"}``: a line as the
host wrote it (Debian/Ubuntu auth.log, RHEL secure, RHEL 4's ``name(pam_x)``,
Solaris, BSD, OpenWrt/Alpine dropbear, journal exports) and the ECS fields its
event must have (``null``: the field must be absent).  ``pending`` names the
other issue a line waits for; the test then fails once the line passes, so the
mark goes when that issue lands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from normsupport import flat

from connectors.syslog.batch import header
from daemon import logtypes
from daemon.normalize import Limits, syslog

CORPUS = Path(__file__).parent / "auth_lines"
RECEIVED_NS = 1_764_244_800 * 10**9


def corpus() -> list[Any]:
    cases = []
    for path in sorted(CORPUS.glob("*.jsonl")):
        for number, text in enumerate(path.read_text().splitlines(), 1):
            case = orjson.loads(text)
            pending = case.get("pending")
            marks = [pytest.mark.xfail(reason=pending, strict=True)] if pending else []
            cases.append(pytest.param(case, id=f"{path.stem}:{number}", marks=marks))
    return cases


def nested(line: str) -> dict[str, Any]:
    [record] = syslog.decode(header(RECEIVED_NS, "UTC") + line.encode(), Limits())
    document: dict[str, Any] = syslog.normalize(record).to_document()
    return document


def document(line: str) -> dict[str, Any]:
    return flat(nested(line))


@pytest.mark.parametrize("case", corpus())
def test_line_has_its_expected_fields(case: dict[str, Any]) -> None:
    """A real line of a known program normalizes to the ECS fields the corpus names."""
    got = document(case["line"])
    assert {key: got.get(key) for key in case["expect"]} == case["expect"]
    assert "labels.parse_error" not in got


def test_every_program_file_spans_families() -> None:
    """Each program's corpus holds lines of more than one distribution family."""
    for path in CORPUS.glob("*.jsonl"):
        families = {orjson.loads(text)["family"] for text in path.read_text().splitlines()}
        assert len(families) > 1, path.name


def test_account_changes_are_changes() -> None:
    """Every account change of the corpus that succeeded is a candidate of unapproved_change."""
    lines = (CORPUS / "accounts.jsonl").read_text().splitlines()
    for case in map(orjson.loads, lines):
        succeeded = case["expect"].get("event.outcome") != "failure"
        assert logtypes.is_change(nested(case["line"])) is succeeded, case["line"]
