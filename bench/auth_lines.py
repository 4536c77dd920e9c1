"""How many real authentication lines the syslog normalizer understands, and its cost per line.

    python bench/auth_lines.py --lines 50000 --runs 5
    python bench/auth_lines.py --code /path/to/other/checkout   # the same, for another version

In one run, with the code of --code (default: this checkout):

* understood: of the lines in tests/daemon/normalize/auth_lines/*.jsonl whose
  expected fields name an ``event.outcome`` (a login, a failure, a switch of
  user), the share whose event has that outcome, overall and per corpus file
  (program); lines marked ``pending`` are left out (they wait for another issue);
* cost: ``syslog.decode`` + ``syslog.normalize`` of --lines lines of the
  bench/syslog.py mix (sshd failures and logins, sudo, systemd, cron), as a
  decoding worker does (cyclic GC paused), in CPU microseconds per line
  (median and minimum over --runs: on a shared machine the minimum is the
  steadier figure).

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CORPUS = HERE.parent / "tests" / "daemon" / "normalize" / "auth_lines"
RECEIVED_NS = 1_764_244_800 * 10**9


def load_mix() -> Any:
    """bench/syslog.py's message generator (loaded by path: ``syslog`` is a stdlib name)."""
    spec = importlib.util.spec_from_file_location("bench_syslog", HERE / "syslog.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.messages


def understood(syslog: Any, header: Any, limits: Any) -> dict[str, Any]:
    """The share of corpus lines with an expected outcome whose event has it."""
    per_file: dict[str, list[int]] = {}
    for path in sorted(CORPUS.glob("*.jsonl")):
        for text in path.read_text().splitlines():
            case = json.loads(text)
            expected = case["expect"].get("event.outcome")
            if expected is None or case.get("pending"):
                continue
            payload = header(RECEIVED_NS, "UTC") + case["line"].encode()
            [record] = syslog.decode(payload, limits)
            event = syslog.normalize(record)
            counts = per_file.setdefault(path.stem, [0, 0])
            counts[0] += event.outcome == expected
            counts[1] += 1
    right = sum(c[0] for c in per_file.values())
    total = sum(c[1] for c in per_file.values())
    return {
        "lines": total,
        "right_outcome": right,
        "share": round(right / total, 3),
        "by_program": {name: f"{c[0]}/{c[1]}" for name, c in per_file.items()},
    }


def cost_us(
    syslog: Any, header: Any, limits: Any, paused: Any, lines: int, runs: int
) -> list[float]:
    """CPU microseconds per line to decode and normalize the bench/syslog.py mix."""
    payload = header(RECEIVED_NS, "UTC") + load_mix()(0, lines)
    results = []
    for _ in range(runs):
        with paused():
            began = time.process_time()
            for record in syslog.decode(payload, limits):
                syslog.normalize(record)
            results.append(round((time.process_time() - began) / lines * 1e6, 2))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--code", type=Path, default=HERE.parent, help="checkout to measure")
    args = parser.parse_args()
    sys.path.insert(0, str(args.code.resolve()))
    from connectors.syslog.batch import header
    from daemon.gcpause import cyclic_gc_paused
    from daemon.normalize import Limits, syslog

    limits = Limits()
    runs = cost_us(syslog, header, limits, cyclic_gc_paused, args.lines, args.runs)
    summary = {
        "machine": f"{platform.machine()} {platform.python_version()}",
        "code": str(args.code.resolve()),
        "understood": understood(syslog, header, limits),
        "normalize_us_per_line_median": statistics.median(runs),
        "normalize_us_per_line_min": min(runs),
        "normalize_us_per_line_runs": runs,
    }
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
