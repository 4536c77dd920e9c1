"""Fixtures for the AWS sources: a moto server, fake credentials, a fault proxy, and a
LookupEvents server."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[2] / "integration"))

from lookupserver import lookup_server
from motoserver import fake_aws_credentials, fault_proxy, moto_endpoint

__all__ = ["fake_aws_credentials", "fault_proxy", "lookup_server", "moto_endpoint"]
