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

import re
import unicodedata
from collections.abc import Iterable
from hashlib import blake2b
from typing import Any

from daemon.model import AuditEvent

_MAX_VALUE_CHARS = 200
_TEXT_FIELDS = ("user.email", "process.name")
_TOKEN = re.compile(r"[\w.\-@]+")
_MAX_TOKEN_CHARS = 500
"""PostgreSQL refuses lexemes over 2047 bytes; longer words are indexed by their start."""

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


def query_words(text: str) -> list[tuple[str, bool]]:
    """The words a person typed, each with whether it asks for a prefix (a trailing ``*``)."""
    words = []
    # NUL ends an FTS5 string ("unterminated string"); no token holds one.
    for word in text.replace("\x00", " ").split():
        prefix = word.endswith("*") and len(word) > 1
        words.append((word.rstrip("*") if prefix else word, prefix))
    return words


def tokens(text: str) -> list[str]:
    """Words of ``text`` as FTS5's unicode61 tokenizer sees them: folded, without accents."""
    folded = text.lower()
    if not folded.isascii():
        decomposed = unicodedata.normalize("NFKD", folded)
        folded = "".join(c for c in decomposed if not unicodedata.combining(c))
    return [word[:_MAX_TOKEN_CHARS] for word in _TOKEN.findall(folded)]


def tag_values(event: AuditEvent, source: str) -> tuple[tuple[str, str | None], ...]:
    """Each exact-match field of an event with its value (None: the event has none)."""
    return (
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


def event_tags(event: AuditEvent, source: str) -> str:
    # Event ids are not tags: a term per event would make the index several
    # times larger and slower to build; an event is found by its row key.
    return " ".join([tag(name, value) for name, value in tag_values(event, source) if value])


def search_text(event: AuditEvent, words: Iterable[Any] = ()) -> str:
    """The index text of an event: its message, the identifiers of its common fields
    and ``words``, the ones its log type adds (the store names no log type)."""
    candidates = [
        event.action,
        event.actor,
        event.user_name,
        event.user_target_name,
        event.source_ip,
        event.source_address,
        event.host_name,
        event.cloud_account_id,
        event.cloud_region,
    ]
    fields = event.fields
    candidates.extend(fields.get(name) for name in _TEXT_FIELDS)
    candidates.extend(words)
    message = event.message or ""
    parts = [message] if message else []
    # Values the message already spells out would only add positions.
    parts.extend(
        value[:_MAX_VALUE_CHARS]
        for value in dict.fromkeys(candidates)
        if value and isinstance(value, str) and value not in message
    )
    return " ".join(parts)
