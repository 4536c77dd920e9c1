"""Every SigmaHQ aws/cloudtrail rule: our engine against pySigma's SQLite backend.

The same CloudTrail records (the Panther corpus, generated background
activity, and one probe record per rule built from its own values so that
every rule has something to match) are normalized by the real normalizer and
matched by the engine, and loaded into SQLite, one column per dotted field
of the original record, and selected by the query ``pysigma-backend-sqlite``
makes of the rule.  The matched records must be the same.

Where Sigma's semantics and the backend differ, the table is made so the
backend follows Sigma: columns compare with ``COLLATE NOCASE`` (Sigma strings
are case-insensitive; SQLite's ``=`` is not).  One difference remains
and is checked: SQLite column names ignore case, so the backend reads a
record's ``userIdentity.sessioncontext`` as ``sessionContext``; Sigma field
names, like JSON keys, are case-sensitive.  A few Panther records spell keys
in lower case: on those records (``folded``) the backend may match where
the engine rightly does not.
"""

from __future__ import annotations

import importlib.util
import re
import sqlite3
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import pytest
from sigma.backends.sqlite import sqliteBackend
from sigma.collection import SigmaCollection
from sigma.conditions import ConditionFieldEqualsValueExpression
from sigma.types import SigmaString, SpecialChars
from testdata import corpus, corpus_files

from connectors.base import NormalizationError
from daemon.normalize import cloudtrail
from daemon.rules.detect import Detector
from daemon.rules.loader import load_rules

REPO = Path(__file__).resolve().parents[3]
RULES = corpus_files("sigma/aws", "*.yml")
"""SigmaHQ's aws/cloudtrail rules, a corpus (see tests/testdata.py)."""


def _ctgen() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ctgen", REPO / "examples" / "ctgen.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["ctgen"] = module
    spec.loader.exec_module(module)
    return module


def _example(value: SigmaString) -> str:
    return "".join(
        part if isinstance(part, str) else "x" if part is SpecialChars.WILDCARD_SINGLE else "xy"
        for part in value.s
    )


def _set(record: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = record
    for name in parents:
        node = node.setdefault(name, {})
        if not isinstance(node, dict):
            return
    node.setdefault(leaf, value)


def _probe(path: Path, number: int) -> dict[str, Any]:
    """A record carrying the first value the rule names for each of its fields."""
    record: dict[str, Any] = {
        "eventVersion": "1.08",
        "eventTime": "2026-11-20T10:00:00Z",
        "eventID": f"probe-{number}",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "198.51.100.7",
        "userIdentity": {"type": "IAMUser", "userName": "probe"},
        "recipientAccountId": "111111111111",
    }
    (rule,) = SigmaCollection.from_yaml(path.read_text()).rules
    stack = [rule.detection.parsed_condition[0].parse()]
    while stack:
        node = stack.pop()
        if isinstance(node, ConditionFieldEqualsValueExpression):
            if isinstance(node.value, SigmaString):
                _set(record, node.field, _example(node.value))
        else:
            stack.extend(reversed(getattr(node, "args", [])))
    record["eventSource"] = record.get("eventSource", "probe.amazonaws.com")
    return record


def _records() -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    with corpus("cloudtrail/panther-rule-tests.jsonl").open("rb") as lines:
        records.extend(orjson.loads(line)["event"] for line in lines)
    start = datetime(2026, 11, 20, tzinfo=UTC)
    records.extend(_ctgen().generate_records(2000, start=start, span=timedelta(hours=6), seed=3))
    records.extend(_probe(path, number) for number, path in enumerate(_rules()))
    return records


def _rules() -> list[Path]:
    """The SigmaHQ rules: skips (fails under CI) without the corpus."""
    corpus("sigma/aws")
    return RULES


def _flatten(node: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            _flatten(value, f"{prefix}.{key}" if prefix else key, out)
    elif isinstance(node, list):
        out[prefix] = orjson.dumps(node).decode()
    elif isinstance(node, bool):
        out[prefix] = "true" if node else "false"
    else:
        out[prefix] = node


class Matched:
    def __init__(self, docs: list[dict[str, Any]], db: sqlite3.Connection, folded: set[int]):
        self.docs = docs
        self.db = db
        self.folded = folded
        """Rows with a key spelled other than its column (see the module docstring)."""


@pytest.fixture(scope="module")
def records() -> Matched:
    """The records normalized for the engine and loaded into SQLite for the backend."""
    docs: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    for record in _records():
        try:
            doc = cloudtrail.normalize(record).to_document()
        except NormalizationError:  # records the normalizer rejects are out of scope
            continue
        flat: dict[str, Any] = {}
        _flatten(record, "", flat)
        docs.append(doc)
        rows.append(flat)
    # SQLite column names ignore case; a few records spell a key two ways.
    spelled: dict[str, str] = {}
    for row in rows:
        for name in row:
            spelled.setdefault(name.lower(), name)
    columns = sorted(spelled.values())
    folded = {
        index
        for index, row in enumerate(rows)
        if any(spelled[name.lower()] != name for name in row)
    }
    db = sqlite3.connect(":memory:")
    db.create_function(
        "regexp", 2, lambda pattern, text: text is not None and re.search(pattern, str(text))
    )
    spec = ", ".join(f"`{name}` COLLATE NOCASE" for name in columns)
    db.execute(f"CREATE TABLE logs (_row INTEGER PRIMARY KEY, {spec})")
    marks = ", ".join("?" for _ in columns)
    names = ", ".join(f"`{name}`" for name in columns)
    keys = [name.lower() for name in columns]
    values = []
    for index, row in enumerate(rows):
        by_key = {name.lower(): value for name, value in reversed(row.items())}
        values.append((index, *(by_key.get(key) for key in keys)))
    db.executemany(f"INSERT INTO logs (_row, {names}) VALUES (?, {marks})", values)
    return Matched(docs, db, folded)


def _backend_rows(db: sqlite3.Connection, path: Path) -> set[int]:
    (query,) = sqliteBackend().convert(SigmaCollection.from_yaml(path.read_text()))
    query = query.replace("SELECT * FROM logs", "SELECT _row FROM logs", 1)
    try:
        return {row[0] for row in db.execute(query)}
    except sqlite3.OperationalError as err:
        if "no such column" not in str(err):
            raise
        # A field no record has: the backend cannot run, Sigma matches nothing
        # that needs it.  Rerun with the column added as all-null.
        column = str(err).split(": ", 1)[1]
        db.execute(f"ALTER TABLE logs ADD COLUMN `{column}` COLLATE NOCASE")
        return _backend_rows(db, path)


@pytest.mark.parametrize("path", RULES, ids=[path.stem for path in RULES])
def test_engine_matches_backend(path: Path, records: Matched) -> None:
    """The engine matches the records the backend's query selects for the rule."""
    detector = Detector(load_rules([path]).detections)
    ours = {index for index, doc in enumerate(records.docs) if detector.match(doc)}
    theirs = _backend_rows(records.db, path)
    assert ours - records.folded == theirs - records.folded, (
        sorted(ours - theirs)[:5],
        sorted(theirs - ours)[:5],
    )
    assert ours <= theirs, "on folded records only the backend may match more"


def test_every_rule_matches_something(records: Matched) -> None:
    """The comparison means little for a rule no record matches: the probes see to it."""
    silent = []
    for path in _rules():
        detector = Detector(load_rules([path]).detections)
        if not any(detector.match(doc) for doc in records.docs):
            silent.append(path.name)
    assert len(silent) <= len(RULES) // 10, silent


def test_the_shared_sigmahq_rules_are_found() -> None:
    """Without them the differential test above would compare nothing."""
    assert len(_rules()) >= 50, RULES[0].parent
