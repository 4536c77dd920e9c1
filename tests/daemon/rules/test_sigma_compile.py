"""Each Sigma feature the compiler supports, matched and not matched."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from daemon.rules.detect import Detector
from daemon.rules.loader import RuleLoadError, load_rules


def compile_one(
    tmp_path: Path, detection: str, logsource: str = "product: aws\n  service: cloudtrail"
) -> Detector:
    path = tmp_path / "rule.yml"
    path.write_text(
        "title: t\nid: 6f7d3c5e-1111-4222-8333-944455556666\n"
        f"logsource:\n  {logsource}\nlevel: high\ndetection:\n{detection}"
    )
    return Detector(load_rules([path]).detections)


def ct(**original: Any) -> dict[str, Any]:
    return {"event": {"dataset": "aws.cloudtrail"}, "original": original}


def auth(message: str, **fields: Any) -> dict[str, Any]:
    return {"event": {"dataset": "system.auth"}, "message": message, **fields}


def matches(detector: Detector, doc: dict[str, Any]) -> bool:
    return bool(detector.match(doc))


CASES: list[tuple[str, str, list[dict[str, Any]], list[dict[str, Any]]]] = [
    (
        "field list is or, case-insensitive",
        "  sel:\n    eventName: [StopLogging, DeleteTrail]\n  condition: sel\n",
        [ct(eventName="StopLogging"), ct(eventName="deletetrail")],
        [ct(eventName="StartLogging"), ct()],
    ),
    (
        "map is and; nested dotted field",
        "  sel:\n    eventName: CreateLoginProfile\n    requestParameters.userName: bob\n"
        "  condition: sel\n",
        [ct(eventName="CreateLoginProfile", requestParameters={"userName": "Bob"})],
        [ct(eventName="CreateLoginProfile", requestParameters={"userName": "alice"})],
    ),
    (
        "wildcards * and ?",
        "  sel:\n    eventName: 'Delete*Tr?il'\n  condition: sel\n",
        [ct(eventName="DeleteMyTrail"), ct(eventName="DeleteTrxil")],
        [ct(eventName="DeleteTrails"), ct(eventName="CreateTrail")],
    ),
    (
        "escaped wildcard is a literal star",
        "  sel:\n    principal: '\\*'\n  condition: sel\n",
        [ct(principal="*")],
        [ct(principal="s3.amazonaws.com")],
    ),
    (
        "contains startswith endswith",
        "  a:\n    eventSource|contains: iam\n  b:\n    eventName|startswith: Put\n"
        "  c:\n    userAgent|endswith: '.exe'\n  condition: a and b and c\n",
        [ct(eventSource="iam.amazonaws.com", eventName="PutUserPolicy", userAgent="X.EXE")],
        [ct(eventSource="iam.amazonaws.com", eventName="GetUser", userAgent="x.exe")],
    ),
    (
        "all modifier",
        "  sel:\n    userAgent|contains|all: [aws-cli, linux]\n  condition: sel\n",
        [ct(userAgent="aws-cli/2 Linux")],
        [ct(userAgent="aws-cli/2 windows")],
    ),
    (
        "re is case-sensitive search, i flag",
        "  a:\n    eventName|re: '^Stop[A-Z]'\n  b:\n    userAgent|re|i: 'BOTO'\n"
        "  condition: a and b\n",
        [ct(eventName="StopLogging", userAgent="boto3/1")],
        [ct(eventName="stopLogging", userAgent="boto3/1")],
    ),
    (
        "cidr",
        "  sel:\n    sourceIPAddress|cidr: 203.0.113.0/24\n  condition: sel\n",
        [ct(sourceIPAddress="203.0.113.66")],
        [ct(sourceIPAddress="198.51.100.1"), ct(sourceIPAddress="ec2.amazonaws.com")],
    ),
    (
        "base64 and base64offset",
        "  a:\n    x|base64: secret\n  b:\n    y|base64offset|contains: curl\n"
        "  condition: a or b\n",
        [
            ct(x=base64.b64encode(b"secret").decode()),
            ct(y=base64.b64encode(b"#!/bin/sh\ncurl http://x").decode()),
            ct(y=base64.b64encode(b"a curl").decode()),
        ],
        [ct(x="secret"), ct(y=base64.b64encode(b"wget").decode())],
    ),
    (
        "exists",
        "  a:\n    errorCode|exists: true\n  b:\n    eventName: X\n  condition: a and b\n",
        [ct(errorCode="AccessDenied", eventName="X")],
        [ct(eventName="X"), ct(errorCode=None, eventName="X")],
    ),
    (
        "null",
        "  a:\n    errorCode: null\n  b:\n    eventName: X\n  condition: a and b\n",
        [ct(eventName="X"), ct(eventName="X", errorCode=None)],
        [ct(errorCode="AccessDenied", eventName="X")],
    ),
    (
        "lt lte gt gte",
        "  a:\n    n|gt: 5\n  b:\n    n|lte: 10\n  c:\n    m|lt: 0\n  d:\n    m|gte: -5\n"
        "  condition: a and b and c and d\n",
        [ct(n=6, m=-5), ct(n="10", m=-1)],
        [ct(n=5, m=-1), ct(n=11, m=-1), ct(n=6, m=0), ct(n=6, m=-6), ct(n="x", m=-1)],
    ),
    (
        "fieldref",
        "  sel:\n    requestParameters.userName|fieldref: userIdentity.userName\n"
        "  condition: sel\n",
        [ct(requestParameters={"userName": "bob"}, userIdentity={"userName": "bob"})],
        [ct(requestParameters={"userName": "eve"}, userIdentity={"userName": "bob"})],
    ),
    (
        "cased",
        "  sel:\n    eventName|cased: StopLogging\n  condition: sel\n",
        [ct(eventName="StopLogging")],
        [ct(eventName="stoplogging")],
    ),
    (
        "not, parentheses, 1 of, wildcard selection names",
        "  sel_a:\n    eventName: A\n  sel_b:\n    eventName: B\n"
        "  filter:\n    userIdentity.type: Root\n"
        "  condition: (1 of sel_*) and not filter\n",
        [ct(eventName="A", userIdentity={"type": "IAMUser"}), ct(eventName="B")],
        [ct(eventName="A", userIdentity={"type": "Root"}), ct(eventName="C")],
    ),
    (
        "all of them",
        "  one:\n    eventName: A\n  two:\n    awsRegion: us-east-1\n  condition: all of them\n",
        [ct(eventName="A", awsRegion="us-east-1")],
        [ct(eventName="A", awsRegion="eu-west-1")],
    ),
    (
        "list-valued field matches any element",
        "  sel:\n    resources.ARN|endswith: ':trail/org'\n  condition: sel\n",
        [ct(resources=[{"ARN": "arn:x"}, {"ARN": "arn:aws:cloudtrail:r:1:trail/org"}])],
        [ct(resources=[{"ARN": "arn:x"}])],
    ),
    (
        "numbers and booleans",
        "  sel:\n    readOnly: false\n    n: 3\n  condition: sel\n",
        [ct(readOnly=False, n=3), ct(readOnly="false", n="3")],
        [ct(readOnly=True, n=3)],
    ),
]


@pytest.mark.parametrize(("name", "detection", "yes", "no"), CASES, ids=[c[0] for c in CASES])
def test_feature(
    tmp_path: Path, name: str, detection: str, yes: list[dict[str, Any]], no: list[dict[str, Any]]
) -> None:
    detector = compile_one(tmp_path, detection)
    for doc in yes:
        assert matches(detector, doc), (name, doc)
    for doc in no:
        assert not matches(detector, doc), (name, doc)


def test_keywords_search_message_of_linux_events(tmp_path: Path) -> None:
    detector = compile_one(
        tmp_path,
        "  keywords:\n    - 'new user'\n  uid:\n    - 'UID=0,'\n"
        "  condition: all of keywords or uid\n",
        logsource="product: linux",
    )
    assert matches(detector, auth("new user: name=x, UID=0, GID=0"))
    assert matches(detector, {"event": {"dataset": "system.syslog"}, "message": "NEW USER here"})
    assert not matches(detector, auth("session opened"))
    assert not matches(detector, ct(message="new user"))


def test_logsource_selects_dataset_and_program(tmp_path: Path) -> None:
    detector = compile_one(
        tmp_path,
        "  sel:\n    - 'Failed password'\n  condition: sel\n",
        logsource="product: linux\n  service: sshd",
    )
    assert matches(detector, auth("Failed password for root", process={"name": "sshd"}))
    assert not matches(detector, auth("Failed password for root", process={"name": "sudo"}))


def test_auditd_fields_map_to_ecs(tmp_path: Path) -> None:
    detector = compile_one(
        tmp_path,
        "  sel:\n    type: SYSCALL\n    exe|endswith: /auditctl\n  condition: sel\n",
        logsource="product: linux\n  service: auditd",
    )
    doc = {
        "event": {"dataset": "auditd.log"},
        "auditd": {"log": {"record_type": "SYSCALL", "exe": "/sbin/auditctl"}},
    }
    assert matches(detector, doc)
    doc["auditd"]["log"]["exe"] = "/bin/ls"
    assert not matches(detector, doc)


def test_index_skips_rules_of_other_event_names(tmp_path: Path) -> None:
    detector = compile_one(
        tmp_path, "  sel:\n    eventName: StopLogging\n    eventSource: x\n  condition: sel\n"
    )
    (rule,) = detector.rules
    assert rule.index_values == frozenset({"stoplogging"})


@pytest.mark.parametrize(
    ("detection", "feature"),
    [
        ("  sel:\n    eventName|expand: '%names%'\n  condition: sel\n", "placeholder"),
        ("  sel:\n    eventName|re: '('\n  condition: sel\n", "("),
    ],
)
def test_unsupported_feature_names_file_and_feature(
    tmp_path: Path, detection: str, feature: str
) -> None:
    with pytest.raises(RuleLoadError) as err:
        compile_one(tmp_path, detection)
    assert "rule.yml" in str(err.value)
    assert feature in str(err.value)


def test_unsupported_correlation_condition(tmp_path: Path) -> None:
    (tmp_path / "r.yml").write_text(
        "title: base\nname: base\nlogsource: {product: linux}\n"
        "detection: {sel: [x], condition: sel}\n---\n"
        "title: c\nname: c\ncorrelation:\n  type: event_count\n  rules: [base]\n"
        "  timespan: 5m\n  condition: {lt: 3}\n"
    )
    with pytest.raises(RuleLoadError, match=r"r\.yml.*condition lt"):
        load_rules([tmp_path])


def test_uncollected_logsource_is_skipped_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "r.yml").write_text(
        "title: t\nid: 6f7d3c5e-1111-4222-8333-944455556666\n"
        "logsource: {product: windows, service: security}\ndetection: {sel: [x], condition: sel}\n"
    )
    loaded = load_rules([tmp_path])
    assert loaded.detections == []
    assert "windows" in loaded.skipped[0]
