"""What the store's index sees of an event.

One FTS5 table per month holds two columns for each event:

``text``
    The one-line message plus the identifiers people search for (names,
    addresses, accounts, hosts, error codes, resource names), each once.
    Kept short: the index costs space and insert time per token.
``tags``
    One token per exact-match field (user, address, action, ...): a letter
    for the field and 64 bits of a hash of the value.  This makes the
    full-text index double as the field index: inverted lists of
    time-ordered keys are far cheaper to build than one B-tree per field,
    and "newest 100 events of user X" is a backwards walk of one list.
"""

from __future__ import annotations

from hashlib import blake2b
from typing import Any

from daemon.model import AuditEvent

_MAX_PARAM_VALUES = 12
_MAX_VALUE_CHARS = 200
_TEXT_FIELDS = ("aws.cloudtrail.error_code", "user.email", "process.name")

TAG_FIELDS: dict[str, str] = {
    "dataset": "d",
    "action": "a",
    "outcome": "o",
    "actor": "p",
    "user": "u",
    "ip": "i",
    "host": "h",
    "account": "c",
    "region": "r",
    "source": "s",
    "id": "e",
}
"""Filter name -> tag letter.  Never change a letter: stored tags use it."""


_TAG_CACHE: dict[tuple[str, str], str] = {}
_TAG_CACHE_SIZE = 1 << 16


def tag(field: str, value: str) -> str:
    """The tag token of one field value (cached: users, addresses, actions repeat)."""
    found = _TAG_CACHE.get((field, value))
    if found is None:
        found = TAG_FIELDS[field] + blake2b(value.encode(), digest_size=8).hexdigest()
        if len(_TAG_CACHE) >= _TAG_CACHE_SIZE:
            _TAG_CACHE.clear()
        _TAG_CACHE[(field, value)] = found
    return found


def event_tags(event: AuditEvent, source: str) -> str:
    values = (
        ("dataset", event.dataset),
        ("action", event.action),
        ("outcome", event.outcome),
        ("actor", event.actor),
        ("user", event.user_name),
        ("ip", event.source_ip),
        ("host", event.host_name),
        ("account", event.cloud_account_id),
        ("region", event.cloud_region),
        ("source", source),
    )
    tags = [tag(name, value) for name, value in values if value]
    # Event ids never repeat: hashed directly, not through the cache.
    tags.append("e" + blake2b(event.id.encode(), digest_size=8).hexdigest())
    return " ".join(tags)


def search_text(event: AuditEvent) -> str:
    message = event.message or ""
    parts: list[str] = [message] if message else []
    seen: set[str] = set()

    def add(value: Any) -> None:
        # Values the message already spells out would only add positions.
        if isinstance(value, str) and value and value not in seen and value not in message:
            seen.add(value)
            parts.append(value[:_MAX_VALUE_CHARS])

    add(event.action)
    add(event.actor)
    add(event.user_name)
    add(event.user_target_name)
    add(event.source_ip)
    add(event.source_address)
    add(event.host_name)
    add(event.cloud_account_id)
    add(event.cloud_region)
    for name in _TEXT_FIELDS:
        add(event.fields.get(name))
    original = event.original
    if isinstance(original, dict):
        # Resource names people search for (instance ids, buckets, role names)
        # sit in the request, often nested: instancesSet.items[].instanceId.
        budget = [_MAX_PARAM_VALUES]
        _strings(original.get("requestParameters"), add, budget, 5)
        resources = original.get("resources")
        if isinstance(resources, list):
            for resource in resources[:4]:
                if isinstance(resource, dict):
                    add(resource.get("ARN"))
    return " ".join(parts)


def _strings(node: Any, add: Any, budget: list[int], depth: int) -> None:
    """Feed up to ``budget[0]`` string leaves of ``node`` to ``add``, breadth first."""
    if depth == 0 or budget[0] <= 0:
        return
    values = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
    nested = []
    for value in values:
        if isinstance(value, str):
            add(value)
            budget[0] -= 1
            if budget[0] <= 0:
                return
        elif isinstance(value, dict | list):
            nested.append(value)
    for value in nested:
        _strings(value, add, budget, depth - 1)
