"""``auditcorr backfill``, ``quarantine`` and ``timeline`` run as an operator runs them."""

from __future__ import annotations

import copy
import gzip
import os
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import pytest
from itsupport import (
    DAY_DIR,
    ORG,
    Workspace,
    alert_entry_ids,
    alerts_as_they_stand,
    generate,
    is_alert_entry,
    log_name,
    put_file,
    records_file,
    stored_documents,
    stored_ids,
    write_tree,
)

from daemon.model import parse_timestamp

pytestmark = pytest.mark.integration

START = datetime(2026, 11, 20, tzinfo=UTC)
ONE_TRAIL: dict[str, Any] = {"accounts": ["111111111111"], "regions": ["us-east-1"]}
"""Few, full files: one account and region deliver one file per five minutes."""
SUMMARY_KEYS = {"files", "records", "stored", "duplicates", "quarantined", "seconds"}


def event_time(record: dict[str, Any]) -> datetime:
    return datetime.strptime(record["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


# --------------------------------------------------------------------------- good trees


def test_backfill_stores_every_event_once_and_checkpoints_files(
    workspace: Workspace, ctgen: ModuleType
) -> None:
    """A backfill of an org-trail tree stores each event once; a second one stores nothing new."""
    records = generate(
        ctgen, 3000, seed=11, span=timedelta(minutes=20), regions=["us-east-1", "eu-west-1"]
    )
    tree = write_tree(ctgen, workspace.data, records, per_file=1000)
    assert len(tree.paths) > 3, "the test wants several files"
    assert all(f"/AWSLogs/{ORG}/" in str(p) for p in tree.paths)
    workspace.write_config()

    first = workspace.backfill()
    assert first.returncode == 0, str(first)
    summary = first.summary
    assert summary.keys() >= SUMMARY_KEYS, str(first)
    assert summary["files"] == len(tree.paths), str(first)
    assert summary["records"] == 3000
    assert summary["stored"] == 3000
    assert summary["duplicates"] == 0
    assert summary["quarantined"] == 0
    assert summary["seconds"] > 0
    assert stored_ids(workspace.db) == Counter(tree.ids)
    entries = alert_entry_ids(workspace.db)
    assert entries, "the built-in rules raise alerts on ctgen's activity"
    assert entries == alerts_as_they_stand(workspace.db), "a backfill writes each alert once"

    second = workspace.backfill()
    assert second.returncode == 0, str(second)
    assert second.summary["stored"] == 0, str(second)
    assert second.summary["files"] == 0, "checkpointed files were read again\n" + str(second)
    assert workspace.count() == 3000
    assert alert_entry_ids(workspace.db) == entries, "nothing read again, no alert entry added"


def test_backfill_since_until_restrict_what_is_stored(
    workspace: Workspace, ctgen: ModuleType
) -> None:
    """--since/--until store only events inside the range; the rest count as out_of_range."""
    records = generate(ctgen, 2000, seed=12, span=timedelta(hours=6), **ONE_TRAIL)
    write_tree(ctgen, workspace.data, records)
    workspace.write_config()
    since, until = START + timedelta(hours=2), START + timedelta(hours=4)
    inside = {r["eventID"] for r in records if since <= event_time(r) <= until}
    assert 0 < len(inside) < len(records)

    result = workspace.backfill("--since", since.isoformat(), "--until", until.isoformat())
    assert result.returncode == 0, str(result)
    summary = result.summary
    assert summary["stored"] == len(inside), str(result)
    assert summary["out_of_range"] == summary["records"] - len(inside), str(result)
    assert summary["out_of_range"] > 0
    assert stored_ids(workspace.db) == Counter(inside)


def test_restricted_backfill_does_not_hide_the_rest_from_a_later_backfill(
    workspace: Workspace, ctgen: ModuleType
) -> None:
    """Events skipped by --since/--until are still stored by a later unrestricted backfill."""
    records = generate(ctgen, 1000, seed=13, span=timedelta(hours=6), **ONE_TRAIL)
    tree = write_tree(ctgen, workspace.data, records)
    workspace.write_config()
    since, until = START + timedelta(hours=2), START + timedelta(hours=4)

    restricted = workspace.backfill("--since", since.isoformat(), "--until", until.isoformat())
    assert restricted.returncode == 0, str(restricted)
    full = workspace.backfill()
    assert full.returncode == 0, str(full)
    assert stored_ids(workspace.db) == Counter(tree.ids), (
        f"{len(tree.ids) - workspace.count()} events outside the first range were never stored"
        f"\n{restricted}\n{full}"
    )


# --------------------------------------------------------------------------- bad input


@dataclass
class Bad:
    """What one bad input case put into the tree and what quarantine must say of it."""

    path: Path
    reason: str
    """Regular expression the quarantine reason must match."""
    stored: set[str]
    """Good events inside the bad file that must be stored too."""
    entries: int = 1
    position: int | None = None
    kept: tuple[int, int] | None = None
    """``kept X of Y bytes`` bounds: (max kept, min size)."""


def _fresh(ctgen: ModuleType, n: int, seed: int) -> list[dict[str, Any]]:
    return generate(ctgen, n, seed=seed, start=START + timedelta(minutes=30))


def _truncated_gzip(root: Path, ctgen: ModuleType) -> Bad:
    whole = records_file(_fresh(ctgen, 50, 101))
    path = put_file(root, log_name("TruncatedGzip001"), whole[: len(whole) // 2])
    return Bad(path, r"(?i)truncated|corrupt", set())


def _not_json(root: Path, ctgen: ModuleType) -> Bad:
    path = put_file(root, log_name("NotJsonAtAll0001", ".json"), b"this is not JSON at all\n" * 20)
    return Bad(path, r"(?i)not (gzip or )?JSON|invalid JSON", set())


def _without_records(root: Path, ctgen: ModuleType) -> Bad:
    data = gzip.compress(orjson.dumps({"Logs": [{"eventName": 1}], "count": 1}))
    path = put_file(root, log_name("NoRecordsKey0001"), data)
    return Bad(path, r"Records", set())


def _bad_record(key: str, seed: int) -> Callable[[Path, ModuleType], Bad]:
    def build(root: Path, ctgen: ModuleType) -> Bad:
        records = _fresh(ctgen, 20, seed)
        broken = copy.deepcopy(records[5])
        del broken[key]
        good = records[:5] + records[6:]
        path = put_file(
            root, log_name(f"Without{key}"[:16]), records_file([*records[:5], broken, *records[6:]])
        )
        return Bad(path, rf"(?i)missing '?{key}'?", {r["eventID"] for r in good}, position=5)

    return build


def _huge_record(root: Path, ctgen: ModuleType) -> Bad:
    records = _fresh(ctgen, 10, 104)
    huge = copy.deepcopy(records[3])
    huge["requestParameters"] = {"policy": "A" * (50 * 1024 * 1024)}
    good = records[:3] + records[4:]
    path = put_file(
        root, log_name("FiftyMegRecord01"), records_file([*records[:3], huge, *records[4:]])
    )
    return Bad(
        path,
        r"(?i)exceeds|too large|limit",
        {r["eventID"] for r in good},
        position=3,
        kept=(64 * 1024, 50 * 1024 * 1024),
    )


def _deep_file(root: Path, ctgen: ModuleType) -> Bad:
    depth = 100_000
    path = put_file(root, log_name("DeeplyNested0001", ".json"), b"[" * depth + b"]" * depth)
    return Bad(path, r"(?i)nest|deep|depth", set())


def _deep_record(root: Path, ctgen: ModuleType) -> Bad:
    records = _fresh(ctgen, 10, 105)
    deep = copy.deepcopy(records[7])
    nested: Any = "bottom"
    for _ in range(300):
        nested = [nested]
    deep["requestParameters"] = {"filter": nested}
    good = records[:7] + records[8:]
    path = put_file(
        root, log_name("DeepRecord000001"), records_file([*records[:7], deep, *records[8:]])
    )
    return Bad(path, r"(?i)nest|deep|depth", {r["eventID"] for r in good}, position=7)


def _dangling_link(root: Path, ctgen: ModuleType) -> Bad:
    folder = root / DAY_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / log_name("DanglingLink0001")
    path.symlink_to(folder / "gone-before-it-was-read.json.gz")
    return Bad(path, r"(?i)cannot read.*(no such file|not found)", set())


def _unreadable(root: Path, ctgen: ModuleType) -> Bad:
    path = put_file(root, log_name("NoPermission0001"), records_file(_fresh(ctgen, 5, 106)))
    path.chmod(0)
    return Bad(path, r"(?i)cannot read.*permission", set())


BAD_INPUTS = {
    "truncated_gzip": _truncated_gzip,
    "not_json": _not_json,
    "json_without_records": _without_records,
    "record_without_event_id": _bad_record("eventID", 102),
    "record_without_event_time": _bad_record("eventTime", 103),
    "record_of_50_mb": _huge_record,
    "json_nested_100000_levels": _deep_file,
    "record_nested_300_levels": _deep_record,
    "dangling_symlink": _dangling_link,
    "file_without_read_permission": _unreadable,
}


@pytest.fixture(scope="module")
def good_records(ctgen: ModuleType) -> list[dict[str, Any]]:
    return generate(ctgen, 300, seed=100, span=timedelta(minutes=30), **ONE_TRAIL)


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_quarantined_and_good_files_still_stored(
    case: str, workspace: Workspace, ctgen: ModuleType, good_records: list[dict[str, Any]]
) -> None:
    """A bad input beside good files is quarantined with origin and reason; the rest is stored."""
    if case == "file_without_read_permission" and os.geteuid() == 0:
        pytest.skip("root reads a chmod 000 file anyway")
    good = write_tree(ctgen, workspace.data, good_records, per_file=100)
    bad = BAD_INPUTS[case](workspace.data, ctgen)
    workspace.write_config()
    expected = good.ids | bad.stored

    result = workspace.backfill()
    assert result.returncode == 0, str(result)
    assert result.summary["quarantined"] == bad.entries, str(result)
    assert result.summary["stored"] == len(expected), str(result)
    assert stored_ids(workspace.db) == Counter(expected)

    listing = workspace.cli("quarantine")
    assert listing.returncode == 0, str(listing)
    assert f"{bad.entries} shown, {bad.entries} in quarantine" in listing.stdout, str(listing)
    heads = [line for line in listing.stdout.splitlines() if line.startswith("#")]
    assert len(heads) == bad.entries, str(listing)
    assert bad.path.name in heads[0], str(listing)
    if bad.position is not None:
        assert heads[0].endswith(f"record {bad.position}"), str(listing)
    reasons = re.findall(r"^\s+reason: (.*)$", listing.stdout, re.MULTILINE)
    assert reasons, str(listing)
    assert re.search(bad.reason, reasons[0]), f"unclear reason {reasons[0]!r}\n{listing}"
    assert not reasons[0].startswith("normalizer failed"), (
        f"bad input reported as a normalizer bug: {reasons[0]!r}"
    )
    if bad.kept is not None:
        kept = re.search(r"kept (\d+) of (\d+) bytes", listing.stdout)
        assert kept, str(listing)
        assert 0 < int(kept[1]) <= bad.kept[0] < bad.kept[1] <= int(kept[2]), str(listing)

    lines = [line for line in result.stderr.splitlines() if line]
    assert len(result.logs) == len(lines), f"stderr is not JSON lines without a terminal\n{result}"
    logged = [e for e in result.logs if e.get("event") == "record_quarantined"]
    assert logged, f"no record_quarantined log line\n{result}"
    assert bad.path.name in str(logged[0].get("origin")), logged[0]
    assert logged[0].get("reason"), logged[0]


def test_backfill_of_only_bad_files_fails_and_says_why(
    workspace: Workspace, ctgen: ModuleType
) -> None:
    """When nothing at all could be read, backfill exits non-zero and says so on stderr."""
    made = [
        build(workspace.data, ctgen)
        for build in (_truncated_gzip, _not_json, _without_records, _deep_file, _dangling_link)
    ]
    workspace.write_config()

    result = workspace.backfill()
    assert result.returncode != 0, str(result)
    assert "nothing could be read" in result.stderr, str(result)
    assert result.summary["quarantined"] == len(made), str(result)
    assert result.summary["stored"] == 0
    listing = workspace.cli("quarantine")
    assert f"{len(made)} in quarantine" in listing.stdout, str(listing)
    for bad in made:
        assert bad.path.name in listing.stdout, str(listing)


# --------------------------------------------------------------------------- timeline


@dataclass
class Recent:
    """A store holding events of the last six hours, backfilled once for the module."""

    workspace: Workspace
    records: list[dict[str, Any]]
    by_id: dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def recent(tmp_path_factory: pytest.TempPathFactory, ctgen: ModuleType) -> Recent:
    workspace = Workspace(tmp_path_factory.mktemp("timeline"))
    now = datetime.now(UTC).replace(microsecond=0)
    records = generate(
        ctgen,
        2000,
        seed=21,
        start=now - timedelta(hours=6),
        span=timedelta(hours=6),
        accounts=["111111111111", "222222222222"],
        regions=["eu-west-1"],
    )
    write_tree(ctgen, workspace.data, records)
    workspace.write_config()
    result = workspace.backfill()
    assert result.returncode == 0, str(result)
    assert result.summary["stored"] == len(records), str(result)
    return Recent(workspace, records, {r["eventID"]: r for r in records})


def _failed(record: dict[str, Any]) -> bool:
    if record.get("errorCode") or record.get("errorMessage"):
        return True
    response = record.get("responseElements")
    return isinstance(response, dict) and response.get(record.get("eventName")) == "Failure"


def _pick(values: Counter[str], low: int = 5) -> str:
    """A value that occurs often enough to test with, but not everywhere."""
    for value, count in values.most_common():
        if count >= low:
            return value
    pytest.fail(f"generated data has no value occurring {low} times: {values}")


def test_timeline_json_prints_one_ecs_document_per_line(recent: Recent) -> None:
    """timeline --json prints ECS documents, one per line, newest first, 50 by default:
    the events read and, among them, the entries of the alerts they raised."""
    result = recent.workspace.cli("timeline", "--json")
    assert result.returncode == 0, str(result)
    lines = result.stdout.splitlines()
    assert len(lines) == 50, str(result)
    docs = [orjson.loads(line) for line in lines]
    standing = alerts_as_they_stand(recent.workspace.db)
    for doc in docs:
        assert doc["@timestamp"].endswith("Z")
        if is_alert_entry(doc):
            assert doc["event"]["kind"] == "alert"
            assert doc["event"]["id"] in standing
        else:
            assert doc["event"]["id"] in recent.by_id
            assert doc["event"]["dataset"] == "aws.cloudtrail"
    times = [doc["@timestamp"] for doc in docs]
    assert times == sorted(times, reverse=True)
    read = [doc["@timestamp"] for doc in docs if not is_alert_entry(doc)]
    assert read == sorted((r["eventTime"] for r in recent.records), reverse=True)[: len(read)]

    everything = recent.workspace.timeline()
    events = Counter(doc["event"]["id"] for doc in everything if not is_alert_entry(doc))
    assert events == Counter(recent.by_id.keys())
    entries = Counter(doc["event"]["id"] for doc in everything if is_alert_entry(doc))
    assert entries == standing, "a backfill's alerts are on the timeline once, as they stand"


def test_timeline_table_without_a_terminal(recent: Recent) -> None:
    """Without a terminal, timeline prints a plain table, its lines whole, and a count."""
    result = recent.workspace.cli("timeline", "--limit", "20", "--oldest-first")
    assert result.returncode == 0, str(result)
    lines = result.stdout.splitlines()
    assert lines[0].split()[:5] == ["time", "dataset", "event", "id", "who"], str(result)
    assert lines[-1] == "20 events"
    rows = lines[1:-1]
    assert len(rows) == 20
    assert "\x1b[" not in result.stdout, "colour codes without a terminal"
    entries = [doc for doc in stored_documents(recent.workspace.db) if is_alert_entry(doc)]
    times = sorted([r["eventTime"] for r in recent.records] + [d["@timestamp"] for d in entries])
    expected_times = [t.replace("T", " ").removesuffix("Z") for t in times[:20]]
    assert [row[:19] for row in rows] == expected_times
    listed = recent.workspace.timeline("--limit", "20", "--oldest-first")
    for row, doc in zip(rows, listed, strict=True):
        assert row.split()[2:4] == [doc["event"]["dataset"], doc["event"]["id"]], row
        if not is_alert_entry(doc):
            cloud = doc["cloud"]
            assert row.endswith(f"  {cloud['account']['id']}/{cloud['region']}"), row


def _ids(recent: Recent, *args: str) -> Counter[str]:
    return Counter(recent.workspace.timeline_ids(*args))


def test_timeline_dataset_filter_takes_or_leaves_the_alerts(recent: Recent) -> None:
    """--dataset auditcorr.alert lists the alerts' entries only; a source's dataset, no alert."""
    standing = alerts_as_they_stand(recent.workspace.db)
    assert _ids(recent, "--dataset", "auditcorr.alert") == standing
    assert _ids(recent, "--dataset", "aws.cloudtrail") == Counter(recent.by_id.keys())
    assert _ids(recent, "--source", "rules") == standing


def test_timeline_filters_by_user(recent: Recent) -> None:
    """--user returns exactly the events whose user.name is that user."""
    from daemon.normalize.cloudtrail import normalize

    names = {r["eventID"]: normalize(r).user_name for r in recent.records}
    user = _pick(Counter(n for n in names.values() if n))
    expected = {i for i, n in names.items() if n == user}
    assert _ids(recent, "--user", user) == Counter(expected)


def test_timeline_filters_by_ip(recent: Recent) -> None:
    """--ip returns exactly the events from that source address."""
    ip = _pick(
        Counter(r["sourceIPAddress"] for r in recent.records if r["sourceIPAddress"][0].isdigit())
    )
    expected = {r["eventID"] for r in recent.records if r["sourceIPAddress"] == ip}
    assert _ids(recent, "--ip", ip) == Counter(expected)


def test_timeline_filters_by_action(recent: Recent) -> None:
    """--action returns exactly the events of that eventName."""
    counts = Counter(r["eventName"] for r in recent.records)
    action = next(name for name, count in counts.most_common() if count < len(recent.records) / 4)
    expected = {r["eventID"] for r in recent.records if r["eventName"] == action}
    assert _ids(recent, "--action", action) == Counter(expected)


def test_timeline_filters_failures(recent: Recent) -> None:
    """--outcome failure returns exactly the failed calls and sign-ins."""
    expected = {r["eventID"] for r in recent.records if _failed(r)}
    assert 0 < len(expected) < len(recent.records)
    assert _ids(recent, "--outcome", "failure") == Counter(expected)


def test_timeline_full_text_query(recent: Recent) -> None:
    """-q finds the events whose text holds the word (an error code here), and only those."""
    codes = Counter(r["errorCode"] for r in recent.records if r.get("errorCode"))
    # A code no other record mentions anywhere, so the expectation is exact.
    code = next(
        (
            c
            for c, _ in codes.most_common()
            if sum(c in orjson.dumps(r).decode() for r in recent.records) == codes[c]
        ),
        None,
    )
    assert code is not None, f"every error code also occurs elsewhere: {codes}"
    expected = {r["eventID"] for r in recent.records if r.get("errorCode") == code}
    assert _ids(recent, "-q", code) == Counter(expected)


def test_timeline_relative_since_and_until(recent: Recent) -> None:
    """--since 2h / --until 1h are ages before now, measured when the command runs."""
    before = datetime.now(UTC)
    docs = recent.workspace.timeline("--since", "2h", "--until", "1h")
    after = datetime.now(UTC)
    found = Counter(doc["event"]["id"] for doc in docs if not is_alert_entry(doc))
    assert max(found.values(), default=1) == 1
    for doc in filter(is_alert_entry, docs):
        assert (
            before - timedelta(hours=2)
            <= parse_timestamp(doc["@timestamp"])
            <= after - timedelta(hours=1)
        )
    times = {i: event_time(r) for i, r in recent.by_id.items()}
    surely = {
        i
        for i, t in times.items()
        if after - timedelta(hours=2) <= t <= before - timedelta(hours=1)
    }
    maybe = {
        i
        for i, t in times.items()
        if before - timedelta(hours=2) <= t <= after - timedelta(hours=1)
    }
    assert len(surely) > 100
    assert surely <= set(found) <= maybe


def test_timeline_filters_combine(recent: Recent) -> None:
    """Several filters together must all hold (--action with --outcome failure and --since)."""
    failed = [r for r in recent.records if _failed(r)]
    action = _pick(Counter(r["eventName"] for r in failed), low=2)
    cutoff = datetime.now(UTC) - timedelta(hours=5)
    started = time.monotonic()
    found = _ids(recent, "--action", action, "--outcome", "failure", "--since", "5h")
    slack = timedelta(seconds=time.monotonic() - started + 1)
    surely = {
        r["eventID"] for r in failed if r["eventName"] == action and event_time(r) >= cutoff + slack
    }
    maybe = {
        r["eventID"] for r in failed if r["eventName"] == action and event_time(r) >= cutoff - slack
    }
    assert surely <= set(found) <= maybe
