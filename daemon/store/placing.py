"""Storing events whose row key another event holds, at a cost that does not grow
with the number of events in one millisecond.

An event's natural key (``keys.row_key``) is its millisecond and 20 bits of its
id's hash.  When a different event holds it, the event is *displaced*: it takes
a free key of the same millisecond, handed out from the top of the millisecond
downwards, and the ``displaced`` table remembers where it went (natural key and
``eid`` to key), so a re-read finds it with one indexed lookup.  ``fill_marks``
keeps, per millisecond, the lowest key handed out so far (every key from there
up is held), so the next write goes on from there instead of scanning again.
Lookups and inserts run in batches, once per write, not once per event.

Where one writer at a time stores events (``Access.crowd``: one SQLite file),
a millisecond is *crowded* from the write that first hands out keys of it:
that write records every event the millisecond holds and ``displaced`` does
not know yet as held on its own key (``crowds`` lists the milliseconds
recorded so), and
from then on every new event of it goes on a handed-out key, its natural
one free or not, and is looked up in ``displaced`` alone, not on its
natural key too.  The natural keys of a crowded millisecond come in hash
order, so storing them dirtied pages all over its part of the events table
in each write; handed-out keys are dense.  New rows of ``displaced`` go to
the small ``displaced_recent`` first and move into ``displaced`` once it
holds ``RECENT_ROWS``: inserted in hash order straight into the big index,
they dirtied most of its pages in every write.  ``displaced_all`` reads
both.  A store copied from elsewhere has marks but no crowds: its
milliseconds are crowded at their next collision.  With several writers
(PostgreSQL), a writer that has not seen the mark yet could store an event
on its natural key while another displaces the same event; PostgreSQL
appends rows to its heap whatever their key, so it keeps natural keys and
one ``displaced`` table.

A millisecond holds 2**20 events.  Once it is full, its displaced events go to
the next millisecond that has room (the one before, at the very end of the key
space): their keys, and so the histogram and time-bounded searches, put them a
millisecond or so later than their event time; the stored document keeps the
exact time.

Both engines run the same statements (``?`` parameters); in PostgreSQL the
first statement on a millisecond's mark locks it until the write commits, so
writers of several daemons hand out a millisecond's free keys in turn.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any, TypeVar

from daemon.store.keys import HASH_BITS, LAST_MS
from daemon.store.units import Entry

_CHUNK = 500
"""Keys per ``IN (...)`` lookup (SQLite allows 32766 parameters; small is plenty)."""
_SCAN = 4096
"""Keys of a millisecond read per step while looking for free ones."""
RECENT_ROWS = 100_000
"""Rows ``displaced_recent`` holds at most before they move into ``displaced``."""

_MARK = (
    "INSERT INTO fill_marks (ms, low) VALUES (?, ?)"
    " ON CONFLICT (ms) DO UPDATE SET low = fill_marks.low RETURNING low"
)
_SAVE_MARK = "UPDATE fill_marks SET low = ? WHERE ms = ?"
_TAKEN = "SELECT id FROM events WHERE id >= ? AND id < ?"
_CROWDS = "SELECT ms FROM crowds WHERE ms IN ({})"
_CROWD = "INSERT INTO crowds (ms) VALUES (?)"
_HOLDS = "SELECT id, eid FROM events WHERE id >= ? AND id < ?"
_RECORDED = "SELECT home, eid, id FROM displaced_all WHERE home >= ? AND home < ?"
_RECENT = "SELECT count(*) FROM displaced_recent"
_MERGE = "INSERT INTO displaced (home, eid, id) SELECT home, eid, id FROM displaced_recent"

_T = TypeVar("_T")
Rows = Callable[[str, Sequence[Any]], list[Any]]


@dataclass(frozen=True, slots=True)
class Access:
    """What placing needs of an engine, inside the caller's write transaction."""

    rows: Rows
    """Run one statement with ``?`` parameters; its rows."""
    many: Callable[[str, Sequence[Sequence[Any]]], object]
    """Run one statement for each parameter row."""
    holders: Callable[[list[int]], list[tuple[int, int]]]
    """(key, eid) of the keys the store holds among those given."""
    insert: Callable[[list[tuple[int, Entry]]], set[int]]
    """Store entries under the keys paired with them; the keys stored (a key another
    writer took meanwhile is left out)."""
    crowd: bool = False
    """No other writer stores events meanwhile: crowded milliseconds take no natural keys
    (and the store has ``crowds`` and ``displaced_recent``)."""

    @property
    def displaced(self) -> str:
        """Where new displaced rows go."""
        return "displaced_recent" if self.crowd else "displaced"

    @property
    def lookup(self) -> str:
        """Where displaced rows are looked up."""
        return "displaced_all" if self.crowd else "displaced"


def place(entries: Sequence[Entry], access: Access) -> list[int | None]:
    """Store each entry on its natural key when free, else on a free key (see module
    docstring); for each entry the key it was stored under, None for an event stored
    already (on its natural key, displaced, or earlier in ``entries``)."""
    found: list[int | None] = [None] * len(entries)
    if not entries:
        return found
    first: dict[tuple[int, int], int] = {}
    """The first entry of each event (home, eid)."""
    for index, (_, row, _, _) in enumerate(entries):
        first.setdefault((row[0], row[1]), index)
    # In key order, so that writers of several daemons lock millisecond marks in one order.
    pending = sorted(first)
    keys = _Keys(access.rows)
    remember = _remember(access.displaced)
    handed: list[int] = []
    """Keys this write stored events on away from their natural keys."""
    while pending:
        chosen = list(zip(_choose(pending, access, keys), pending, strict=True))
        # In key order, as the write's other rows (see writing.sort_rows).
        placed = [(key, first[pair]) for key, pair in chosen if key is not None]
        placed.sort()
        stored = access.insert([(key, entries[i]) for key, i in placed])
        for key, i in placed:
            if key in stored:
                found[i] = key
        # In (home, eid) order, as ``pending``.
        remembered = [
            (pair[0], pair[1], key)
            for key, pair in chosen
            if key is not None and key != pair[0] and key in stored
        ]
        _run(access, remember, remembered)
        handed.extend(key for _, _, key in remembered)
        # Keys another daemon's writer took since they were looked at: choose again.
        pending = [pair for key, pair in chosen if key is not None and key not in stored]
    marks = keys.marks()
    _run(access, _SAVE_MARK, marks)
    if access.crowd:
        _crowd(access, [ms for _, ms in marks], handed)
    return found


def _crowd(access: Access, marked: list[int], handed: list[int]) -> None:
    """Crowd the milliseconds this write handed out keys of, recording the events they
    hold that are not recorded yet: not displaced there (by this write, ``handed``, or
    before) nor recorded by the store a copy was made from; move ``displaced_recent``
    into ``displaced`` once it is full."""
    new = sorted(set(marked) - crowded(access, marked))
    away = set(handed) if new else set()
    for ms in new:
        span = (ms << HASH_BITS, (ms + 1) << HASH_BITS)
        recorded = access.rows(_RECORDED, span)
        away.update(int(key) for _, _, key in recorded)
        pairs = {(int(home), int(eid)) for home, eid, _ in recorded}
        held = [
            (key, eid, key)
            for key, eid in ((int(key), int(eid)) for key, eid in access.rows(_HOLDS, span))
            if key not in away and (key, eid) not in pairs
        ]
        _run(access, _remember("displaced_recent"), held)
    _run(access, _CROWD, [(ms,) for ms in new])
    if int(access.rows(_RECENT, ())[0][0]) >= RECENT_ROWS:
        access.rows(_MERGE, ())
        access.rows("DELETE FROM displaced_recent", ())


def _remember(table: str) -> str:
    return f"INSERT INTO {table} (home, eid, id) VALUES (?, ?, ?)"


def _run(access: Access, sql: str, rows: Sequence[Sequence[int]]) -> None:
    if rows:
        access.many(sql, rows)


def _choose(pending: list[tuple[int, int]], access: Access, keys: _Keys) -> list[int | None]:
    """The key for each (home, eid) of ``pending`` (in key order): its natural one when
    free (and its millisecond not crowded), None when stored already, else a free key of
    its millisecond."""
    homes = list(dict.fromkeys(home for home, _ in pending))
    marked = crowded(access, {home >> HASH_BITS for home in homes})
    probed = [home for home in homes if home >> HASH_BITS not in marked] if marked else homes
    held = dict(_chunked(access.holders, probed))
    natural = {home for home in probed if home not in held}
    keys.claim(natural)
    looked = [home for home in homes if home not in natural]
    known = set(_chunked(lambda part: _known(access, part), looked))
    chosen: list[int | None] = [None] * len(pending)
    wanting: dict[int, list[int]] = defaultdict(list)
    """Positions in ``chosen`` by the millisecond they need a free key of."""
    for position, pair in enumerate(pending):
        if known and pair in known:
            continue
        home, eid = pair
        holder = held.get(home)
        if holder is None and home in natural:
            held[home] = eid
            chosen[position] = home
        elif holder != eid:
            wanting[home >> HASH_BITS].append(position)
    for ms, positions in wanting.items():
        for position, key in zip(positions, keys.take(ms, len(positions)), strict=True):
            chosen[position] = key
    return chosen


def crowded(access: Access, milliseconds: Iterable[int]) -> set[int]:
    """The crowded milliseconds among those given (none unless ``access.crowd``)."""
    if not access.crowd:
        return set()
    wanted = sorted(set(milliseconds))
    return {
        int(ms)
        for (ms,) in _chunked(
            lambda part: access.rows(_CROWDS.format(",".join("?" * len(part))), part), wanted
        )
    }


def _known(access: Access, homes: list[int]) -> list[tuple[int, int]]:
    marks = ",".join("?" * len(homes))
    found = access.rows(f"SELECT home, eid FROM {access.lookup} WHERE home IN ({marks})", homes)
    return [(int(home), int(eid)) for home, eid in found]


def _chunked(lookup: Callable[[list[int]], list[_T]], keys: list[int]) -> list[_T]:
    return [
        row for start in range(0, len(keys), _CHUNK) for row in lookup(keys[start : start + _CHUNK])
    ]


class _Keys:
    """Free keys per millisecond for one write, from its top down, and the marks to save."""

    def __init__(self, rows: Rows) -> None:
        self._rows = rows
        self._claimed: set[int] = set()
        self._free: dict[int, Iterator[int]] = {}
        self._low: dict[int, int] = {}

    def claim(self, keys: Iterable[int]) -> None:
        """Keys this write stores events on (natural keys found free): never handed out."""
        self._claimed.update(keys)

    def take(self, ms: int, count: int) -> list[int]:
        """``count`` free keys of millisecond ``ms``, then of the nearest ones with room
        after it."""
        out: list[int] = []
        for spill in _spill_order(ms):
            scan = self._free.get(spill)
            if scan is None:
                scan = self._free[spill] = self._scan(spill)
            out.extend(islice(scan, count - len(out)))
            if len(out) == count:
                # The scan stopped at the last key handed out: the mark goes on from there.
                self._low[spill] = out[-1]
                return out
        raise OverflowError("every row key is taken")

    def _scan(self, ms: int) -> Iterator[int]:
        low = ms << HASH_BITS
        top = int(self._rows(_MARK, (ms, low + (1 << HASH_BITS)))[0][0])
        self._low[ms] = top
        while top > low:
            start = max(low, top - _SCAN)
            taken = {int(key) for (key,) in self._rows(_TAKEN, (start, top))}
            claimed = self._claimed
            yield from [
                key
                for key in range(top - 1, start - 1, -1)
                if key not in taken and key not in claimed
            ]
            self._low[ms] = top = start

    def marks(self) -> list[tuple[int, int]]:
        """(low, ms) of every millisecond this write handed out keys of."""
        return [(low, ms) for ms, low in self._low.items()]


def _spill_order(ms: int) -> Iterator[int]:
    """The millisecond itself, the later ones, then (at the end of the key space) earlier."""
    yield from range(ms, LAST_MS + 1)
    yield from range(ms - 1, -1, -1)


def prune(execute: Callable[[str, Sequence[Any]], int], floor: int, *, crowd: bool) -> None:
    """Forget the displaced events, marks and crowds of milliseconds below the retention
    ``floor`` (``crowd`` as ``Access.crowd``)."""
    ms = floor >> HASH_BITS
    for table in ("displaced", "displaced_recent") if crowd else ("displaced",):
        execute(f"DELETE FROM {table} WHERE home < ?", (floor,))
    execute("DELETE FROM fill_marks WHERE ms < ?", (ms,))
    if crowd:
        execute("DELETE FROM crowds WHERE ms < ?", (ms,))
