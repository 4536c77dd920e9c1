"""The ``auditd`` log type against go-libaudit's sample logs and their golden parses."""

from __future__ import annotations

import json
import re
from itertools import groupby, zip_longest
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from normsupport import flat
from testdata import CORPORA, SAMPLES, corpus, corpus_files, input_file

from connectors.syslog.batch import header
from daemon.logtypes import normalize_record
from daemon.model import AuditEvent, parse_timestamp
from daemon.normalize import Limits, auditd
from daemon.store import stored

COMMANDS = SAMPLES / "auditd" / "commands.log"
"""Our own sample: five events, four of them execve with their SYSCALL, CWD, PATH, PROCTITLE."""
SERIAL = re.compile(rb"msg=audit\(([0-9.]+:[0-9]+)\)")


def events(data: bytes) -> list[AuditEvent]:
    payload = header(1_700_000_000 * 10**9, "UTC", host="db-1") + data
    return [auditd.normalize(r) for r in auditd.decode(payload, Limits())]


def flat_event(event: AuditEvent) -> dict[str, Any]:
    """The event's document, without the original record, as dotted field names."""
    document = event.to_document()
    document.pop("original")
    return flat(document)


@pytest.fixture(
    scope="module",
    params=corpus_files("auditd/auparse", "*.log"),
    ids=lambda path: path.name,
)
def sample(
    request: pytest.FixtureRequest,
) -> tuple[list[dict[str, Any]], dict[int, dict[str, Any]]]:
    """The golden records of one of go-libaudit's sample logs, and our events by serial."""
    path = corpus(request.param)
    golden = json.loads(path.with_suffix(".log.golden").read_text())
    by_sequence = {}
    for event in events(path.read_bytes()):
        doc = flat_event(event)
        by_sequence[doc.get("auditd.log.sequence")] = doc
    return [entry for entry in golden if entry], by_sequence


def test_every_golden_record_is_in_an_event_with_its_time(
    sample: tuple[list[dict[str, Any]], dict[int, dict[str, Any]]],
) -> None:
    golden, by_sequence = sample
    for entry in golden:
        if "sequence" not in entry:
            continue  # go-libaudit could not parse it either
        doc = by_sequence[entry["sequence"]]
        assert parse_timestamp(doc["@timestamp"]) == parse_timestamp(entry["@timestamp"])
        assert entry["record_type"].upper() in doc["event.original"]


def test_execve_arguments_and_commands_are_decoded(
    sample: tuple[list[dict[str, Any]], dict[int, dict[str, Any]]],
) -> None:
    golden, by_sequence = sample
    for entry in golden:
        data = entry.get("data", {})
        if entry.get("record_type") == "execve":
            doc = by_sequence[entry["sequence"]]
            args = [data[f"a{i}"] for i in range(int(data["argc"])) if f"a{i}" in data]
            assert doc["process.args"] == args
            assert doc["event.action"] == "execve"
        if entry.get("record_type") == "user_cmd":
            assert by_sequence[entry["sequence"]]["process.command_line"] == data["cmd"]


@pytest.mark.parametrize(
    ("log", "execs"),
    [(COMMANDS, 4), (CORPORA / "auditd" / "reassembly" / "out_of_order.log", 2)],
    ids=["ours", "go-libaudit-out-of-order"],
)
def test_syscall_and_execve_of_one_serial_are_one_event(log: Path, execs: int) -> None:
    """The SYSCALL, EXECVE, CWD and PATH records of one execve make one event with its args."""
    found = events(input_file(log).read_bytes())
    docs = [flat_event(e) for e in found if e.action == "execve"]
    assert len(docs) == execs
    for doc in docs:
        assert doc["auditd.log.record_type"] == "EXECVE"
        assert doc["process.args"][0] == doc["process.name"]
        assert doc["process.command_line"] == " ".join(doc["process.args"])
        assert doc["auditd.log.key"] == "user_commands"
        assert doc["auditd.log.syscall"] == "59"
        assert doc["event.category"] == ["process"]
        assert doc["event.outcome"] == "success"
    assert len({e.id for e in found}) == len(found)


def test_records_of_events_taken_in_turns_make_the_same_events() -> None:
    """Neighbouring events' records interleaved, as auditd writes them under load: same events."""
    groups = [
        list(records)
        for _, records in groupby(
            COMMANDS.read_bytes().splitlines(keepends=True), key=lambda line: SERIAL.search(line)[1]
        )
    ]
    mixed = [
        line
        for first, second in zip_longest(groups[::2], groups[1::2], fillvalue=[])
        for pair in zip_longest(first, second)
        for line in pair
        if line is not None
    ]
    assert mixed != [line for group in groups for line in group], "nothing was interleaved"
    ordered = events(COMMANDS.read_bytes())
    assert len(ordered) == 5
    assert [e.to_document() for e in events(b"".join(mixed))] == [e.to_document() for e in ordered]
    sh = flat_event(ordered[2])
    assert sh["process.args"] == ["sh", "-c", "ls -l /var/lib/postgresql"], "hex args decoded"
    assert sh["process.working_directory"] == "/root"
    assert sh["user.audit.name"] == "alice"


def test_user_space_records() -> None:
    line = (
        b"type=USER_CMD msg=audit(1700000001.123:501): pid=900 uid=1000 auid=1000 ses=3 "
        b'msg=\'cwd="/root" cmd=73797374656D63746C2073746F70206E67696E78 '
        b"terminal=pts/0 res=success'"
        b'\x1dUID="alice" AUID="alice"\n'
        b"type=ADD_USER msg=audit(1700000002.000:502): pid=901 uid=0 auid=1000 ses=3 "
        b'msg=\'op=add-user id=1005 exe="/usr/sbin/useradd" acct="mallory" hostname=? addr=? '
        b"terminal=pts/0 res=success'\n"
        b"type=USER_AUTH msg=audit(1700000003.000:503): pid=902 uid=0 auid=4294967295 "
        b"ses=4294967295 "
        b'msg=\'op=PAM:authentication acct="root" exe="/usr/sbin/sshd" hostname=203.0.113.9 '
        b"addr=203.0.113.9 terminal=ssh res=failed'\n"
        b"type=DAEMON_END msg=audit(1700000004.000:504): op=terminate auid=0 pid=1 res=success\n"
        b"garbage\ngarbage\n"
    )
    cmd, add, auth, end, *bad = (flat_event(e) for e in events(line))
    assert cmd["event.action"] == "user_cmd"
    assert cmd["process.command_line"] == "systemctl stop nginx"
    assert cmd["user.name"] == "alice"
    assert cmd["user.audit.name"] == "alice"
    assert cmd["user.audit.id"] == "1000"
    assert add["event.action"] == "add_user"
    assert add["event.type"] == ["user", "creation"]
    assert add["user.name"] == "mallory"
    assert add["user.target.id"] == "1005"
    assert auth["event.outcome"] == "failure"
    assert auth["source.ip"] == "203.0.113.9"
    assert "user.audit.id" not in auth
    assert end["event.action"] == "daemon_end"
    assert end["host.name"] == "db-1"
    assert len(bad) == 2
    assert all(b["labels.parse_error"].startswith("not an audit record") for b in bad)
    assert bad[0]["event.id"] != bad[1]["event.id"]


def test_store_round_trip_gives_the_same_event() -> None:
    [event] = events(
        b"type=CONFIG_CHANGE msg=audit(1700000001.5:7): auid=0 op=add_rule key=x res=1\n"
    )
    data = stored.encode("auditd", "2026-11-27T00:00:00Z", event.original)
    assert stored.read(data, event.timestamp, normalize_record)[1]["event"]["id"] == event.id


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=120).map(lambda s: s.replace("\n", " ")), max_size=5))
def test_never_raises(lines: list[str]) -> None:
    prefixed = [f"type=SYSCALL msg=audit(1700000000.1:{i}): {t}" for i, t in enumerate(lines)]
    for variant in (lines, prefixed):
        for event in events("\n".join(variant).encode()):
            event.to_json()
