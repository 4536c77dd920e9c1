"""A stop that outlasts its limit ends the process anyway, saying so."""

from __future__ import annotations

import subprocess
import sys
import time

HANGING_STOP = """
from daemon.deadline import end_at_the_latest
end_at_the_latest(0.5)
import time
time.sleep(60)  # a stop stuck in a commit or a close
"""


def test_a_stuck_stop_ends_at_its_limit() -> None:
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", HANGING_STOP],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert time.monotonic() - began < 10
    assert "stop_forced" in done.stdout + done.stderr
