"""Which enabled detection rules read events a source's ``drop`` expressions throw away.

``auditcorr rules list`` and ``auditcorr doctor`` print these, so a filter that
blinds a rule (dropping ``ConsoleLogin`` while ``console_login_without_mfa`` is
on) is seen before an incident shows it.

The check is simple and sound for what it looks at.  A drop expression overlaps a
rule when none of its positive terms contradicts the rule (each ``dataset:`` is one
the rule's logsource reads, each ``action:`` one of the CloudTrail event names the
rule needs, each ``process:`` or ``action:`` the one the logsource requires, as
linux/sudo requires ``process.name`` sudo) and it names the rule's events: by such
an action or program, or by a whole dataset (no other positive term; negations
such as ``-user:ci-bot`` only spare some events, so the warning says the rule *may*
miss events).  Not caught: ``keep`` lists; a drop naming only an action, for rules
not keyed on event names (syslog and auditd rules); a dataset narrowed by another
field or by words (``dataset:system.syslog process:CRON`` against the syslog
rules); CloudTrail's ``event_categories`` and ``read_only``, whose effect on a rule
depends on the data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from connectors.config import ConnectorConfig, SourceConfig
from daemon.filters import Expression, parse

if TYPE_CHECKING:  # pySigma is slow to import: only the caller loads the rules
    from daemon.rules.loader import DetectionRule


@dataclass(frozen=True, slots=True)
class FilterWarning:
    """One drop expression and the enabled rules whose events it may drop."""

    key: str
    """The expression's key path: ``sources.ct_org.drop[0]``."""
    expression: str
    rules: tuple[str, ...]

    def __str__(self) -> str:
        return (
            f"{self.key} ({self.expression!r}) drops events that rule(s)"
            f" {', '.join(self.rules)} read; they may miss what they should detect"
        )


_WHERE_FIELDS = {"action": "event.action", "process": "process.name"}
"""Expression fields that a logsource's ``where`` (linux/cron: ``process.name``) can name."""


def _overlaps(expression: Expression, rule: DetectionRule) -> bool:
    """Whether the expression's dataset, action and program terms name events the rule reads."""
    datasets = expression.positive("dataset")
    if any(dataset not in rule.source.datasets for dataset in datasets):
        return False
    named = False
    actions = expression.positive("action")
    if actions and rule.index_values is not None:
        # Sigma compares case-insensitively; the index holds the values lower-cased.
        if not all(action.lower() in rule.index_values for action in actions):
            return False
        named = True
    for field, ecs in _WHERE_FIELDS.items():
        values = expression.positive(field)
        wanted = rule.source.where.get(ecs)
        if values and wanted is not None:
            if any(value.lower() != wanted.lower() for value in values):
                return False
            named = True
    if named:
        return True
    # Only a dataset named: the expression drops the whole dataset (less its negated
    # terms) unless another positive term narrows it in a way this check cannot judge.
    others = [t for t in expression.terms if not t.negated and t.field != "dataset"]
    return bool(datasets) and not others


def filter_warnings(
    sources: Mapping[str, ConnectorConfig], rules: Iterable[DetectionRule]
) -> list[FilterWarning]:
    """The drop expressions of ``sources`` that overlap an enabled rule of ``rules``."""
    enabled = list(rules)
    found = []
    for name, config in sources.items():
        if not isinstance(config, SourceConfig):
            continue
        for index, text in enumerate(config.drop):
            expression = parse(text)
            hit = sorted({r.info.id for r in enabled if _overlaps(expression, r)})
            if hit:
                found.append(FilterWarning(f"sources.{name}.drop[{index}]", text, tuple(hit)))
    return found
