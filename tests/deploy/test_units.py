"""The systemd unit passes systemd's own checks and keeps its hardening."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UNITS = REPO / "deploy" / "systemd"
SERVICE = UNITS / "auditcorr.service"
MAX_EXPOSURE = 2.0

pytestmark = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None and os.environ.get("CI") != "true",
    reason="systemd-analyze not installed (package systemd)",
)


def _analyze(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["systemd-analyze", *args], capture_output=True, text=True, timeout=60, check=False
    )


def _settings(unit: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in unit.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def test_unit_verifies(tmp_path: Path) -> None:
    """systemd-analyze verify accepts the unit (its programs pointed at this checkout's venv)."""
    # verify also checks that ExecStart= programs exist; /opt/auditcorr is
    # where install.sh puts them, so the copy points at the venv running the tests.
    unit = tmp_path / "auditcorr.service"
    venv_bin = Path(sys.executable).parent
    assert (venv_bin / "auditcorr").exists()
    unit.write_text(SERVICE.read_text().replace("/opt/auditcorr/bin/", f"{venv_bin}/"))
    done = _analyze("verify", "--man=no", str(unit))
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr


def test_verify_reports_a_broken_unit(tmp_path: Path) -> None:
    """The check above can fail: an unknown directive is reported."""
    unit = tmp_path / "auditcorr.service"
    venv_bin = Path(sys.executable).parent
    text = SERVICE.read_text().replace("/opt/auditcorr/bin/", f"{venv_bin}/")
    unit.write_text(text.replace("[Service]\n", "[Service]\nProtectEverything=yes\n"))
    done = _analyze("verify", "--man=no", str(unit))
    assert "Unknown key 'ProtectEverything'" in done.stderr


def exposure(unit: Path) -> float:
    """The overall exposure ``systemd-analyze security`` gives the unit file."""
    done = _analyze("security", "--offline=true", "--no-pager", str(unit))
    assert done.returncode == 0, done.stderr
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", done.stdout)
    assert found, done.stdout
    return float(found[1])


def test_security_exposure_is_at_most_two() -> None:
    """The hardening keeps systemd's exposure score at 2.0 or lower."""
    assert exposure(SERVICE) <= MAX_EXPOSURE


def test_exposure_rises_without_the_hardening(tmp_path: Path) -> None:
    """The score is computed from the file: the first unit, without hardening, is far above."""
    plain = tmp_path / "auditcorr.service"
    keep = ("Type", "User", "ExecStart", "StateDirectory", "ProtectSystem", "ProtectHome")
    lines = ["[Service]"] + [
        f"{key}={value}"
        for key, values in _settings(SERVICE).items()
        if key in keep
        for value in values
    ]
    plain.write_text("\n".join(lines) + "\n")
    assert exposure(plain) > 5.0


def test_unit_has_the_settings_operations_rely_on() -> None:
    """Notify, watchdog, SIGHUP reload, least privilege and the directories install.sh expects."""
    settings = _settings(SERVICE)
    expected = {
        "Type": "notify",
        "WatchdogSec": "30",
        "Restart": "on-failure",
        "ExecReload": "/bin/kill -HUP $MAINPID",
        "User": "auditcorr",
        "StateDirectory": "auditcorr",
        "ConfigurationDirectory": "auditcorr",
        "LogsDirectory": "auditcorr",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "NoNewPrivileges": "yes",
        "CapabilityBoundingSet": "CAP_NET_BIND_SERVICE",
        "AmbientCapabilities": "CAP_NET_BIND_SERVICE",
        "SupplementaryGroups": "adm",
    }
    for key, value in expected.items():
        assert settings.get(key) == [value], key
    assert "@system-service" in settings["SystemCallFilter"]


def test_sysusers_and_tmpfiles_apply_to_a_root(tmp_path: Path) -> None:
    """The snippets create the user and its directories with the modes the unit expects."""
    for tool in ("systemd-sysusers", "systemd-tmpfiles"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed")
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    subprocess.run(
        ["systemd-sysusers", f"--root={root}", str(UNITS / "auditcorr.sysusers")],
        check=True,
        capture_output=True,
    )
    passwd = (root / "etc" / "passwd").read_text()
    entry = next(line for line in passwd.splitlines() if line.startswith("auditcorr:"))
    uid, gid, home = entry.split(":")[2], entry.split(":")[3], entry.split(":")[5]
    assert home == "/var/lib/auditcorr"
    assert int(uid) < 1000, "a system user"
    subprocess.run(
        ["systemd-tmpfiles", "--create", f"--root={root}", str(UNITS / "auditcorr.tmpfiles")],
        check=True,
        capture_output=True,
    )
    state = (root / "var/lib/auditcorr").stat()
    assert (state.st_uid, state.st_gid, state.st_mode & 0o777) == (int(uid), int(gid), 0o750)
    etc = (root / "etc/auditcorr").stat()
    assert (etc.st_uid, etc.st_gid, etc.st_mode & 0o777) == (0, int(gid), 0o750)
