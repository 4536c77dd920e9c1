"""new_terms and baseline rules: the YAML format, learning, verdicts, bounds and restarts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from daemon.model import format_timestamp
from daemon.rules.behaviour import BehaviourError, parse_rule
from daemon.rules.correlate import Correlator
from daemon.rules.hits import Hit, HitMaker
from daemon.rules.learned import day_of, stored_learning
from daemon.rules.loader import (
    Loaded,
    RuleInfo,
    RuleLoadError,
    RuleReferenceError,
    load_rules,
)
from daemon.rules.offline import run_files

T0 = datetime(2026, 11, 1, tzinfo=UTC)
DAY = timedelta(days=1)

LOGIN = """
title: login
name: login
logsource: {product: linux, service: sshd}
detection:
  sel: {event.action: ssh_login, event.outcome: success}
  condition: sel
---
"""
NEW_HOST = """
title: First login on a host
name: new_host
level: low
new_terms:
  rules: [login]
  fields: [user.name, host.name]
  group-by: [user.name]
  history: 3d
"""
BURST = """
title: More hosts than usual
name: burst
level: high
baseline:
  rules: [login]
  group-by: [{who: [user.name]}]
  timespan: 10m
  distinct: host.name
  history: 3d
  factor: 2
  floor: 3
  new_group_floor: 4
"""


def load(tmp_path: Path, *docs: str) -> Loaded:
    (tmp_path / "r.yml").write_text(LOGIN + "\n---\n".join(docs))
    return load_rules([tmp_path])


def login(at: timedelta, user: str = "alice", host: str = "db1") -> dict[str, Any]:
    return {
        "@timestamp": format_timestamp(T0 + at),
        "event": {
            "id": f"l-{at.total_seconds()}-{user}-{host}",
            "dataset": "system.auth",
            "action": "ssh_login",
            "outcome": "success",
        },
        "process": {"name": "sshd"},
        "host": {"name": host},
        "user": {"name": user},
    }


def hits(loaded: Loaded, docs: list[dict[str, Any]]) -> list[Hit]:
    maker = HitMaker(loaded)
    return sorted((hit for doc in docs for hit in maker.hits(doc, "s")), key=Hit.order)


def raised(loaded: Loaded, docs: list[dict[str, Any]]) -> list[tuple[str, dict[str, str], int]]:
    alerts = Correlator(loaded).feed(hits(loaded, docs))
    return [(alert.rule_id, alert.group, alert.count) for alert in alerts]


def test_a_new_term_after_learning_alerts_and_a_known_one_does_not(tmp_path: Path) -> None:
    """A tuple unseen within the history alerts once learned; seen ones and learning stay quiet."""
    loaded = load(tmp_path, NEW_HOST)
    docs = [
        login(timedelta(0)),  # learning starts
        login(DAY, host="db2"),  # learning: remembered, no alert
        login(3 * DAY + timedelta(hours=1), host="db2"),  # known
        login(3 * DAY + timedelta(hours=2), host="db3"),  # new
        login(3 * DAY + timedelta(hours=3), user="bob", host="db3"),  # new for bob
        login(3 * DAY + timedelta(hours=4), host="db3"),  # now known
    ]
    assert raised(loaded, docs) == [
        ("new_host", {"user.name": "alice"}, 1),
        ("new_host", {"user.name": "bob"}, 1),
    ]


def test_a_term_not_seen_within_the_history_is_new_again(tmp_path: Path) -> None:
    """History is a window: a tuple last seen longer ago than it alerts again."""
    loaded = load(tmp_path, NEW_HOST)
    docs = [login(timedelta(0)), login(DAY, host="db2"), login(5 * DAY, host="db2")]
    assert raised(loaded, docs) == [("new_host", {"user.name": "alice"}, 1)]


def test_nothing_alerts_while_the_history_is_shorter_than_the_window(tmp_path: Path) -> None:
    """Quiet while learning: every tuple is new then, and none alerts."""
    loaded = load(tmp_path, NEW_HOST, BURST)
    docs = [login(timedelta(minutes=m), host=f"h{m}") for m in range(10)]
    assert raised(loaded, docs) == []


def test_a_backfill_of_older_events_is_history(tmp_path: Path) -> None:
    """An older event reaching the correlator later moves the start of learning back."""
    loaded = load(tmp_path, NEW_HOST)
    correlator = Correlator(loaded)
    assert correlator.feed(hits(loaded, [login(10 * DAY, host="db9")])) == []
    correlator.feed(hits(loaded, [login(timedelta(0))]))
    [alert] = correlator.feed(hits(loaded, [login(10 * DAY + timedelta(hours=1), host="db8")]))
    assert alert.rule_id == "new_host"


def test_baseline_compares_a_group_with_its_own_peaks(tmp_path: Path) -> None:
    """Up to twice its routine peak stays quiet; above it, or a new group at its floor, alerts."""
    loaded = load(tmp_path, BURST)
    nightly = [
        login(day * DAY + timedelta(minutes=m), user="job", host=f"h{m}")
        for day in range(5)
        for m in range(3)
    ]
    above = [
        login(4 * DAY + timedelta(hours=5, minutes=m), user="job", host=f"x{m}") for m in range(7)
    ]
    stranger = [
        login(4 * DAY + timedelta(hours=6, minutes=m), user="eve", host=f"h{m}") for m in range(4)
    ]
    found = raised(loaded, nightly + above + stranger)
    assert found == [("burst", {"who": "job"}, 7), ("burst", {"who": "eve"}, 4)]
    alert = Correlator(loaded).feed(hits(loaded, nightly + above))[-1]
    assert alert.context["baseline"][0] == {
        "value": 7,
        "usual": 3,
        "factor": 2.0,
        "timespan": "10m",
    }


def test_restarting_from_the_committed_rows_gives_the_same_verdicts(tmp_path: Path) -> None:
    """State rows restored after every round make the same alerts as one run without restarts."""
    loaded = load(tmp_path, NEW_HOST, BURST)
    docs = [
        login(day * DAY + timedelta(minutes=m), user=user, host=f"h{(day * m) % 7}")
        for day in range(6)
        for m in range(0, 60, 7)
        for user in ("alice", "bob")
    ] + [login(5 * DAY + timedelta(hours=3, minutes=m), host=f"new{m}") for m in range(8)]
    every = hits(loaded, docs)
    straight = Correlator(loaded).feed(every)
    state: dict[str, bytes] = {}
    restarted = []
    for start in range(0, len(every), 9):
        correlator = Correlator(loaded)
        correlator.restore(state)
        restarted += correlator.feed(every[start : start + 9])
        for row, value in correlator.changes().items():
            if value is None:
                state.pop(row, None)
            else:
                state[row] = value
    final = {alert.id: alert.to_json() for alert in restarted}
    assert final == {alert.id: alert.to_json() for alert in straight}
    assert straight


def test_a_full_rule_forgets_its_least_recently_seen_terms(tmp_path: Path) -> None:
    """max_terms bounds a rule's terms; the oldest go first and are counted."""
    loaded = load(tmp_path, NEW_HOST.replace("history: 3d", "history: 3d\n  max_terms: 10"))
    correlator = Correlator(loaded)
    docs = [login(timedelta(hours=n), host=f"h{n}") for n in range(30)]
    correlator.feed(hits(loaded, docs))
    learner = correlator.learner
    assert len(learner.terms["new_host"]) <= 10
    assert learner.learning["new_host"].forgotten == 30 - len(learner.terms["new_host"])
    newest = max(learner.terms["new_host"].values())
    assert newest == day_of(T0 + timedelta(hours=29))


def test_terms_older_than_the_history_are_swept(tmp_path: Path) -> None:
    """Expired terms leave memory and the state rows as event time passes."""
    loaded = load(tmp_path, NEW_HOST)
    correlator = Correlator(loaded)
    correlator.feed(hits(loaded, [login(timedelta(0), host=f"h{n}") for n in range(5)]))
    rows = correlator.changes()
    assert sum(orjson.loads(row)[0] == "terms" for row in rows) == 5
    correlator.feed(hits(loaded, [login(6 * DAY)]))
    correlator.prune()
    assert len(correlator.learner.terms["new_host"]) == 1
    deleted = [row for row, value in correlator.changes().items() if value is None]
    assert len(deleted) == 5


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ("new_terms:\n  rules: [nothing]\n  fields: [user.name]\n  history: 3d", "nothing"),
        ("new_terms:\n  rules: [login]\n  history: 3d", "fields"),
        ("new_terms:\n  rules: [login]\n  fields: [user.name]\n  history: soon", "history"),
        ("new_terms:\n  rules: [login]\n  fields: [a]\n  history: 3d\n  colour: red", "colour"),
        (
            "baseline:\n  rules: [login]\n  group-by: [a]\n  timespan: 1m\n  history: 3d\n"
            "  floor: 2\n  factor: 0.5",
            "factor",
        ),
        ("baseline:\n  rules: [login]\n  group-by: [a]\n  timespan: 1m\n  history: 3d", "floor"),
    ],
)
def test_a_broken_block_fails_to_load_naming_the_problem(
    tmp_path: Path, block: str, message: str
) -> None:
    """Mistakes in a new_terms or baseline block stop the load with the key named."""
    with pytest.raises(RuleLoadError, match=message) as caught:
        load(tmp_path, f"title: t\nname: t\n{block}\n")
    assert isinstance(caught.value, RuleReferenceError) == (message == "nothing")


def test_the_detections_a_rule_learns_from_become_building_blocks(tmp_path: Path) -> None:
    """The detection a new_terms rule names raises no alert of its own."""
    loaded = load(tmp_path, NEW_HOST)
    assert [(rule.info.id, rule.alerts) for rule in loaded.detections] == [("login", False)]
    assert [rule.type for rule in loaded.behaviours] == ["new_terms"]


def test_rules_test_learns_from_history_files_and_says_when_it_could_not(
    tmp_path: Path,
) -> None:
    """``rules test --history``: history files teach, event files are judged; too short a
    history leaves the rule learning, and the run says so."""
    loaded = load(tmp_path, NEW_HOST)
    history, events = tmp_path / "history.jsonl", tmp_path / "events.jsonl"
    history.write_bytes(b"".join(orjson.dumps(doc) + b"\n" for doc in [login(timedelta(0))]))
    events.write_bytes(
        b"".join(
            orjson.dumps(doc) + b"\n"
            for doc in [login(4 * DAY), login(4 * DAY + timedelta(hours=1), host="db2")]
        )
    )
    run = run_files(loaded, [events], history=[history])
    assert [(alert.rule_id, alert.group) for alert in run.alerts] == [
        ("new_host", {"user.name": "alice"})
    ]
    assert run.learning["new_host"]["state"] == "learned"
    alone = run_files(loaded, [events])
    assert alone.alerts == []
    assert alone.learning["new_host"]["state"] == "learning"
    assert "raises nothing" in alone.learning["new_host"]["note"]


def test_rules_list_reads_the_learning_state_from_the_committed_rows(tmp_path: Path) -> None:
    """stored_learning: learning until the history has passed, then learned, with sizes."""
    loaded = load(tmp_path, NEW_HOST, BURST)
    correlator = Correlator(loaded)
    correlator.feed(hits(loaded, [login(timedelta(0)), login(DAY, host="db2")]))
    rows = {row: value for row, value in correlator.changes().items() if value is not None}
    early = stored_learning(loaded.behaviours, rows)
    assert early["new_host"]["state"] == "learning"
    assert early["new_host"]["until"] == (T0 + 3 * DAY).isoformat()
    assert early["new_host"]["terms"] == 2
    assert early["burst"]["groups"] == 1
    correlator.feed(hits(loaded, [login(3 * DAY)]))
    rows |= {row: value for row, value in correlator.changes().items() if value is not None}
    assert stored_learning(loaded.behaviours, rows)["new_host"]["state"] == "learned"
    assert stored_learning(loaded.behaviours, {})["new_host"]["state"] == "waiting"


_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=2)
    ),
    max_leaves=6,
)
_KEYS = st.sampled_from(
    [
        "rules",
        "fields",
        "group-by",
        "history",
        "timespan",
        "distinct",
        "percentile",
        "factor",
        "floor",
        "new_group_floor",
        "max_terms",
        "max_groups",
        "other",
    ]
)


@given(
    kind=st.sampled_from(["new_terms", "baseline"]),
    block=st.dictionaries(_KEYS, _VALUES | st.sampled_from(["login", "10m", "3d", ["login"]])),
)
def test_any_block_loads_or_fails_with_a_reason(kind: str, block: dict[str, Any]) -> None:
    """Whatever a block holds, parsing gives a rule or a BehaviourError, nothing else."""
    info = RuleInfo("r", "r", "", "low", (), (), "r.yml")
    try:
        rule = parse_rule(info, kind, block, {"login"})
    except BehaviourError:
        return
    assert rule.type == kind
    assert rule.rules == ("login",)


def test_the_state_of_a_rule_no_longer_loaded_is_deleted(tmp_path: Path) -> None:
    """Rows of a rule taken out of the rule paths go with the next commit after a restart."""
    loaded = load(tmp_path, NEW_HOST, BURST)
    correlator = Correlator(loaded)
    correlator.feed(hits(loaded, [login(timedelta(0)), login(DAY, host="db2")]))
    rows = {row: value for row, value in correlator.changes().items() if value is not None}
    fewer = load(tmp_path, NEW_HOST)
    restarted = Correlator(fewer)
    restarted.restore(rows)
    deleted = {row for row, value in restarted.changes().items() if value is None}
    assert deleted == {row for row in rows if '"burst"' in row}
    assert deleted
    assert len(restarted.learner.terms["new_host"]) == 2
