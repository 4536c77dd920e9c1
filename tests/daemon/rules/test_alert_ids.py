"""Alert ids and contents are a pure function of the hits, not of how they were cut into
correlator rounds, of restarts between rounds, or of the order equal times arrived in."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from committed import Committed
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.alert import Evidence, alert_id
from daemon.model import format_timestamp
from daemon.rules import windows
from daemon.rules.engine import RuleEngine
from daemon.rules.hits import Hit, HitMaker
from daemon.rules.loader import BUILTIN

T0 = datetime(2026, 11, 20, 23, 9, 12, tzinfo=UTC)


def host(
    n: int, seconds: float, name: str, dataset: str, action: str, outcome: str, **fields: Any
) -> Any:
    """An on-prem event with the ECS fields the syslog and auditd normalizers produce."""
    return {
        "@timestamp": format_timestamp(T0 + timedelta(seconds=seconds)),
        "event": {"id": f"ev-{n:02d}", "dataset": dataset, "action": action, "outcome": outcome},
        "host": {"name": name},
        **fields,
    }


def sudo(n: int, seconds: float, name: str, user: str, command: str) -> Any:
    return host(
        n,
        seconds,
        name,
        "system.auth",
        "sudo",
        "success",
        process={"name": "sudo"},
        user={"name": user},
        actor=user,
        system={"auth": {"sudo": {"command": command}}},
    )


def ssh_failure(n: int, seconds: float, user: str) -> Any:
    doc = host(
        n,
        seconds,
        "bastion01",
        "system.auth",
        "ssh_login",
        "failure",
        process={"name": "sshd"},
        source={"ip": "203.0.113.66"},
        user={"name": user},
    )
    doc["event"] |= {"category": ["authentication"], "type": ["start"]}
    return doc


DOCS = [
    # db01: auditd ends, carol's sudo stops it and systemd reports it, two at one instant.
    host(1, 0, "db01", "auditd.log", "daemon_end", "success", user={"name": "root"}),
    sudo(2, 0, "db01", "carol", "/usr/bin/systemctl stop auditd"),
    host(3, 1, "db01", "system.syslog", "service_stopped", "success", service={"name": "auditd"}),
    # web01: two people's unapproved changes at the same second.
    sudo(4, 5, "web01", "erin", "/usr/bin/apt-get install nmap"),
    sudo(5, 5, "web01", "dave", "/usr/bin/apt-get install nmap"),
    # bastion01: a brute force whose failures share seconds, many user names.
    *(ssh_failure(10 + i, i // 3, user) for i, user in enumerate("zyxwvutsrqponmlk")),
]
MAKER = HitMaker(RuleEngine.load([BUILTIN]).loaded)
HITS = [hit for doc in DOCS for hit in MAKER.hits(doc, "s")]


def rounds(
    batches: list[list[Hit]], *, restart: bool = False, durable: bool = False
) -> dict[str, dict[str, Any]]:
    """The alerts stored (the last version of each) when each batch is one correlator
    round; with ``restart``, every round runs in a new engine that loads the state the
    previous rounds committed, as after a restart; with ``durable``, the windows' held
    hits live in what is committed, as in the daemon."""
    committed = Committed()
    engine = RuleEngine.load([BUILTIN])
    if durable:
        committed.attach(engine.correlator)
    raised = []
    for batch in batches:
        if restart:
            engine = RuleEngine.of(engine.paths, engine.loaded)
            committed.attach(engine.correlator)
        raised += engine.correlate(batch)
        committed.commit(engine.correlator)
    return {alert.id: alert.to_json() for alert in raised}


REFERENCE = rounds([HITS])


@settings(max_examples=60, deadline=None)
@given(
    order=st.permutations(range(len(HITS))),
    cuts=st.lists(st.integers(0, len(HITS)), max_size=6),
)
def test_any_order_of_the_same_hits_in_a_round_makes_the_same_alerts(
    order: list[int], cuts: list[int]
) -> None:
    """Shuffled, the same hits of one round (several writes' batches, in whatever order
    their workers finished) make the same alert ids, actors and evidence: ties in event
    time are broken by evidence id, not by arrival."""
    shuffled = [HITS[i] for i in order]
    bounds = [0, *sorted(cuts), len(shuffled)]
    batches = [shuffled[start:end] for start, end in itertools.pairwise(bounds)]
    assert rounds([[hit for batch in batches for hit in batch]]) == REFERENCE


def test_the_reference_run_raises_the_rules_the_hits_are_built_for() -> None:
    """The hits above raise tampering, brute force and unapproved changes, so the
    order test compares alerts that exist."""
    rules = {alert["rule"]["id"] for alert in REFERENCE.values()}
    assert {"audit_daemon_tampering", "ssh_brute_force", "unapproved_change"} <= rules
    (tampering,) = (a for a in REFERENCE.values() if a["rule"]["id"] == "audit_daemon_tampering")
    assert tampering["actors"] == ["carol", "root"]
    assert tampering["id"] == alert_id("audit_daemon_tampering", {"host.name": "db01"}, T0, "ev-01")


def test_alert_id_reads_sorted_group_values_and_the_first_evidence() -> None:
    """The group's key order does not change an id; the first evidence's id does, so two
    windows opening at one instant with different events are two alerts."""
    first = Evidence("ev-1", T0, "auditd.log")
    one = alert_id("r", {"host.name": "db01", "actor": "carol"}, first.timestamp, first.id)
    assert one == alert_id("r", {"actor": "carol", "host.name": "db01"}, T0, "ev-1")
    assert one != alert_id("r", {"actor": "carol", "host.name": "db01"}, T0, "ev-2")
    assert one != alert_id("r", {"actor": "carol", "host.name": "db01"}, T0 + timedelta(1), "ev-1")


@settings(max_examples=30, deadline=None)
@given(cuts=st.lists(st.integers(0, len(HITS))), restart=st.booleans())
def test_rounds_cut_anywhere_in_event_time_make_the_same_alerts(
    cuts: list[int], restart: bool
) -> None:
    """Hits in event-time order cut into rounds at any point, with or without a restart
    between rounds (the state committed, then loaded), make the alerts of one round."""
    ordered = sorted(HITS, key=Hit.order)
    bounds = [0, *sorted(cuts), len(ordered)]
    batches = [ordered[start:end] for start, end in itertools.pairwise(bounds)]
    assert rounds(batches, restart=restart) == REFERENCE


@settings(max_examples=20, deadline=None)
@given(cuts=st.lists(st.integers(0, len(HITS))))
def test_windows_read_back_from_the_store_make_the_same_alerts(cuts: list[int]) -> None:
    """With room for one group in memory, every round reads the groups it touches back
    from what was committed: the alerts are those of one round in memory."""
    ordered = sorted(HITS, key=Hit.order)
    bounds = [0, *sorted(cuts), len(ordered)]
    batches = [ordered[start:end] for start, end in itertools.pairwise(bounds)]
    held_in_memory = windows.HELD_IN_MEMORY
    windows.HELD_IN_MEMORY = 1
    try:
        assert rounds(batches, durable=True) == REFERENCE
    finally:
        windows.HELD_IN_MEMORY = held_in_memory
