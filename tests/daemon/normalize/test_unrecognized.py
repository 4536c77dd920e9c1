"""Lines of known programs that no form matched are counted per program on /metrics."""

from __future__ import annotations

from pathlib import Path

from metricsupport import samples, scrape

from connectors.sources.syslog_file import SyslogFileConfig
from daemon.logtypes import normalize_record
from daemon.pipeline import Pipeline
from daemon.store.sqlite import SqliteStore

LINES = (
    "Nov 27 12:00:01 bastion sshd[10]: Failed password for root from 203.0.113.9 port 4444 ssh2\n"
    "Nov 27 12:00:02 bastion sshd[11]: Frobnicated the flux capacitor\n"
    "Nov 27 12:00:03 bastion sshd[12]: Frobnicated it again\n"
    "Nov 27 12:00:04 bastion sshd[13]: Server listening on 0.0.0.0 port 22.\n"
    "Nov 27 12:00:05 bastion su[14]: something su never says\n"
    "Nov 27 12:00:06 bastion sshd(pam_unix)[15]: a PAM line of a new kind\n"
    "Nov 27 12:00:07 bastion CRON[16]: (root) CMD (run-parts /etc/cron.hourly)\n"
)


async def test_unrecognized_lines_are_counted_per_program(tmp_path: Path) -> None:
    """Only auth lines no form matched count, under the program that wrote them;
    known informational lines and other programs' lines do not."""
    log = tmp_path / "auth.log"
    log.write_text(LINES)
    store = SqliteStore(tmp_path / "t.db", retention_days=0, normalize=normalize_record)
    try:
        config = SyslogFileConfig(path=log, start="beginning")
        pipeline = Pipeline(store, {"auth": config}, mode="backfill", workers=1)
        stats = await pipeline.run()
    finally:
        store.close()
    assert stats.stored == 7
    assert stats.unrecognized == {"sshd": 3, "su": 1}
    text = scrape(pipeline)
    assert "# TYPE auditcorr_messages_unrecognized_total counter" in text.splitlines()
    counted = {
        dict(labels)["program"]: count
        for (name, labels), count in samples(text).items()
        if name == "auditcorr_messages_unrecognized_total"
    }
    assert counted == {"sshd": 3, "su": 1}
