"""``auditcorr doctor``: every check a config needs (``daemon/doctor/``), printed as a
checklist."""

from __future__ import annotations

import argparse
import asyncio
import os
import pwd
import sys
from pathlib import Path
from typing import TextIO

from connectors.base import Check
from daemon.cli.base import EXIT_FAILED, EXIT_OK, Commands


def register(commands: Commands) -> None:
    commands.add(
        "doctor",
        _doctor,
        "check the config, the host and what each source needs; print a checklist",
        config_read="never",
    )


def _doctor(args: argparse.Namespace, _config: object) -> int:
    """Loads the config itself: an invalid config is one of the things it reports."""
    from daemon.doctor import diagnose

    path = Path(args.config)
    return _report(path, asyncio.run(diagnose(path)), sys.stdout)


def _report(path: Path, checks: list[Check], out: TextIO) -> int:
    """Print the checklist; 0 when every check passed, 1 otherwise."""
    user = pwd.getpwuid(os.geteuid()).pw_name
    print(f"auditcorr doctor: {path} (as {user})", file=out)
    if os.geteuid() == 0:
        print(
            "  note: root can read and write everything; run as the service user"
            " (sudo -u auditcorr) to check its access",
            file=out,
        )
    for check in checks:
        mark = "✓" if check.ok else "✗"
        line = f"{mark} {check.name}"
        print(f"{line}: {check.detail}" if check.detail else line, file=out)
        if not check.ok and check.hint:
            print(f"    hint: {check.hint}", file=out)
    failed = sum(not check.ok for check in checks)
    if failed:
        print(f"{failed} of {len(checks)} checks failed", file=out)
        return EXIT_FAILED
    print(f"all {len(checks)} checks passed", file=out)
    return EXIT_OK
