"""Which events a Sigma ``logsource`` selects, and where its field names live.

SigmaHQ rules name fields the way the source logs them (CloudTrail's
``eventName``, auditd's ``exe``); the timeline holds ECS documents that keep
the original record under ``original``.  Each log type declares the
logsources its events answer (``daemon/logtypes/``): which ``event.dataset``
values one covers, what else an event must be (``process.name`` = ``sshd``),
and how a rule's field name becomes a path into the document.  One logsource
is the daemon's own: ``category: change`` of ``product: auditcorr`` is every
change-class event of the cloud and the hosts.
"""

from __future__ import annotations

from functools import cache

from daemon import logtypes
from daemon.logtypes import Logsource, LogsourceKey

CHANGES: LogsourceKey = ("auditcorr", None, "change")


@cache
def sources() -> dict[LogsourceKey, Logsource]:
    """(product, service, category) -> logsource, of every log type and the change category."""
    found = logtypes.logsources()
    found[CHANGES] = Logsource(logtypes.change_datasets(), native=logtypes.is_change)
    return found


class UnsupportedLogsourceError(LookupError):
    pass


def source_for(product: str | None, service: str | None, category: str | None) -> Logsource:
    key = (
        product.lower() if product else None,
        service.lower() if service else None,
        category.lower() if category else None,
    )
    found = sources().get(key)
    if found is None:
        described = ", ".join(
            f"{name}: {value}"
            for name, value in zip(("product", "service", "category"), key, strict=True)
            if value
        )
        raise UnsupportedLogsourceError(f"logsource {{{described}}} is not collected by auditcorr")
    return found
