"""Fixtures for the output tests: alerts, a store, real receivers and brokers on ephemeral ports."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "daemon" / "delivery"))

from deliverysupport import certificate, mosquitto, receiver, store, trusted_ca

__all__ = ["certificate", "mosquitto", "receiver", "store", "trusted_ca"]
