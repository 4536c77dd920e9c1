"""Which events change something: the candidates of the ``unapproved_change`` rule.

``unapproved_change`` raises an alert for a change-class event that no
approved change record covers.  This module answers the first half, by
asking the event's log type (``LogType.is_change``: a successful CloudTrail
write that is not a sign-in or session credential, a successful ``sudo``, a
user, group, password, package or service change on a host); the coverage
query of the change records answers the second.  The rule
(``builtin/changes.yml``) selects the events of logsource
``{product: auditcorr, category: change}``, the events for which
``logtypes.is_change`` holds; detection (``hits.HitMaker.hits``) gives each hit of ``CHANGE_RULE``
the event's coverage facts, and ``unapproved.Approvals`` drops the covered
ones where alerts are made, so an uncovered one's alert names the nearest
records in ``Alert.context``.
"""

from __future__ import annotations

from typing import Final

CHANGE_RULE: Final = "unapproved_change"
