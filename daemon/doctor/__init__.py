"""What ``auditcorr doctor`` checks: everything a config needs.

The host checks live in ``host``, a PostgreSQL store's in ``postgres``, the
security ones in ``security``; each source adds its own through ``Source.checks()``
(credentials, permissions, reachability) and each output through
``Output.checks()`` (resolve, connect, TLS, log in; never an alert), so a
connector's knowledge stays in its module.  ``daemon/cli/doctor.py`` prints the
checklist.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import UTC, datetime
from pathlib import Path

from connectors import registry
from connectors.base import Check, Output, OutputContext, Source, SourceContext
from connectors.config import ConnectorConfig, SourceConfig
from daemon.config import Config, ConfigFileError, load_config
from daemon.doctor import host, security

CONNECTOR_CHECK_SECS = 30.0


async def diagnose(path: Path) -> list[Check]:
    """Every check for the config at ``path``; the config's own problems end the list early."""
    try:
        config = load_config(path)
    except ConfigFileError as err:
        return [
            Check(f"config {problem.path or path}", False, problem.message, problem.hint)
            for problem in err.errors
        ]
    outputs = f", {len(config.outputs)} outputs" if config.outputs else ""
    checks = [Check("config valid", True, f"{config.path}: {len(config.sources)} sources{outputs}")]
    checks += await asyncio.to_thread(_host_checks, config)
    checks += _rule_notices(config)
    checks += await asyncio.to_thread(_filter_notices, config)
    for name, source in config.sources.items():
        checks += await _source_checks(name, source)
    for name, output in config.outputs.items():
        checks += await _output_checks(name, output, config.daemon.timezone)
    return checks


def _host_checks(config: Config) -> list[Check]:
    state = config.daemon.state_dir
    if config.store.type == "postgresql" and config.store.dsn is not None:
        from daemon.doctor import postgres

        store, facts = postgres.store(config.store.dsn.reveal())
        checks = [host.state_dir(state), store]
    else:
        store, facts = host.store(config.store_path)
        checks = [
            host.state_dir(state),
            store,
            host.disk_space(config.store_path.parent),
        ]
    if config.api is not None:
        checks.append(host.port_free("api", config.api.listen))
    for name, source in config.sources.items():
        listen = source.model_dump().get("listen")
        if isinstance(listen, str):
            checks.append(host.port_free(f"sources.{name}", listen))
    checks += security.checks(config)
    last_write = facts.last_write if facts else None
    synchronized = host.kernel_clock_synchronized()
    checks.append(host.clock(datetime.now(UTC), last_write, synchronized))
    return checks


def _rule_notices(config: Config) -> list[Check]:
    """Built-in rules the config leaves off: not a fault, so the check passes and says so."""
    from daemon.rules.change import CHANGE_RULE
    from daemon.rules.unapproved import TURN_ON, off_reason

    reason = off_reason(config.sources) if config.rules.builtin else None
    if reason is None:
        return []
    return [Check(f"rule {CHANGE_RULE}", True, f"off: {reason}; to turn it on, {TURN_ON}", None)]


def _filter_notices(config: Config) -> list[Check]:
    """Drop expressions that may hide events from enabled rules: a warning, not a fault
    (dropping them can be what the operator wants), so the check passes and says so."""
    from daemon.filter_check import filter_warnings
    from daemon.rules.loader import RuleLoadError, RuleReferenceError, load_rules

    paths = config.rules.rule_paths()
    dropping = [s for s in config.sources.values() if isinstance(s, SourceConfig) and s.drop]
    if not paths or not dropping:
        return []
    try:
        rules = load_rules(paths).detections
    except (RuleLoadError, RuleReferenceError) as err:
        return [Check("rules load", False, str(err), "auditcorr rules validate names the rule")]
    warnings = filter_warnings(config.sources, rules)
    return [Check(f"filter {w.key}", True, f"warning: {w}", None) for w in warnings]


async def _source_checks(name: str, config: ConnectorConfig) -> list[Check]:
    where = f"sources.{name}"
    source: Source = registry.load(registry.SOURCES, config.type)(config, SourceContext(name, {}))
    return await _guarded(where, source.checks())


async def _output_checks(name: str, config: ConnectorConfig, timezone: str) -> list[Check]:
    where = f"outputs.{name}"
    context = OutputContext(name, timezone)
    output: Output = registry.load(registry.OUTPUTS, config.type)(config, context)
    return await _guarded(where, output.checks())


async def _guarded(where: str, checks: Awaitable[list[Check]]) -> list[Check]:
    """A connector's checks named after it, with a time limit; a crash in them is one
    failed check."""
    try:
        found = await asyncio.wait_for(checks, CONNECTOR_CHECK_SECS)
        return [
            Check(f"{where}: {check.name}", check.ok, check.detail, check.hint) for check in found
        ]
    except TimeoutError:
        return [Check(where, False, f"checks took over {CONNECTOR_CHECK_SECS:.0f}s", None)]
    except Exception as err:  # noqa: BLE001 - one connector's fault must not hide the rest
        detail = f"checks failed: {type(err).__name__}: {err}"
        return [Check(where, False, detail, "a fault in the connector; please report it")]
