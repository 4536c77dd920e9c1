"""``auditcorr rules list|validate|test``.

The rules commands need no config file: an operator writes a rule and tries
it on sample files before it goes anywhere near a daemon.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

import orjson

from daemon.cli.base import EXIT_FAILED, EXIT_OK, Commands, ConfigFreeHandler
from daemon.cli.printing import print_alerts
from daemon.config import Config
from daemon.rules import BUILTIN

if TYPE_CHECKING:
    from daemon.rules.loader import Loaded


def register(commands: Commands) -> None:
    rules = commands.group("rules", "list, validate and test detection and correlation rules")

    def action(name: str, handler: ConfigFreeHandler, text: str) -> argparse.ArgumentParser:
        parser = rules.add_config_free(name, handler, text)
        parser.add_argument(
            "--rules",
            nargs="+",
            default=[BUILTIN],
            metavar="PATH",
            help=f"rule files or folders; '{BUILTIN}' is the built-in pack (default)",
        )
        return parser

    listing = action(
        "list",
        _list,
        "list the rules with their level and ATT&CK tags; given --config, what the"
        " new_terms and baseline rules have learned",
    )
    listing.add_argument("--json", action="store_true", help="one rule per line")
    action(
        "validate",
        lambda args, _config: _validate(args),
        "load every rule and report the first problem of each file",
    )
    test = action(
        "test",
        lambda args, _config: _test(args),
        "run rules over event files offline and print the alerts",
    )
    test.add_argument(
        "--events",
        nargs="+",
        required=True,
        metavar="FILE",
        help="CloudTrail files (*.json[.gz]), timeline JSON lines (*.jsonl), syslog files,"
        " or folders of them",
    )
    test.add_argument(
        "--history",
        nargs="+",
        default=[],
        metavar="FILE",
        help="event files read first, for new_terms and baseline rules to learn from"
        " (they raise nothing shown)",
    )
    test.add_argument("--json", action="store_true", help="one alert per line (JSON)")


def _load(args: argparse.Namespace) -> Loaded:
    from daemon.rules.loader import load_rules

    loaded = load_rules(args.rules)
    for reason in loaded.skipped:
        print(f"skipped: {reason}", file=sys.stderr)
    return loaded


def _list(args: argparse.Namespace, config: Config | None) -> int:
    """The rules; given ``--config``, also which of them that config leaves off."""
    loaded = _load(args)
    infos = (
        [(rule.info, "detection", rule.alerts) for rule in loaded.detections]
        + [(corr.info, corr.type, corr.alerts) for corr in loaded.correlations]
        + [(rule.info, rule.type, True) for rule in loaded.behaviours]
    )
    off = _rules_off(config, {info.id for info, _, _ in infos})
    learning = _learning(config, loaded)
    for info, kind, alerts in sorted(infos, key=lambda item: item[0].id):
        if args.json:
            row = {
                "id": info.id,
                "title": info.title,
                "type": kind,
                "level": info.level,
                "alerts": alerts,
                "tags": list(info.tags),
                "path": info.path,
                "off": off.get(info.id),
            }
            if info.id in learning:
                row["learning"] = learning[info.id]
            sys.stdout.buffer.write(orjson.dumps(row) + b"\n")
        else:
            role = "" if alerts else "  (building block)"
            if info.id in off:
                role += f"  (off: {off[info.id]})"
            if info.id in learning:
                role += f"  ({learning[info.id]['note']})"
            tags = " ".join(tag for tag in info.tags if tag.startswith("attack.t"))
            print(f"{info.id:48} {info.level:13} {kind:16} {tags}{role}")
    if off and not args.json:
        from daemon.rules.unapproved import TURN_ON

        print(f"{', '.join(sorted(off))}: to turn on, {TURN_ON}", file=sys.stderr)
    if config is not None:
        from daemon.filter_check import filter_warnings

        for warning in filter_warnings(config.sources, loaded.detections):
            print(f"warning: {warning}", file=sys.stderr)
    return EXIT_OK


def _learning(config: Config | None, loaded: Loaded) -> dict[str, dict[str, Any]]:
    """What each new_terms and baseline rule has learned, as the config's store holds it
    (without a config: how long each must learn)."""
    if not loaded.behaviours:
        return {}
    from daemon.rules.learned import span_text, stored_learning

    if config is None:
        return {
            rule.info.id: {"state": "unknown", "note": f"learns {span_text(rule.history)} first"}
            for rule in loaded.behaviours
        }
    from daemon.store.open import open_store

    try:
        store = open_store(config.store_settings(), readonly=True)
    except FileNotFoundError:
        state: dict[str, bytes] = {}  # no store yet: nothing learned
    else:
        try:
            _, state = store.correlation_state()
        finally:
            store.close()
    return stored_learning(loaded.behaviours, state)


def _rules_off(config: Config | None, listed: set[str]) -> dict[str, str]:
    """Rule id -> why the daemon with ``config`` leaves it off (nothing known without one)."""
    from daemon.rules.change import CHANGE_RULE
    from daemon.rules.unapproved import off_reason

    reason = off_reason(config.sources) if config is not None else None
    return {CHANGE_RULE: reason} if reason is not None and CHANGE_RULE in listed else {}


def _validate(args: argparse.Namespace) -> int:
    from daemon.rules.loader import RuleLoadError, RuleReferenceError, load_rules, rule_files

    failed = 0
    files = rule_files(args.rules)
    for path in files:
        try:
            load_rules([path])
        except RuleReferenceError:
            pass  # a correlation may name rules of other files: judged together below
        except RuleLoadError as err:
            failed += 1
            print(f"error: {err}")
    try:
        loaded = _load(args)
    except RuleLoadError as err:
        failed += 1
        print(f"error: {err}")
    else:
        print(
            f"{len(files)} files: {len(loaded.detections)} detection,"
            f" {len(loaded.correlations)} correlation and {len(loaded.behaviours)}"
            f" new_terms or baseline rules load; {len(loaded.skipped)} skipped"
        )
    return EXIT_FAILED if failed else EXIT_OK


def _test(args: argparse.Namespace) -> int:
    from daemon.rules.offline import run_files

    run = run_files(_load(args), args.events, history=args.history)
    for reason in run.rejected:
        print(f"rejected: {reason}", file=sys.stderr)
    for rule_id, state in sorted(run.learning.items()):
        if state["state"] != "learned":
            print(f"learning: {rule_id}: {state['note']}", file=sys.stderr)
    print_alerts(run.alerts, as_json=args.json, zone=None)
    print(
        f"{run.events} events, {run.hits} rule matches, {len(run.alerts)} alerts", file=sys.stderr
    )
    return EXIT_OK
