"""The real-world variants of tests/daemon/normalize/syslog_variants.jsonl read by a
real rsyslogd: where the corpus says rsyslog agrees, it does, field by field."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from itsupport import wait_for
from testdata import need

pytestmark = pytest.mark.integration

CORPUS = Path(__file__).parents[1] / "daemon" / "normalize" / "syslog_variants.jsonl"
PEER = "192.0.2.1"
"""The sender the corpus's expectations assume; rsyslog names its sender ``localhost``."""
_TEMPLATE = """template(name="fields" type="list" option.jsonf="on") {
 property(outname="facility" name="syslogfacility" format="jsonf")
 property(outname="severity" name="syslogseverity" format="jsonf")
 property(outname="host" name="hostname" format="jsonf")
 property(outname="program" name="programname" format="jsonf")
 property(outname="msg" name="msg" format="jsonf")
}
"""


@contextlib.contextmanager
def rsyslog_reader(folder: Path) -> Iterator[tuple[int, Path]]:
    """rsyslogd reading UDP and writing the fields it parsed as one JSON line each."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    output = folder / "fields.json"
    config = folder / "rsyslog.conf"
    config.write_text(
        f'global(workDirectory="{folder}")\nmodule(load="imudp")\n'
        f'input(type="imudp" address="127.0.0.1" port="{port}")\n{_TEMPLATE}'
        f'action(type="omfile" file="{output}" template="fields")\n'
    )
    argv = [need("rsyslogd"), "-n", "-f", str(config), "-i", str(folder / "rsyslogd.pid")]
    err = folder / "rsyslogd.err"
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err.open("wb"))
    try:
        yield port, output
    finally:
        proc.terminate()
        proc.wait(10)


def ours(expect: dict[str, Any]) -> tuple[object, ...]:
    host = expect["host.name"]
    return (
        expect["log.syslog.facility.code"],
        expect["log.syslog.severity.code"],
        None if host == PEER else host,
        expect["process.name"],
        expect["message"] or "",
    )


def theirs(fields: dict[str, str]) -> tuple[object, ...]:
    host = fields["host"]
    return (
        int(fields["facility"]),
        int(fields["severity"]),
        None if host in ("localhost", "127.0.0.1") else host,
        fields["program"] or None,
        fields["msg"].lstrip(" "),
    )


def test_rsyslog_reads_the_variants_as_the_corpus_says(tmp_path: Path) -> None:
    """Each "same" case agrees with rsyslogd in all five fields; each other case differs."""
    cases = [json.loads(text) for text in CORPUS.read_text().splitlines()]
    with (
        rsyslog_reader(tmp_path) as (port, output),
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender,
    ):
        time.sleep(1)  # imudp binds after the config is read; UDP cannot tell
        for case in cases:
            sender.sendto(case["line"].encode(), ("127.0.0.1", port))
            time.sleep(0.005)  # one datagram after the other, in order
        wait_for(
            "rsyslogd's output",
            lambda: output.exists() and len(output.read_text().splitlines()) >= len(cases),
            timeout=20,
        )
    read = [json.loads(text) for text in output.read_text().splitlines()]
    agree = 0
    wrong = []
    for case, fields in zip(cases, read, strict=True):
        pairs = list(zip(ours(case["expect"]), theirs(fields), strict=True))
        agree += sum(a == b for a, b in pairs)
        if all(a == b for a, b in pairs) != (case["rsyslog"] == "same"):
            wrong.append((case["origin"], [p for p in pairs if p[0] != p[1]]))
    assert wrong == [], wrong
    print(f"fields agreeing with rsyslog: {agree} of {5 * len(cases)}")
