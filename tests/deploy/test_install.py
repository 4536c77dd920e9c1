"""deploy/install.sh into a temporary root: install, upgrade, refuse a bad config, remove."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "deploy" / "install.sh"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("systemd-sysusers") is None and os.environ.get("CI") != "true",
        reason="systemd-sysusers not installed (package systemd)",
    ),
]


def _install(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DESTDIR", "VIRTUAL_ENV"}}
    return subprocess.run(
        [str(SCRIPT), "--root", str(root), *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )


def _ids(root: Path) -> tuple[int, int]:
    for line in (root / "etc/passwd").read_text().splitlines():
        name, _, uid, gid, *_ = line.split(":")
        if name == "auditcorr":
            return int(uid), int(gid)
    raise AssertionError("no auditcorr user in the root's /etc/passwd")


def test_install_upgrade_and_uninstall(tmp_path: Path) -> None:
    """Installs the layout, runs again without changes to the edited config, refuses a bad one."""
    root = tmp_path / "root"
    first = _install(root)
    assert first.returncode == 0, first.stderr
    assert ": valid" in first.stdout, "check-config ran on the installed config"

    uid, gid = _ids(root)
    venv = root / "opt/auditcorr"
    version = subprocess.run(
        [str(venv / "bin/python"), "-m", "daemon.cli", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert version.stdout.startswith("auditcorr ")
    # Scripts name the interpreter as the target system sees it.
    shebang = (venv / "bin/auditcorr").read_text().splitlines()[0]
    assert shebang.removesuffix("3") == "#!/opt/auditcorr/bin/python"
    unit = root / "etc/systemd/system/auditcorr.service"
    assert unit.read_text() == (REPO / "deploy/systemd/auditcorr.service").read_text()
    assert (root / "etc/sysusers.d/auditcorr.conf").exists()
    assert (root / "etc/tmpfiles.d/auditcorr.conf").exists()
    config = root / "etc/auditcorr/config.toml"
    meta = config.stat()
    assert (meta.st_uid, meta.st_gid, meta.st_mode & 0o777) == (0, gid, 0o640)
    state = (root / "var/lib/auditcorr").stat()
    assert (state.st_uid, state.st_gid, state.st_mode & 0o777) == (uid, gid, 0o750)

    # An upgrade (the same install again) keeps the operator's config and user.
    edited = config.read_text().replace("retention_days = 90", "retention_days = 30")
    config.write_text(edited)
    again = _install(root)
    assert again.returncode == 0, again.stderr
    assert "keeping /etc/auditcorr/config.toml" in again.stdout
    assert config.read_text() == edited
    assert _ids(root) == (uid, gid)
    users = (root / "etc/passwd").read_text().splitlines()
    assert [line for line in users if line.startswith("auditcorr:")] == [users[0]]

    # A config the installed version rejects stops the install with the reason.
    config.write_text(edited + '\n[sources.typo]\ntype = "cloudtrail_file"\n')
    refused = _install(root)
    assert refused.returncode != 0
    assert "sources.typo.type" in refused.stderr
    assert "fix" in refused.stderr

    (root / "var/lib/auditcorr/timeline.db").write_bytes(b"kept")
    removed = _install(root, "--uninstall")
    assert removed.returncode == 0, removed.stderr
    assert not venv.exists()
    assert not unit.exists()
    assert not (root / "etc/sysusers.d/auditcorr.conf").exists()
    assert not (root / "etc/tmpfiles.d/auditcorr.conf").exists()
    assert config.exists(), "uninstall keeps the config"
    assert (root / "var/lib/auditcorr/timeline.db").read_bytes() == b"kept"
