"""The literal prefilter skips only rules that could not match, so results never change."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from sigma.collection import SigmaCollection
from sigma.rule import SigmaDetection, SigmaRule
from sigma.types import SigmaString
from testdata import RULE_PACKS, rule_pack

from daemon.logtypes import Logsource
from daemon.rules.behaviour import kind_of
from daemon.rules.compile import KEYWORD_FIELD, Doc
from daemon.rules.detect import Detector
from daemon.rules.loader import DetectionRule, load_rules, rule_files
from daemon.rules.logsource import UnsupportedLogsourceError, source_for


def load_one(tmp_path: Path, logsource: str, detection: str) -> DetectionRule:
    path = tmp_path / "rule.yml"
    path.write_text(
        "title: t\nid: 0c0ffee0-1111-4222-8333-944455556666\n"
        f"logsource:\n  {logsource}\nlevel: high\ndetection:\n{detection}"
    )
    (rule,) = load_rules([path]).detections
    return rule


PROCESS = "product: linux\n  category: process_creation"


def test_needles_of_keywords_fields_and_or(tmp_path: Path) -> None:
    """Keywords need their text in the message; ``or`` needs one of its parts; ``and`` one part."""
    keywords = load_one(tmp_path, "product: linux", "  kw:\n    - 'Rm -RF'\n  condition: kw\n")
    assert keywords.needles == frozenset([((("message",),), "rm -rf")])
    both = load_one(
        tmp_path,
        PROCESS,
        "  sel:\n    Image|endswith: ['/nc', '/ncat']\n    CommandLine|contains: '-e'\n"
        "  condition: sel\n",
    )
    assert both.needles == frozenset(
        [((("process", "executable"),), "/nc"), ((("process", "executable"),), "/ncat")]
    ), "the longer shortest needle of the two parts wins: '/nc' over '-e'"
    wildcard = load_one(tmp_path, PROCESS, "  sel:\n    Image: '/usr/*/bas?'\n  condition: sel\n")
    assert wildcard.needles == frozenset([((("process", "executable"),), "/usr/")])


def test_rules_without_a_needed_text_are_tried_on_every_event(tmp_path: Path) -> None:
    """``not``, regular expressions and a dataset filter need no text: no prefilter."""
    for detection in (
        "  sel:\n    Image: /bin/sh\n  condition: not sel\n",
        "  sel:\n    CommandLine|re: 'x[0-9]+'\n  condition: sel\n",
        "  a:\n    Image: /bin/sh\n  b:\n    CommandLine|re: 'x'\n  condition: a or b\n",
        "  sel:\n    event.dataset: auditd.log\n  condition: sel\n",
    ):
        assert load_one(tmp_path, PROCESS, detection).needles is None, detection


def execve(**process: Any) -> Doc:
    return {"event": {"dataset": "auditd.log", "action": "execve"}, "process": process}


def test_a_case_insensitive_match_through_a_folding_letter_passes_the_filter(
    tmp_path: Path,
) -> None:
    """Long s matches 's' case-insensitively, as the regular expression does."""
    rule = load_one(tmp_path, PROCESS, "  sel:\n    CommandLine: 'sud?*'\n  condition: sel\n")
    detector = Detector([rule])
    assert detector.match(execve(command_line="\u017fudo -i")) == [rule]
    assert detector.match(execve(command_line="pseudo -i")) == []


def probes(rule: DetectionRule) -> list[Doc]:
    """Documents of the rule's datasets holding its needles: exactly, and inside other text."""
    found = []
    for dataset in rule.source.datasets:
        for wrap in ("{}", "xy {} yx"):
            doc: Doc = {"event": {"dataset": dataset}}
            for name, wanted in rule.source.where.items():
                put(doc, tuple(name.split(".")), wanted)
            for paths, text in sorted(rule.needles or ()):
                put(doc, paths[0], wrap.format(text))
            found.append(doc)
    return found


def sigma_probes(path: Path) -> list[Doc]:
    """Per rule and dataset, a document with the first value of each field of its selections."""
    found = []
    sigma = [
        doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if not kind_of(doc)
    ]
    for rule in SigmaCollection.from_dicts(sigma, resolve_references=False).rules:
        if not isinstance(rule, SigmaRule):
            continue
        logsource = rule.logsource
        try:
            source = source_for(logsource.product, logsource.service, logsource.category)
        except UnsupportedLogsourceError:
            continue
        for dataset in source.datasets:
            doc: Doc = {"event": {"dataset": dataset}}
            for name, wanted in source.where.items():
                put(doc, tuple(name.split(".")), wanted)
            for name, detection in rule.detection.detections.items():
                if not name.startswith("filter"):
                    fill(doc, detection, source)
            found.append(doc)
    return found


def fill(doc: Doc, detection: SigmaDetection, source: Logsource) -> None:
    for item in detection.detection_items:
        if isinstance(item, SigmaDetection):
            fill(doc, item, source)
        elif item.value and isinstance(item.value[0], SigmaString):
            text = "".join(part if isinstance(part, str) else "xy" for part in item.value[0].s)
            field = source.paths(item.field)[0] if item.field else (KEYWORD_FIELD,)
            put(doc, field, text)


def put(doc: Doc, path: tuple[str, ...], value: str) -> None:
    *parents, leaf = path
    node = doc
    for name in parents:
        node = node.setdefault(name, {})
        if not isinstance(node, dict):
            return
    node.setdefault(leaf, value)


@pytest.mark.parametrize("name", RULE_PACKS)
def test_the_prefilter_matches_what_trying_every_rule_matches(name: str) -> None:
    """Over probes built from the rules' own values, the prefilter matches what every rule does."""
    paths = rule_pack(name)
    rules = load_rules(paths).detections
    assert sum(rule.needles is not None for rule in rules) > len(rules) * 0.9
    detector = Detector(rules)
    docs = [doc for rule in rules for doc in probes(rule)]
    docs.extend(doc for path in rule_files(paths) for doc in sigma_probes(path))
    matched = set()
    for doc in docs:
        dataset = doc["event"]["dataset"]
        every = [rule for rule in rules if dataset in rule.source.datasets and rule.match(doc)]
        assert detector.match(doc) == every, doc
        matched.update(rule.info.id for rule in every)
    assert len(matched) > len(rules) * 0.7, "the probes must make most rules match, or prove little"
