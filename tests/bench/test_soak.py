"""bench/soak.py's idea of the alerts its mix raises, checked against the rules themselves."""

from __future__ import annotations

import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.syslog.batch import header
from daemon.rules.loader import builtin_path, load_rules
from daemon.rules.offline import run_files

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

from mix import Mix, stamp_of  # noqa: E402
from soak import Expected  # noqa: E402

START = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def write_mix(path: Path, lines: int, per_second: int, seed: int) -> Expected:
    """``lines`` lines of the mix, ``per_second`` a second from START, as one syslog
    payload (the form a listener hands the decoder), and what they were."""
    mix, expected = Mix(seed), Expected()
    received_ns = int((START + timedelta(hours=1)).timestamp()) * 10**9
    with path.open("w") as out:
        out.write(header(received_ns, "UTC").decode())
        for n in range(lines):
            moment = START + timedelta(seconds=n // per_second)
            text, line = mix.line(stamp_of(moment))
            expected.add(line, int(moment.timestamp()))
            out.write(text + "\n")
    return expected


def test_same_seed_same_lines() -> None:
    """The mix is a function of its seed, so two soaks send the same traffic."""

    def lines(seed: int) -> list[str]:
        mix = Mix(seed)
        return [mix.line("Dec  1 10:00:00")[0] for _ in range(200)]

    assert lines(3) == lines(3)
    assert lines(3) != lines(4)


def test_stamp_pads_the_day_with_a_space() -> None:
    """RFC 3164 writes days 1-9 as a space and a digit."""
    assert stamp_of(datetime(2026, 12, 7, 4, 5, 6, tzinfo=UTC)) == "Dec  7 04:05:06"


@pytest.mark.parametrize(
    ("seconds", "bursts"), [([0, 100, 200, 300, 600], 1), ([0, 1, 2, 3, 601], 0)]
)
def test_a_burst_is_five_failures_within_ten_minutes(seconds: list[int], bursts: int) -> None:
    """Five failures 600 s apart at most make one burst; one more second makes none."""
    assert Expected.bursts({"203.0.113.9": seconds}) == bursts


def test_expected_alerts_are_what_the_built_in_rules_raise(tmp_path: Path) -> None:
    """The soak's count of alerts per rule equals what the built-in rules raise offline
    over the same lines: the soak's verdict compares the store against a true figure."""
    path = tmp_path / "mix.log"
    expected = write_mix(path, 20_000, 20, seed=5)
    run = run_files(load_rules([builtin_path()]), [path])
    assert not run.rejected
    raised = Counter(alert.rule_id for alert in run.alerts)
    # Offline no change record is known, as in a daemon with an empty source of them.
    for rule, count in expected.alerts(changes=True).items():
        assert raised[rule] == count, rule
    assert all(expected.alerts(changes=True).values())
