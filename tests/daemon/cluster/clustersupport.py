"""Hits for the cluster tests, made as the decoding workers make them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from daemon.alert import Evidence
from daemon.changes.coverage import Facts, Resource
from daemon.rules.hits import Hit

BASE = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def make_hit(source: str, n: int, *, change: bool = False) -> Hit:
    """Hit ``n`` of ``source``, ``n`` seconds after BASE; with change facts when asked."""
    at = BASE + timedelta(seconds=n)
    return Hit(
        rule="unapproved_change" if change else "ssh_login_failed",
        evidence=Evidence(f"{source}-{n}", at, "system.auth", "ssh_login", f"event {n}"),
        source=source,
        values={"source.ip": "203.0.113.7"},
        actors=("alice",),
        facts=Facts(
            time=at,
            people=("alice", "ec2-user"),
            host="web-1",
            account="123456789012",
            region="eu-west-1",
            resources=(Resource("i-0abc", "arn:aws:ec2:eu-west-1:123456789012:instance/i-0abc"),),
            action="RunInstances",
        )
        if change
        else None,
        context={"nearest": [{"event": f"{source}-{n}"}]} if change else None,
    )
