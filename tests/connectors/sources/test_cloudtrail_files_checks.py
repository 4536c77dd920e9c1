"""cloudtrail_files tells ``auditcorr doctor`` whether its tree is readable."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from connectors.base import SourceContext
from connectors.sources.cloudtrail_files import CloudtrailFilesConfig, CloudtrailFilesSource

DAY = Path("AWSLogs/111111111111/CloudTrail/us-east-1/2026/11/20")
AS_ROOT = os.geteuid() == 0


def _source(root: Path) -> CloudtrailFilesSource:
    config = CloudtrailFilesConfig(path=root)
    return CloudtrailFilesSource(config, SourceContext("ct", {}))


def _tree(root: Path, files: int) -> Path:
    folder = root / DAY
    folder.mkdir(parents=True)
    for index in range(files):
        (folder / f"111111111111_CloudTrail_us-east-1_20261120T0100Z_{index}.json.gz").write_bytes(
            b""
        )
    (folder / "notes.txt").write_text("not a log file")
    return folder


async def test_readable_tree_passes_and_counts_log_files(tmp_path: Path) -> None:
    """Every folder listed and every log file readable: one passing check with the count."""
    _tree(tmp_path, 3)
    (check,) = await _source(tmp_path).checks()
    assert check.ok, check
    assert check.name == "path readable"
    assert "3 log files" in check.detail


async def test_root_removed_after_start_fails(tmp_path: Path) -> None:
    """A root that vanished since the config was loaded fails with a hint."""
    root = tmp_path / "trail"
    root.mkdir()
    source = _source(root)
    root.rmdir()
    (check,) = await source.checks()
    assert not check.ok
    assert str(root) in check.detail
    assert check.hint


@pytest.mark.skipif(AS_ROOT, reason="root reads everything")
async def test_unreadable_folder_fails_and_names_it(tmp_path: Path) -> None:
    """A folder the user cannot list is named in the failure."""
    folder = _tree(tmp_path, 1)
    folder.chmod(0)
    try:
        (check,) = await _source(tmp_path).checks()
    finally:
        folder.chmod(0o755)
    assert not check.ok
    assert str(folder) in check.detail


async def test_dangling_log_file_link_fails(tmp_path: Path) -> None:
    """A log file that cannot be opened (here a link to nothing, so even root fails) is named."""
    folder = _tree(tmp_path, 2)
    broken = folder / "111111111111_CloudTrail_us-east-1_20261120T0200Z_gone.json.gz"
    broken.symlink_to(tmp_path / "gone.json.gz")
    (check,) = await _source(tmp_path).checks()
    assert not check.ok
    assert check.detail == f"1 not readable: {broken}"
    assert check.hint
    assert "sudo -u auditcorr" in check.hint
