"""``auditcorr changes`` and ``auditcorr whois`` as an operator reads them."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import orjson
import pytest

from connectors.base import RawBatch
from daemon.cli.base import EXIT_CONFIG, EXIT_FAILED, EXIT_OK
from daemon.cli.main import main
from daemon.config import load_config
from daemon.logtypes import normalize_record
from daemon.normalize import Limits
from daemon.process import Job, init_worker, process
from daemon.store.sqlite import SqliteStore

SAMPLES = Path(__file__).parents[1] / "changes" / "samples"
RECORDS = [
    {
        "id": "CHG0041207",
        "title": "Stop and start the batch host",
        "state": "approved",
        "implementers": ["alice"],
        "window": {"start": "2026-11-20T09:00:00Z", "end": "2026-11-20T09:10:00Z"},
        "scope": {"actions": ["ec2:StopInstances", "ec2:StartInstances"]},
    },
    {
        "id": "CHG0041190",
        "state": "cancelled",
        "implementers": ["carol"],
        "window": {"start": "2026-11-20T14:00:00Z", "end": "2026-11-20T15:00:00Z"},
    },
]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A config with alice in the identity map and a store holding her demo calls
    and two change records (the first edited once)."""
    path = tmp_path / "config.toml"
    path.write_text(
        f'[daemon]\nstate_dir = "{tmp_path / "state"}"\ntimezone = "Asia/Tokyo"\n'
        '[[identity.people]]\nid = "alice"\nemail = ["alice@example.com"]\n'
    )
    loaded = load_config(path)
    store = SqliteStore(loaded.store_path, retention_days=0, normalize=normalize_record)
    init_worker(store.dictionaries(), None, loaded.identity.identity_map())

    def put(log_type: str, payload: bytes) -> None:
        batch = RawBatch(log_type, "test", payload)
        store.write([process(Job("test", batch, store.codec, Limits()))])

    put("cloudtrail", (SAMPLES / "alice_maintenance.json").read_bytes())
    put("change", orjson.dumps(RECORDS))
    put("change", orjson.dumps({**RECORDS[0], "title": "Stop and start the batch host (v2)"}))
    store.close()
    init_worker(store.dictionaries())
    return path


def test_changes_lists_current_records_in_the_daemon_time_zone(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["changes", "--config", str(config)]) == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split()[:5] == ["CHG0041207", "approved", "2026-11-20", "18:00", "-"]
    assert lines[1].endswith("Stop and start the batch host (v2)")
    assert lines[2].split()[:2] == ["CHG0041190", "cancelled"]
    assert lines[-1] == "2 record(s)"


def test_history_shows_every_version(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["changes", "--config", str(config), "--history", "CHG0041207", "--json"]) == 0
    versions = orjson.loads(capsys.readouterr().out)
    assert [v["title"] for v in versions] == [
        "Stop and start the batch host",
        "Stop and start the batch host (v2)",
    ]


def test_covering_explains_a_miss(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """StartInstances at 09:24:50 is after the 09:10 window: the reason names the gap."""
    records = orjson.loads((SAMPLES / "alice_maintenance.json").read_bytes())["Records"]
    start = next(r["eventID"] for r in records if r["eventName"] == "StartInstances")
    assert main(["changes", "--config", str(config), "--covering", start]) == EXIT_OK
    out = capsys.readouterr().out
    assert "  person: alice, alice@example.com" in out
    assert "NOT covered by any change record" in out
    assert "  CHG0041207: window ended 15 min before" in out


def test_covering_an_unknown_event_fails(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["changes", "--config", str(config), "--covering", "nope"]) == EXIT_FAILED
    assert "no event 'nope' in the timeline" in capsys.readouterr().err


def test_whois_shows_the_person_and_events(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["whois", "--config", str(config), "alice@example.com"]) == EXIT_OK
    out = capsys.readouterr().out.splitlines()
    assert out[:2] == ["alice", "  email: alice@example.com"]
    assert out[-1] == "3 events"
    assert "StartInstances" in out[3]


def test_review_lists_the_window_and_what_followed_it(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """StopInstances in the 09:00-09:10 window is in scope; StartInstances at 09:24 touched
    the scope after it, covered by nothing: outside_window, times in the daemon's zone."""
    assert main(["changes", "--config", str(config), "--review", "CHG0041207"]) == EXIT_OK
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "CHG0041207 approved: Stop and start the batch host (v2)"
    assert "  implementer alice: alice: alice@example.com" in out
    assert (
        "verdict: outside_window (1 in scope, 0 out of scope, 1 outside the window uncovered)"
        in out
    )
    inside = out[out.index("in the window, by the implementers:") + 1]
    assert inside.split()[:4] == ["2026-11-20", "18:05", "alice", "ec2:StopInstances"]
    assert inside.endswith("in scope")
    after = out[-1]
    assert after.split()[:4] == ["2026-11-20", "18:24", "alice", "ec2:StartInstances"]
    assert after.endswith("after, NOT COVERED")


def test_review_as_json(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--json`` gives the API's document: the record, counts and each event."""
    assert main(["changes", "--config", str(config), "--review", "CHG0041207", "--json"]) == 0
    found = orjson.loads(capsys.readouterr().out)
    assert found["verdict"] == "outside_window"
    assert found["change"]["id"] == "CHG0041207"
    assert [e["action"] for e in found["inside"]] == ["ec2:StopInstances"]
    assert found["outside"][0]["covered_by"] == []


def test_review_of_an_unknown_record_fails(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A record id the store does not hold is an error, not an empty review."""
    assert main(["changes", "--config", str(config), "--review", "CHG0"]) == EXIT_FAILED
    assert "no change record 'CHG0'" in capsys.readouterr().err


def test_period_report_as_table_and_csv(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every record of the period with its verdict and counts, for the change board."""
    period = ["--since", "2026-11-20T00:00:00Z", "--until", "2026-11-21T00:00:00Z"]
    assert main(["changes", "--config", str(config), "--review", *period]) == EXIT_OK
    table = capsys.readouterr().out.splitlines()
    assert table[1].split()[:6] == ["CHG0041207", "approved", "2026-11-20", "18:00", "-", "18:10"]
    assert table[1].split()[6:10] == ["outside_window", "1", "0", "1"]
    assert table[2].split()[:2] == ["CHG0041190", "cancelled"]
    assert table[-1] == "2 change(s): 1 clean, 1 outside_window"
    assert main(["changes", "--config", str(config), "--review", *period, "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["id"], r["verdict"], r["in_scope"], r["outside_window"]) for r in rows] == [
        ("CHG0041207", "outside_window", "1", "1"),
        ("CHG0041190", "clean", "0", "0"),
    ]
    assert rows[0]["window_start"] == "2026-11-20T09:00:00Z"


def test_period_report_needs_a_start(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without an id the period must be given."""
    assert main(["changes", "--config", str(config), "--review"]) == EXIT_CONFIG
    assert "needs --since" in capsys.readouterr().err
