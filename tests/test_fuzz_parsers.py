"""Bounded fuzzing of every parser that reads outside input: each fails only in its documented way.

Hypothesis runs a fixed number of derandomized examples per parser (the same
inputs on every run, a few seconds each), shaped like the real formats and
mutated from there.  What it found is kept as ``@example`` cases, so each
finding stays a regression test.
"""

from __future__ import annotations

import contextlib
import json
from datetime import UTC
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from connectors import jsonlimits
from connectors.base import IntakeRequest, IntakeResponse, NormalizationError, SourceContext
from connectors.config import Secret
from connectors.contracts.change_record import InvalidChangeRecordError, parse_record
from connectors.sources.changes_http import ChangesHttpConfig, ChangesHttpSource
from daemon import logtypes
from daemon.api import guard, params
from daemon.api.events import _interval_within
from daemon.config import ConfigFileError, load_config
from daemon.model import AuditEvent
from daemon.normalize import Limits

FUZZ = settings(
    max_examples=100,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
LIMITS = Limits(max_payload_bytes=1 << 20, max_record_bytes=1 << 16)
ZONE = ZoneInfo("Asia/Tokyo")

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=6)
    ),
    max_leaves=30,
)


def dumps(value: Any) -> bytes:
    """JSON text (``json``, unlike orjson, writes integers beyond 64 bits, a case to read)."""
    return json.dumps(value).encode()


def mutated(seed: bytes) -> st.SearchStrategy[bytes]:
    """``seed`` cut, spliced with random bytes, or with bytes flipped."""
    return st.one_of(
        st.integers(0, len(seed)).map(lambda n: seed[:n]),
        st.tuples(st.integers(0, len(seed)), st.binary(max_size=20)).map(
            lambda cut: seed[: cut[0]] + cut[1] + seed[cut[0] :]
        ),
        st.lists(st.tuples(st.integers(0, len(seed) - 1), st.integers(0, 255)), max_size=6).map(
            lambda flips: bytes(dict(flips).get(i, b) for i, b in enumerate(seed))
        ),
    )


def read(log_type: str, payload: bytes) -> list[AuditEvent]:
    """Decode and normalize as a worker does; only ``NormalizationError`` may escape each step."""
    normalizer = logtypes.get(log_type)
    try:
        records = normalizer.decode(payload, LIMITS)
    except NormalizationError:
        return []
    events = []
    for record in records:
        try:
            event = normalizer.normalize(record)
        except NormalizationError:
            continue
        event.to_document()
        book = normalizer.book_entry
        if book is not None:
            book(record)
        events.append(event)
    return events


# -- syslog and auditd: a JSON header line, then messages ----------------------------

SYSLOG_LINES = [
    "<34>1 2026-11-27T12:00:00Z bastion sshd 812 - - Accepted password for alice from 10.0.0.5",
    "Nov 27 12:00:01 bastion sudo: alice : TTY=pts/0 ; PWD=/root ; USER=root ; COMMAND=/bin/id",
    "Nov 27 12:00:02 bastion sshd[99]: Failed password for invalid user x from 203.0.113.9",
]
AUDIT_LINES = [
    "type=SYSCALL msg=audit(1764244800.123:42): arch=c000003e syscall=59 success=yes exit=0 "
    'auid=1000 uid=0 comm="id" exe="/usr/bin/id" key="exec"',
    "type=EXECVE msg=audit(1764244800.123:42): argc=1 a0=6964",
    "type=PROCTITLE msg=audit(1764244800.123:42): proctitle=6964",
]
headers = st.fixed_dictionaries(
    {"received_ns": st.one_of(st.just(1764244800000000000), st.integers(), st.text(max_size=5))},
    optional={
        "tz": st.sampled_from(["UTC", "Asia/Tokyo", "Nowhere/City", ""]),
        "host": json_scalars,
        "peer": json_values,
        "base": json_values,
        "positions": st.sampled_from(["seq", "offset", "other"]),
        "fingerprint": json_values,
        "lengths": json_values,
        "truncated": json_values,
        "file": json_values,
    },
)


def batches(lines: list[str]) -> st.SearchStrategy[bytes]:
    messages = st.lists(st.sampled_from(lines) | st.text(max_size=80), max_size=4)
    batch = st.tuples(headers, messages).map(
        lambda hm: dumps(hm[0]) + b"\n" + "\n".join(hm[1]).encode()
    )
    seed = dumps({"received_ns": 1764244800000000000, "tz": "UTC"}) + b"\n"
    return batch | mutated(seed + "\n".join(lines).encode())


@FUZZ
@given(batches(SYSLOG_LINES))
@example(b'{"received_ns": 1, "tz": "UTC", "positions": "offset", "lengths": [1]}\nx')
@example(b'{"received_ns": 1, "tz": "UTC", "positions": "offset", "base": "x"}\nx')
@example(b'{"received_ns": 1, "tz": "UTC", "peer": [true]}\nx')
@example(b'{"received_ns": 1, "tz": "UTC", "host": false}\nx')
@example(b'{"received_ns": 1, "tz": "UTC", "truncated": true}\nx')
def test_syslog_batches(payload: bytes) -> None:
    """A syslog batch is read or refused with NormalizationError, never another exception."""
    read("syslog", payload)


@FUZZ
@given(batches(AUDIT_LINES))
def test_auditd_batches(payload: bytes) -> None:
    """An auditd batch is read or refused with NormalizationError, never another exception."""
    read("auditd", payload)


# -- JSON formats --------------------------------------------------------------------

SAMPLES = Path(__file__).parent / "daemon" / "store" / "samples" / "cloudtrail_timeline.json"
CLOUDTRAIL = orjson.loads(SAMPLES.read_bytes())["Records"][:2]


def records_like(seed: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """``seed`` with some fields replaced by arbitrary JSON, removed, or added."""
    keys = sorted(seed)
    return st.tuples(
        st.dictionaries(st.sampled_from(keys), json_values, max_size=4),
        st.sets(st.sampled_from(keys), max_size=3),
        st.dictionaries(st.text(max_size=10), json_values, max_size=2),
    ).map(lambda c: {k: v for k, v in (seed | c[0] | c[2]).items() if k not in c[1]})


cloudtrail_files = st.one_of(
    st.lists(st.sampled_from(CLOUDTRAIL).flatmap(records_like), max_size=3).map(
        lambda records: dumps({"Records": records})
    ),
    json_values.map(dumps),
    mutated(dumps({"Records": CLOUDTRAIL})),
)


@FUZZ
@given(cloudtrail_files)
def test_cloudtrail_files(payload: bytes) -> None:
    """A CloudTrail file is read or refused with NormalizationError, never another exception."""
    read("cloudtrail", payload)


JOURNAL_ENTRY = {
    "__REALTIME_TIMESTAMP": "1764244800123456",
    "_HOSTNAME": "bastion",
    "SYSLOG_IDENTIFIER": "sshd",
    "_PID": "812",
    "PRIORITY": "6",
    "MESSAGE": "Accepted publickey for alice from 10.0.0.5 port 50000 ssh2",
    "__CURSOR": "s=1;i=2",
}


@FUZZ
@given(
    st.lists(records_like(JOURNAL_ENTRY).map(dumps) | st.binary(max_size=40), max_size=3).map(
        b"\n".join
    )
    | mutated(dumps(JOURNAL_ENTRY))
)
def test_journald_exports(payload: bytes) -> None:
    """journalctl JSON lines are read or refused with NormalizationError, nothing else."""
    read("journald", payload)


CHANGE = {
    "id": "CHG0031001",
    "title": "Patch the bastion",
    "state": "approved",
    "implementers": ["alice"],
    "approved_by": "bob",
    "window": {"start": "2026-11-20T09:00:00", "end": "2026-11-20T09:30:00Z"},
    "scope": {"hosts": ["bastion"], "aws_accounts": ["111111111111"]},
}


@FUZZ
@given(
    st.lists(records_like(CHANGE), max_size=3).map(dumps)
    | json_values.map(dumps)
    | mutated(dumps(CHANGE))
)
def test_change_records(payload: bytes) -> None:
    """Change records are read or refused with NormalizationError, nothing else."""
    read("change", payload)


@FUZZ
@given(records_like(CHANGE) | json_values)
def test_change_record_validation(record: Any) -> None:
    """parse_record accepts a record or lists its problems; it never raises anything else."""
    with contextlib.suppress(InvalidChangeRecordError):
        parse_record(record, ZONE)


AUDIT = {
    "id": "4f0c9e2a",
    "at": "2026-11-27T12:00:00.123Z",
    "action": "quarantine_read",
    "via": "api",
    "user": "ops-admin",
    "role": "admin",
    "peer": "10.0.0.5",
    "outcome": "success",
    "target": "/api/v1/quarantine",
    "detail": {"entries": 3},
}


@FUZZ
@given(st.lists(records_like(AUDIT), max_size=3).map(dumps) | mutated(dumps([AUDIT])))
def test_audit_entries(payload: bytes) -> None:
    """The daemon's own audit entries are read or refused with NormalizationError only."""
    read("audit", payload)


# -- change intake over HTTP ---------------------------------------------------------

TOKEN = "intake-token-1234567890"
INTAKE = ChangesHttpSource(
    ChangesHttpConfig(type="changes_http", token=Secret(TOKEN, "inline"), max_body_bytes=1 << 20),
    SourceContext("itsm", {}),
)
intake_bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(dumps),
    st.lists(records_like(CHANGE), max_size=3).map(dumps),
    st.integers(1, 40).map(lambda depth: b"[" * depth + b"1" + b"]" * depth),
    st.integers(1, 200).map(lambda digits: b'{"id": ' + b"9" * digits + b"}"),
    mutated(dumps([CHANGE])),
)


@FUZZ
@given(intake_bodies, st.sampled_from([f"Bearer {TOKEN}", "Bearer wrong", "", "Basic x"]))
@example(b"[" * 100_000 + b"]" * 100_000, f"Bearer {TOKEN}")
@example(b'{"id": ' + b"1" * 5000 + b"}", f"Bearer {TOKEN}")
@example(b"[NaN, Infinity]", f"Bearer {TOKEN}")
def test_change_intake_answers_every_body(body: bytes, authorization: str) -> None:
    """Every body gets records or a 400/401 answer (the 500s of deep nesting and long
    integers among the findings); a body within the limits is parsed without error."""
    request = IntakeRequest("POST", "/api/v1/changes", {"Authorization": authorization}, body, "x")
    checked = INTAKE._check(request)
    if isinstance(checked, IntakeResponse):
        assert checked.status in {400, 401}
        assert isinstance(checked.body["error"], str)
    else:
        assert isinstance(checked, list)
        assert jsonlimits.problem(body) is None


# -- API parameters and headers ------------------------------------------------------

times = st.one_of(
    st.text(max_size=30),
    st.datetimes(timezones=st.just(UTC) | st.none()).map(lambda d: d.isoformat()),
    st.tuples(st.integers(0, 10**25), st.sampled_from(["ms", "s", "m", "h", "d", "w"])).map(
        lambda d: f"{d[0]}{d[1]}"
    ),
)


@FUZZ
@given(times)
@example("100000w")
@example("0001-01-01")
def test_api_times(text: str) -> None:
    """since/until are a time between 1970 and 2200, or a ValueError (a 400)."""
    try:
        moment = params.bounded_moment(text, ZONE)
    except ValueError:
        return
    assert params.EARLIEST <= moment < params.LATEST


@FUZZ
@given(times, st.floats(min_value=0, max_value=1e7))
@example("1000000d", 1440.0)
def test_histogram_intervals(text: str, span_minutes: float) -> None:
    """An interval is whole minutes, at least one, at most the span, or a ValueError."""
    try:
        minutes = _interval_within(span_minutes)(text)
    except ValueError:
        return
    assert 1 <= minutes <= max(1, span_minutes + 1)


@FUZZ
@given(st.text(max_size=20), st.integers(-5, 5), st.integers(-5, 10**20))
def test_api_integers(text: str, low: int, high: int) -> None:
    """limit/cursor parse to an int in range, or a ValueError (a 400)."""
    try:
        value = params.bounded_int(low, high)(text)
    except ValueError:
        return
    assert low <= value <= high


@FUZZ
@given(
    st.text(max_size=40) | st.from_regex(r"\[?[0-9a-f:.]{0,20}\]?(:[0-9]{0,6})?", fullmatch=True)
)
@example("[::1]:8080")
@example("evil.example:8080")
@example("localhost:99999999")
def test_host_headers(header: str) -> None:
    """Any Host header is judged allowed or not; only addresses and known names pass."""
    names = frozenset({"localhost", "api.example.com"})
    if guard.host_allowed(header, names):
        host = guard.host_of(header)
        assert host is not None
        assert host in names or guard._is_address(host)


# -- config --------------------------------------------------------------------------

CONFIG = (Path(__file__).parents[1] / "config.toml").read_text()


@settings(FUZZ, max_examples=60)
@given(
    st.text(max_size=200)
    | st.tuples(st.integers(0, len(CONFIG)), st.text(max_size=30)).map(
        lambda cut: CONFIG[: cut[0]] + cut[1] + CONFIG[cut[0] :]
    )
)
def test_config_files(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    """Any config text loads or fails with ConfigFileError, nothing else."""
    path = tmp_path_factory.mktemp("config") / "config.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    with contextlib.suppress(ConfigFileError):
        load_config(path)


def test_the_fuzz_inputs_include_real_records() -> None:
    """The seeds are real formats: unmutated, each parser reads events from them."""
    header = dumps({"received_ns": 1764244800000000000, "tz": "UTC"}) + b"\n"
    assert len(read("syslog", header + "\n".join(SYSLOG_LINES).encode())) == 3
    assert len(read("auditd", header + "\n".join(AUDIT_LINES).encode())) == 1
    assert len(read("cloudtrail", dumps({"Records": CLOUDTRAIL}))) == 2
    assert len(read("journald", dumps(JOURNAL_ENTRY))) == 1
    assert read("change", dumps([CHANGE]))
    assert len(read("audit", dumps([AUDIT]))) == 1
