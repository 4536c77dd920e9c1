"""PostgreSQL full-text search over the index text the workers build (``text.py``).

PostgreSQL's own parser splits ``alice.smith`` or ``203.0.113.5`` in its own
ways, so the store tokenizes here as SQLite's FTS5 does (``unicode61
remove_diacritics 2 tokenchars '._-@'``) and hands PostgreSQL finished
``tsvector`` and ``tsquery`` literals: a search finds the same events in
either store.  One ``tsvector`` holds both columns of the FTS5 table: words
of the text at weight D with their positions (phrases), field tags at
weight A, so a query asks for each under its weight.
"""

from __future__ import annotations

from daemon.store.base import EventQuery
from daemon.store.text import TAG_FIELDS, query_words, tag, tokens
from daemon.store.units import Text

_MAX_POSITION = 16383
"""The largest position a tsvector holds; later words share it."""


NOTHING = ""
"""What ``query_of`` gives for a query no event can match: no need to ask."""


def _quoted(lexeme: str) -> str:
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


def document_vector(entry: Text) -> str:
    """The ``tsvector`` literal of one event's index text and field tags."""
    text, tags = entry
    positions: dict[str, list[str]] = {}
    for position, word in enumerate(tokens(text), 1):
        positions.setdefault(word, []).append(str(min(position, _MAX_POSITION)))
    parts = [f"{_quoted(word)}:{','.join(at)}" for word, at in positions.items()]
    parts.extend(f"{_quoted(token)}:1A" for token in tags.split())
    return " ".join(parts)


def query_of(query: EventQuery) -> str | None:
    """The ``tsquery`` literal of a query's text and field filters; None for neither.

    Every word must occur; a word of several tokens (``arn:aws:iam::1:role/x``)
    is a phrase of them, and a trailing ``*`` makes its last token a prefix.
    A word with no token at all matches nothing, as an empty FTS5 phrase does
    (``NOTHING``).
    """
    parts = [
        f"{_quoted(tag(name, value))}:A"
        for name in TAG_FIELDS
        if (value := getattr(query, name)) is not None
    ]
    if query.text:
        typed = query_words(query.text)
        if not typed:
            return NOTHING
        for literal, prefix in typed:
            words = tokens(literal)
            if not words:
                return NOTHING
            terms = [f"{_quoted(word)}:D" for word in words]
            if prefix:
                terms[-1] = f"{_quoted(words[-1])}:*D"
            phrase = " <-> ".join(terms)
            parts.append(f"({phrase})" if len(terms) > 1 else phrase)
    return " & ".join(parts) if parts else None
