"""Per-source keep/drop filters and CloudTrail selection: the syntax, the evaluator, the
decode workers, config checks, the counters and the committed tally."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from textwrap import dedent
from typing import Any

import orjson
import pytest
from metricsupport import samples, scrape, value

from connectors.base import Checkpoint, RawBatch
from connectors.sources.cloudtrail_files import CloudtrailFilesConfig
from daemon.api.sources import source_rows
from daemon.cli.base import EXIT_OK
from daemon.cli.main import main
from daemon.cli.sources import _source
from daemon.config import ConfigFileError, load_config
from daemon.doctor import _filter_notices
from daemon.filter_check import filter_warnings
from daemon.filters import DROPPED_KEY, FilterSyntaxError, compiled, matches, parse
from daemon.logtypes import normalize_record
from daemon.model import AuditEvent
from daemon.normalize import Limits
from daemon.normalize.cloudtrail import RAW_FIELDS, decode, normalize, selector
from daemon.pipeline import Pipeline
from daemon.process import Job, init_worker, process
from daemon.store.base import EventQuery
from daemon.store.sqlite import SqliteStore
from daemon.store.text import tag_values

REPO = Path(__file__).resolve().parents[2]


def _record(name: str, number: int, **more: Any) -> dict[str, Any]:
    return {
        "eventVersion": "1.09",
        "eventID": f"00000000-0000-4000-8000-{number:012d}",
        "eventTime": "2026-11-20T02:10:03Z",
        "eventSource": "s3.amazonaws.com",
        "eventName": name,
        "awsRegion": "eu-west-1",
        "recipientAccountId": "111111111111",
        "sourceIPAddress": "198.51.100.7",
        "userIdentity": {"type": "IAMUser", "userName": "alice"},
        **more,
    }


LOGIN = _record(
    "ConsoleLogin",
    1,
    eventSource="signin.amazonaws.com",
    readOnly=False,
    eventCategory="Management",
)
PUT_POLICY = _record(
    "PutBucketPolicy",
    2,
    readOnly=False,
    requestParameters={"bucketName": "payroll-exports"},
)
"""A management event written before CloudTrail had ``eventCategory``."""
GET_OBJECT = _record(
    "GetObject",
    3,
    readOnly=True,
    eventCategory="Data",
    requestParameters={"bucketName": "web-assets", "key": "logo.png"},
)
LIST_BUCKETS = _record("ListBuckets", 4, readOnly="true", eventCategory="Management")
RECORDS = [LOGIN, PUT_POLICY, GET_OBJECT, LIST_BUCKETS]


def _event(record: dict[str, Any]) -> AuditEvent:
    return normalize(record)


# -- the expression syntax ----------------------------------------------------------------


def test_field_terms_match_exact_values_and_all_terms_must_hold() -> None:
    """``action:X dataset:Y`` holds only when both fields have exactly those values."""
    both = parse("action:GetObject dataset:aws.cloudtrail")
    assert matches(both, _event(GET_OBJECT), "ct")
    assert not matches(both, _event(LOGIN), "ct")
    assert not matches(parse("action:getobject"), _event(GET_OBJECT), "ct")


def test_negated_terms_and_the_source_field() -> None:
    """``-term`` must not hold; ``source:`` is the id of the source that read the event."""
    expression = parse("dataset:aws.cloudtrail -action:ConsoleLogin")
    assert matches(expression, _event(GET_OBJECT), "ct")
    assert not matches(expression, _event(LOGIN), "ct")
    assert matches(parse("source:ct_org"), _event(LOGIN), "ct_org")
    assert not matches(parse("-source:ct_org"), _event(LOGIN), "ct_org")


def test_words_search_the_event_text_as_the_timeline_does() -> None:
    """A word matches the searchable text folded, a word of several tokens as a phrase,
    a trailing ``*`` as a prefix; resource names in the request are searchable."""
    event = _event(GET_OBJECT)
    assert matches(parse("WEB-ASSETS"), event, "ct")
    assert matches(parse("web-ass*"), event, "ct")
    assert not matches(parse("web-ass"), event, "ct")
    assert not matches(parse("payroll-exports"), event, "ct")
    assert matches(parse("-payroll-exports"), event, "ct")


def test_process_field_matches_the_program_of_a_syslog_event() -> None:
    """``process:CRON`` reads ``process.name``, which the timeline's filters do not offer."""
    event = AuditEvent(
        id="x", timestamp=_event(LOGIN).timestamp, dataset="system.syslog", host_name="web01"
    )
    event.fields["process.name"] = "CRON"
    assert matches(parse("host:web01 process:CRON"), event, "relay")
    assert not matches(parse("process:sshd"), event, "relay")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("actoin:GetObject", "unknown field 'actoin'"),
        ("", "empty expression"),
        ("-!? (", "holds no word"),
    ],
)
def test_bad_expressions_are_refused_with_the_reason(text: str, says: str) -> None:
    """A misspelled field, an empty expression and a term without a word do not compile."""
    with pytest.raises(FilterSyntaxError, match=says):
        parse(text)


def test_keep_then_drop_and_the_name_of_the_filter_that_dropped() -> None:
    """An event must match one keep expression and no drop expression; the verdict names
    the filter, the first drop expression that matched by its position."""
    filters = compiled(("dataset:aws.cloudtrail",), ("action:GetObject", "user:alice"))
    assert filters is not None
    assert filters.verdict(_event(GET_OBJECT), "ct") == "drop[0]"
    assert filters.verdict(_event(LOGIN), "ct") == "drop[1]"
    syslog = AuditEvent(id="y", timestamp=_event(LOGIN).timestamp, dataset="system.auth")
    assert filters.verdict(syslog, "ct") == "keep"
    assert compiled((), ()) is None


# -- CloudTrail selection on the raw record -------------------------------------------------


def test_cloudtrail_selection_reads_category_and_read_only_of_the_raw_record() -> None:
    """``event_categories`` drops data events (a record without a category is a management
    event); ``read_only = false`` drops reads, whether written as a boolean or a string."""
    check = selector({"event_categories": ["Management"], "read_only": False})
    assert check is not None
    assert [check(r) for r in RECORDS] == [None, None, "event_categories", "read_only"]
    assert selector({}) is None


def test_fields_read_on_the_raw_record_are_what_normalize_sets() -> None:
    """Each CloudTrail ``RAW_FIELDS`` reader gives the normalized event's value, over the
    demo trail's records: a filter decided before normalizing decides the same."""
    seen = 0
    for path in sorted((REPO / "examples" / "demo" / "AWSLogs").rglob("*.json.gz")):
        for record in decode(path.read_bytes(), Limits()):
            values = dict(tag_values(normalize(record), "ct"))
            assert {name: read(record) for name, read in RAW_FIELDS.items()} == {
                name: values[name] for name in RAW_FIELDS
            }
            seen += 1
    assert seen > 300


def test_filters_on_raw_fields_are_decided_before_normalizing() -> None:
    """Expressions on action, dataset, region and source only are decided on the raw
    record, with the verdict the normalized event gets; words or users are not."""
    filters = compiled(
        ("region:eu-west-1",),
        ("action:GetObject", "dataset:aws.cloudtrail -action:ConsoleLogin -source:other"),
    )
    assert filters is not None
    assert filters.decided_by([*RAW_FIELDS, "source"])
    for record in RECORDS:
        values: dict[str, str | None] = {n: read(record) for n, read in RAW_FIELDS.items()}
        values["source"] = "ct"
        assert filters.raw_verdict(values) == filters.verdict(normalize(record), "ct")
    for undecided in (("user:alice",), ("payroll-exports",)):
        later = compiled((), undecided)
        assert later is not None
        assert not later.decided_by([*RAW_FIELDS, "source"])


# -- the decode workers ---------------------------------------------------------------------


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[SqliteStore]:
    """A store and this process set up as a decode worker for it."""
    store = SqliteStore(tmp_path / "t.db", retention_days=0, normalize=normalize_record)
    init_worker(store.dictionaries())
    yield store
    store.close()


def _job(store: SqliteStore, **filters: Any) -> Job:
    payload = orjson.dumps({"Records": RECORDS})
    return Job("ct", RawBatch("cloudtrail", "test://f", payload), store.codec, Limits(), **filters)


def test_workers_drop_before_encoding_and_count_by_filter(worker: SqliteStore) -> None:
    """Selection and drop expressions keep records out of the rows, each counted under
    its filter; the batch's checkpoints stay with the result."""
    job = _job(
        worker,
        selection={"event_categories": ["Management"]},
        drop=("action:ListBuckets",),
    )
    job.batch.checkpoints.append(Checkpoint("f", {"size": 1}))
    result = process(job)
    assert result.records == 4
    assert len(result.rows) == len(result.texts) == 2
    assert result.dropped == {"event_categories": 1, "drop[0]": 1}
    assert [c.key for c in result.checkpoints] == ["f"]


def test_workers_judge_words_and_users_after_normalizing(worker: SqliteStore) -> None:
    """Expressions that read the searchable text or the user are judged on the event."""
    result = process(_job(worker, keep=("user:alice",), drop=("web-assets",)))
    assert result.dropped == {"drop[0]": 1}
    assert len(result.rows) == 3


def test_workers_without_filters_store_everything(worker: SqliteStore) -> None:
    """A source without filters loses nothing and counts no drops."""
    result = process(_job(worker))
    assert len(result.rows) == 4
    assert result.dropped == {}


# -- config -----------------------------------------------------------------------------------


def _config(tmp_path: Path, source: str) -> Path:
    (tmp_path / "trail").mkdir(exist_ok=True)
    path = tmp_path / "config.toml"
    path.write_text(
        dedent(
            f"""\
            [daemon]
            state_dir = "state"
            [sources.ct_org]
            type = "cloudtrail_files"
            path = "trail"
            {source}
            """
        )
    )
    return path


def test_bad_expressions_are_config_errors_at_their_key_path(tmp_path: Path) -> None:
    """check-config and run name each expression that does not compile by its key path."""
    path = _config(tmp_path, 'keep = ["dataset:aws.cloudtrail"]\ndrop = ["action:X", "prog:CRON"]')
    with pytest.raises(ConfigFileError) as caught:
        load_config(path)
    (error,) = caught.value.errors
    assert error.path == "sources.ct_org.drop[1]"
    assert "unknown field 'prog'" in error.message
    assert "docs/filters.md" in str(error.hint)


def test_cloudtrail_selection_settings_are_validated(tmp_path: Path) -> None:
    """An unknown event category is refused at its key path; good settings load."""
    with pytest.raises(ConfigFileError) as caught:
        load_config(_config(tmp_path, 'event_categories = ["Managment"]'))
    assert caught.value.errors[0].path == "sources.ct_org.event_categories.0"
    config = load_config(_config(tmp_path, 'event_categories = ["Management"]\nread_only = false'))
    source = config.sources["ct_org"]
    assert isinstance(source, CloudtrailFilesConfig)
    assert source.selection() == {"event_categories": ["Management"], "read_only": False}


# -- the pipeline: counters, metrics, the committed tally --------------------------------------


async def _backfill(store: SqliteStore, config: CloudtrailFilesConfig) -> Pipeline:
    pipeline = Pipeline(store, {"ct": config}, mode="backfill", workers=1, member="m1")
    await asyncio.wait_for(pipeline.run(), timeout=120)
    return pipeline


async def test_dropped_records_are_counted_and_their_checkpoints_committed(
    tmp_path: Path,
) -> None:
    """A backfill stores what the filters keep, counts the rest per filter for /metrics,
    /api/v1/sources and the summary, commits the checkpoint and the tally with the
    batch; a second backfill reads nothing again and ``auditcorr sources`` shows it."""
    trail = tmp_path / "trail"
    trail.mkdir()
    (trail / "111111111111_CloudTrail_eu-west-1_20261120T0210Z_a.json").write_bytes(
        orjson.dumps({"Records": RECORDS})
    )
    config = CloudtrailFilesConfig(
        path=trail, event_categories=["Management"], drop=["action:ListBuckets"]
    )
    store = SqliteStore(tmp_path / "t.db", retention_days=0, normalize=normalize_record)
    try:
        first = await _backfill(store, config)
        assert (first.stats.stored, first.stats.dropped) == (2, 2)
        per = first.stats.source("ct")
        assert per.dropped_by == {"event_categories": 1, "drop[0]": 1}
        dropped = value(
            samples(scrape(first)), "auditcorr_events_dropped_total", source="ct", filter="drop[0]"
        )
        assert dropped == 1
        (row,) = source_rows(first)
        assert (row.dropped, row.dropped_by) == (2, {"drop[0]": 1, "event_categories": 1})
        actions = {doc["event"]["action"] for doc in store.search(EventQuery(source="ct"))}
        assert actions == {"ConsoleLogin", "PutBucketPolicy"}

        again = await _backfill(store, config)
        assert (again.stats.records, again.stats.dropped) == (0, 0)
        saved = store.checkpoints("ct")
        assert saved[DROPPED_KEY + "m1"] == {"event_categories": 1, "drop[0]": 1}
        listing = _source(
            "ct", "cloudtrail_files", saved, store.checkpoint_times("ct"), datetime.now(UTC)
        )
        assert listing["dropped"] == {"drop[0]": 1, "event_categories": 1}
        assert all(not c["key"].startswith(DROPPED_KEY) for c in listing["checkpoints"])
    finally:
        store.close()


# -- rules that a filter may blind ----------------------------------------------------------


@pytest.fixture(scope="module")
def builtin_rules() -> list[Any]:
    """The built-in detection rules, loaded once."""
    from daemon.rules.loader import load_rules

    return load_rules(["builtin"]).detections


@pytest.mark.parametrize(
    ("drop", "warned"),
    [
        ("action:ConsoleLogin", "console_login_without_mfa"),
        ("dataset:aws.cloudtrail -user:ci-bot", "cloudtrail_tampering"),
        ("dataset:system.auth process:sudo", "sudo_by_non_admin"),
    ],
)
def test_a_drop_naming_events_a_rule_reads_warns(
    builtin_rules: list[Any], drop: str, warned: str
) -> None:
    """A drop expression whose dataset, action or program a built-in rule reads names it."""
    config = CloudtrailFilesConfig(path=Path(), drop=["host:web01", drop])
    (warning,) = filter_warnings({"ct_org": config}, builtin_rules)
    assert warning.key == "sources.ct_org.drop[1]"
    assert warned in warning.rules
    assert "may miss" in str(warning)


def test_a_drop_of_events_no_rule_reads_is_quiet(builtin_rules: list[Any]) -> None:
    """Dropping S3 reads or cron lines, which no built-in rule keys on, warns of nothing."""
    config = CloudtrailFilesConfig(
        path=Path(), drop=["action:GetObject", "dataset:system.syslog process:CRON"]
    )
    assert filter_warnings({"ct_org": config}, builtin_rules) == []


def test_rules_list_and_doctor_warn_of_a_blinding_filter(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``rules list --config`` prints the warning on stderr; doctor lists it as a notice."""
    path = _config(tmp_path, 'drop = ["action:ConsoleLogin"]')
    assert main(["rules", "list", "--config", str(path)]) == EXIT_OK
    err = capsys.readouterr().err
    assert "warning: sources.ct_org.drop[0] ('action:ConsoleLogin')" in err
    assert "console_login_without_mfa" in err
    (notice,) = _filter_notices(load_config(path))
    assert notice.ok
    assert notice.name == "filter sources.ct_org.drop[0]"
