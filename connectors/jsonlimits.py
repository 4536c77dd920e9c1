"""Limits a JSON text must keep before it is parsed: nesting depth and number length.

Python's ``json`` recurses once per nesting level (a deep enough text raises
``RecursionError``) and converts integer digits in quadratic time (it refuses
more than 4300 digits with ``ValueError``).  Both are checked here on the raw
bytes, with regular expressions and C-level iteration, so a hostile body is
refused with a reason instead of crashing or stalling the parser.
"""

from __future__ import annotations

import operator
import re
from itertools import accumulate, count

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET = re.compile(rb"[^\[\]{}]+")
_OPEN_CLOSE = bytes.maketrans(b"[{]}", b"\x02\x02\x00\x00")
"""An opening bracket counts 2, a closing one 0: their running sum minus the count is the depth."""

MAX_DEPTH = 32
MAX_NUMBER_DIGITS = 64


def problem(
    body: bytes, *, max_depth: int = MAX_DEPTH, max_digits: int = MAX_NUMBER_DIGITS
) -> str | None:
    """Why ``body`` must not be parsed, or None when it keeps both limits."""
    outside = _STRING.sub(b'""', body)
    if re.search(rb"[0-9]{%d}" % (max_digits + 1), outside):
        return f"a number has more than {max_digits} digits"
    depth = nesting(outside)
    if depth > max_depth:
        return f"nested {depth} levels deep; at most {max_depth}"
    return None


def nesting(text: bytes) -> int:
    """The deepest bracket nesting of ``text`` (strings already taken out)."""
    steps = _NOT_BRACKET.sub(b"", text).translate(_OPEN_CLOSE)
    return max(map(operator.sub, accumulate(steps), count(1)), default=0)
