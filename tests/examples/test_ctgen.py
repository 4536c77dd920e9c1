"""examples/ctgen.py: realistic CloudTrail records and the S3 delivery layout."""

from __future__ import annotations

import gzip
import importlib.util
import itertools
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import orjson
import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
START = datetime(2026, 11, 20, tzinfo=UTC)
IDENTITY_TYPES = {
    "Root",
    "IAMUser",
    "AssumedRole",
    "FederatedUser",
    "AWSService",
    "AWSAccount",
    "IdentityCenterUser",
    "Unknown",
}
FILE_RE = re.compile(
    r"^(?P<account>\d{12})_CloudTrail_(?P<region>[a-z]{2}(-[a-z]+)+-\d)_"
    r"(?P<stamp>\d{8}T\d{4}Z)_[A-Za-z0-9]{16}\.json\.gz$"
)


@pytest.fixture(scope="module")
def ctgen() -> ModuleType:
    """Load examples/ctgen.py by path: examples/ is not a package."""
    spec = importlib.util.spec_from_file_location("ctgen", EXAMPLES / "ctgen.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["ctgen"] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def sample(ctgen: ModuleType) -> list[dict]:
    """5,000 records over one day with the default accounts and regions."""
    return list(ctgen.generate_records(5000, start=START, span=timedelta(days=1), seed=11))


def test_same_seed_same_records_other_seed_other_records(ctgen: ModuleType) -> None:
    """Output is a pure function of the seed, so demos and benchmarks are reproducible."""

    def run(seed: int) -> list[dict]:
        return list(ctgen.generate_records(300, start=START, span=timedelta(hours=2), seed=seed))

    first, again, other = run(5), run(5), run(6)
    assert orjson.dumps(first) == orjson.dumps(again)
    assert {r["eventID"] for r in first}.isdisjoint({r["eventID"] for r in other})


def test_sample_holds_every_user_identity_type(sample: list[dict]) -> None:
    """Normalizers and rules meet every userIdentity type CloudTrail writes."""
    types = {r["userIdentity"]["type"] for r in sample}
    assert types >= IDENTITY_TYPES
    sso = [
        r["userIdentity"]
        for r in sample
        if r["userIdentity"]["type"] == "AssumedRole"
        and r["userIdentity"]["arn"].split("/")[1].startswith("AWSReservedSSO_")
    ]
    assert sso, "no IAM Identity Center sessions"
    assert all(ui["arn"].endswith("@example.com") for ui in sso)


def test_records_look_like_cloudtrail(sample: list[dict]) -> None:
    """Every record carries the fields and formats consumers rely on."""
    time_re = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
    uuid_re = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
    for r in sample:
        assert r["eventVersion"] in {"1.08", "1.09"}
        assert time_re.match(r["eventTime"])
        assert uuid_re.match(r["eventID"])
        assert r["eventCategory"] == "Management"
        assert r["eventSource"].endswith(".amazonaws.com")
        assert re.fullmatch(r"\d{12}", r["recipientAccountId"])
        for key in ("awsRegion", "sourceIPAddress", "userAgent", "eventName", "eventType"):
            assert r[key], key
    assert len({r["eventID"] for r in sample}) == len(sample)
    times = [r["eventTime"] for r in sample]
    assert times[0] >= "2026-11-20T00:00:00Z"
    assert times[-1] < "2026-11-21T00:00:00Z"
    late = sum(1 for a, b in itertools.pairwise(times) if b < a)
    assert late < len(times) * 0.1, "records should be roughly time-ordered"


def test_mix_matches_real_trails(sample: list[dict]) -> None:
    """Sign-ins, failures and service calls appear in realistic proportions."""
    n = len(sample)
    logins = [r for r in sample if r["eventName"] == "ConsoleLogin"]
    assert 0.03 * n < len(logins) < 0.08 * n
    assert any(r["responseElements"]["ConsoleLogin"] == "Failure" for r in logins)
    for r in logins:
        assert r["additionalEventData"]["MFAUsed"] in {"Yes", "No"}
        assert ("errorMessage" in r) == (r["responseElements"]["ConsoleLogin"] == "Failure")
    errors = [r for r in sample if "errorCode" in r]
    assert 0.03 * n < len(errors) < 0.08 * n
    assert all(r["errorMessage"] and r["responseElements"] is None for r in errors)
    assert {"AccessDenied", "Client.UnauthorizedOperation"} <= {r["errorCode"] for r in errors}
    services = [r for r in sample if r["userIdentity"]["type"] == "AWSService"]
    assert all(r["sourceIPAddress"] == r["userIdentity"]["invokedBy"] for r in services)


def test_average_record_size_is_realistic(sample: list[dict]) -> None:
    """Serialized records average 1.2-1.6 KB, like real management events."""
    average = sum(len(orjson.dumps(r)) for r in sample) / len(sample)
    assert 1200 <= average <= 1600, average


def test_write_tree_uses_the_aws_layout(ctgen: ModuleType, tmp_path: Path) -> None:
    """Files land where CloudTrail puts them, named for account, region and delivery time."""
    records = list(ctgen.generate_records(3000, start=START, span=timedelta(hours=1), seed=2))
    paths = ctgen.write_tree(tmp_path, records, organization_id="o-abc123def4")
    assert paths
    assert all(p.exists() for p in paths)
    for path in paths:
        rel = path.relative_to(tmp_path).parts
        assert rel[:2] == ("AWSLogs", "o-abc123def4")
        account, service, region, year, month, day, name = rel[2:]
        assert service == "CloudTrail"
        match = FILE_RE.match(name)
        assert match, name
        assert (match["account"], match["region"]) == (account, region)
        assert match["stamp"][:8] == f"{year}{month}{day}"
        body = orjson.loads(gzip.decompress(path.read_bytes()))
        assert list(body) == ["Records"]
        stamp = datetime.strptime(match["stamp"], "%Y%m%dT%H%MZ").replace(tzinfo=UTC)
        for r in body["Records"]:
            assert (r["recipientAccountId"], r["awsRegion"]) == (account, region)
            event_time = datetime.strptime(r["eventTime"], "%Y-%m-%dT%H:%M:%SZ")
            assert event_time.replace(tzinfo=UTC) < stamp, "delivered before it happened"


def test_write_tree_keeps_every_record_once(ctgen: ModuleType, tmp_path: Path) -> None:
    """Decompressed files hold exactly the records written, split at per_file."""
    records = list(ctgen.generate_records(2500, start=START, span=timedelta(minutes=20), seed=4))
    paths = ctgen.write_tree(tmp_path, records, per_file=100)
    seen: list[str] = []
    for path in paths:
        assert path.relative_to(tmp_path).parts[0:1] == ("AWSLogs",)
        batch = orjson.loads(gzip.decompress(path.read_bytes()))["Records"]
        assert 1 <= len(batch) <= 100
        seen.extend(r["eventID"] for r in batch)
    assert sorted(seen) == sorted(r["eventID"] for r in records)


def test_write_tree_without_gzip_writes_plain_json(ctgen: ModuleType, tmp_path: Path) -> None:
    """gzip=False writes the same layout as readable .json files."""
    records = list(ctgen.generate_records(50, start=START, span=timedelta(minutes=5), seed=9))
    paths = ctgen.write_tree(tmp_path, records, gzip=False)
    assert all(p.suffix == ".json" for p in paths)
    assert sum(len(orjson.loads(p.read_bytes())["Records"]) for p in paths) == 50


def test_cli_reports_files_and_events(
    ctgen: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command line writes the tree and says how much it wrote."""
    code = ctgen.main([str(tmp_path), "--events", "400", "--seed", "3", "--span-hours", "1"])
    out = capsys.readouterr().out
    files = list(tmp_path.rglob("*.json.gz"))
    assert code == 0
    assert f"wrote {len(files)} files, 400 events" in out


def test_committed_demo_is_what_make_demo_builds(ctgen: ModuleType, tmp_path: Path) -> None:
    """examples/demo matches its generator, so the story and the README cannot drift apart."""
    spec = importlib.util.spec_from_file_location("make_demo", EXAMPLES / "make_demo.py")
    assert spec is not None
    assert spec.loader is not None
    make_demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_demo)
    files, count = make_demo.build(tmp_path)

    def tree(root: Path) -> dict[str, list[dict]]:
        return {
            str(p.relative_to(root)): orjson.loads(gzip.decompress(p.read_bytes()))["Records"]
            for p in sorted(root.rglob("*.json.gz"))
        }

    built, committed = tree(tmp_path), tree(EXAMPLES / "demo")
    assert built == committed
    host_logs = sorted(p.relative_to(tmp_path) for p in (tmp_path / "hosts").rglob("*.*"))
    host_logs += sorted(p.relative_to(tmp_path) for p in (tmp_path / "hosts").rglob("syslog"))
    assert len(host_logs) == 5
    for name in host_logs:
        assert (tmp_path / name).read_bytes() == (EXAMPLES / "demo" / name).read_bytes(), name
    assert len(built) == files
    assert 300 <= count <= 500
    records = [r for batch in built.values() for r in batch]
    assert all(r["eventTime"].startswith("2026-11-20T") for r in records)
    story = [
        (r["eventTime"][11:16], r["eventName"])
        for r in records
        if r["userIdentity"].get("userName") == "mallory"
    ]
    assert [name for _, name in story].count("ConsoleLogin") == 7
    assert story[-1] == ("02:14", "StopLogging")
