"""The ``ecs`` log type: events that arrive already in ECS form."""

from __future__ import annotations

import orjson
import pytest

from connectors.base import NormalizationError
from daemon.logtypes import normalize_record
from daemon.normalize import Limits, ecs
from daemon.store import stored
from daemon.store.keys import key_time, row_key

DOC = {
    "@timestamp": "2026-11-20T02:10:03Z",
    "event": {"id": "e-1", "kind": "event", "dataset": "system.auth", "action": "sudo"},
    "user": {"name": "alice"},
    "host": {"name": "bastion-1"},
}


@pytest.mark.parametrize(
    "payload",
    [
        orjson.dumps(DOC),
        orjson.dumps([DOC, DOC]),
        orjson.dumps(DOC) + b"\n\n" + orjson.dumps(DOC) + b"\n",
    ],
    ids=["one", "array", "json-lines"],
)
def test_decode_accepts_one_document_an_array_and_json_lines(payload: bytes) -> None:
    """Each accepted payload shape decodes to its documents."""
    records = ecs.decode(payload, Limits())
    assert records
    assert all(r == DOC for r in records)


def test_decode_rejects_what_is_neither_json_nor_json_lines() -> None:
    """Garbage is one NormalizationError for the payload."""
    with pytest.raises(NormalizationError, match="neither JSON nor JSON lines"):
        ecs.decode(b"{not json\nat all", Limits())


def test_normalize_round_trips_and_rejects_non_events() -> None:
    """A document becomes the same event; a document without event fields is rejected."""
    assert ecs.normalize(DOC).to_document() == DOC
    with pytest.raises(NormalizationError, match="not an ECS event document"):
        ecs.normalize({"message": "no timestamp, no event"})
    with pytest.raises(NormalizationError, match="JSON object"):
        ecs.normalize(["a", "list"])


def test_a_stored_record_the_normalizer_now_rejects_still_reads() -> None:
    """Read path: a record its normalizer rejects shows its original, time and the reason."""
    key = row_key(key_time(1 << 40), 7)
    data = stored.encode("ecs", "2026-11-27T00:00:00Z", {"message": "not an event"})
    doc = stored.read(data, key_time(key), normalize_record)[1]
    assert doc["original"] == {"message": "not an event"}
    assert "normalization_error" in doc["labels"]
    assert doc["@timestamp"].endswith("Z")
