"""Exact local order books from Binance diff-depth streams, and the rules that keep them in sync.

Binance publishes a book as a REST snapshot (``GET /api/v3/depth``, ``/fapi/v1/depth``,
``/dapi/v1/depth``: ``{"lastUpdateId", "bids", "asks"}``, futures add ``E`` and ``T``) plus a
stream of ``depthUpdate`` diffs (``<symbol>@depth[@100ms]``). A diff covers the update ids
``U``..``u`` and carries, for every level that changed in that range, its *absolute* size as of
``u`` (size zero, in any spelling, removes the level). Futures diffs also carry ``pu``, the
``u`` of the previous diff of the stream; futures update ids are not contiguous between diffs
(``U`` may be well above ``pu + 1``), so futures chain on ``pu`` and Spot on ``U``.

This module is the pure core of tern's book sync: no I/O, no trio, no clock; everything is
deterministic. An actor feeds it parsed depth events, REST snapshots and stream interruptions
and acts on the small outcome each call returns.

**The book.** :class:`OrderBook` keeps every level exactly as Binance sent it (price and size
strings; :class:`~decimal.Decimal` only when asked for) in a dict per side from price key to
one string (``price + "\x00" + size``), plus the sorted price keys per side in a list (best
price last, so that the changes near the top move few entries): the best level is O(1), the
top ``n`` O(n), a change O(log n) plus a short ``memmove``. Nothing the book holds per level
is a container, so the garbage collector never visits a level's objects: a dict of floats and
strings is not even tracked by CPython. (Keeping orjson's ``[price, size]`` lists, or tuples,
made every level a tracked container; with hundreds of deep books the collector took a third
of the thread. The parsed lists now die with their frame. The key list is walked by a full
collection, but an ``array('d')`` measured slower overall: its bisect boxes a float per step.)

A price key is ``float(price)`` (asks negated, so both sides ascend towards the best price)
whenever that float is *exact for ordering and equality*: when ``Decimal(repr(float(p))) ==
Decimal(p)``. For prices with that property ``float`` is injective (equal floats have equal
shortest reprs, hence equal decimal values) and monotonic (rounding never reverses an order),
so float comparisons are decimal comparisons. Every price of at most 15 significant digits in
the normal double range has it (``DBL_DIG`` is 15: such a decimal survives the round trip
through a double), and every Binance price does; the hot path proves it with two cheap checks
(at most 15 characters, float in the normal range) and falls back to the full test otherwise.
A price without the property (say ``1.0000000000000001``) switches that book to ``Decimal``
keys (in a list) until the next snapshot: slower, never wrong.

**The sequencing rules** (the official procedures, §8 of ``binance-protocol.md``),
:class:`SequenceRule` ``SPOT`` or ``FUTURES`` (USD-M and COIN-M), applied by
:class:`DepthSync`, one per instrument:

* Before a snapshot, diffs are *buffered* (at most ``max_buffer``; overflow makes the book
  stale). A buffered diff that does not chain to the one before it (Spot: ``U > prev_u + 1``;
  futures: ``pu != prev_u``) restarts the buffer: a later snapshot will be needed.
* A snapshot with ``lastUpdateId`` L drops the buffered diffs it already contains (Spot:
  ``u <= L``; futures: ``u < L``). The first remaining diff must fit: Spot
  ``U <= L + 1 <= u``; futures ``U <= L <= u``, or ``pu == L`` when the snapshot fell
  exactly between two diffs. If it does not, the snapshot predates the buffer
  (:class:`SnapshotTooOld`: fetch another). Spot's step 3 ("``lastUpdateId`` < first ``U``:
  fetch again") is read as ``L + 1 < U`` for the same reason that step 4 accepts
  ``U == L + 1``: that snapshot and that diff are continuous. The book is then the snapshot
  plus the remaining diffs replayed, each checked like a live one (:class:`Synced`). A snapshot
  newer than everything buffered syncs at once, and the first live diff must fit it.
* Every live diff is checked, for the life of the stream. A diff the book already contains
  (``u`` <= the book id: a duplicate or a late diff) is :class:`Ignored`. Otherwise Spot
  applies it when ``U <= book + 1`` (step 6: ``U == book + 1`` normally; an overlap is
  harmless because sizes are absolute) and futures when ``pu == book``. Anything else is a gap
  (a lost or reordered diff): the book is cleared at once, becomes ``STALE``, and the call
  returns :class:`NeedSnapshot`. Nothing more is applied until a snapshot resyncs it; the diff
  that revealed the gap starts the new buffer.
* A snapshot with no bids and no asks at all is a failure (:class:`NeedSnapshot`), like a
  failed request: Binance never has a book that is empty on both sides for a listed symbol,
  and trusting one would publish a wrong book. One empty side is a valid (thin) book.
* A stream interruption (reconnect, dropped frames) clears the book and the buffer.

**What the caller does with each outcome**

* :class:`Applied`: publish the changed levels (``bids``/``asks`` exactly as Binance sent
  them, zero sizes meaning removal) at ``update_id``.
* :class:`Ignored`, :class:`Buffered`: nothing.
* :class:`NeedSnapshot`: the book is stale (publish that); fetch a snapshot, with the
  caller's own backoff (``attempts`` counts snapshots tried since the book was last proven in
  sync), unless one is already in flight. A new :class:`DepthSync` is ``WAITING`` and needs a
  snapshot too; Binance suggests fetching it after the first diff is buffered.
* :class:`SnapshotTooOld`: fetch another snapshot.
* :class:`Synced`: publish the whole book (:meth:`OrderBook.levels`) at ``update_id``.

**The fast path.** :meth:`DepthSync.apply_frame` takes a raw ``/ws`` or ``/stream`` diff-depth
frame, parses it with orjson, and when it is the next diff of an in-sync book applies its
levels straight from the parsed lists: no Decimal, no per-level objects beyond orjson's. Every
other case (buffering, duplicates, gaps) goes through :class:`DepthDiff` and
:meth:`DepthSync.apply_diff`, with the same rules.

**Parsing.** :meth:`DepthDiff.from_payload` (:func:`parse_depth_frame`) and
:meth:`DepthSnapshot.from_payload` (:func:`parse_depth_snapshot`) are tern's only readers of
diff-depth events and REST depth snapshots (:mod:`actors.binance.market_data` reads the other
market payloads, partial depth included). They check the shape: each field and its JSON type,
``U <= u``, levels that are lists of two strings; anything else raises ``ValueError`` naming
the field. A level's strings are read as numbers exactly once, when the book applies them:
:meth:`OrderBook.apply` and :meth:`OrderBook.replace` raise ``ValueError`` for a price that is
not a positive finite number or a size that is not a non-negative one, and :class:`DepthSync`
turns that into a stale book (:class:`NeedSnapshot`), never a wrong one. The book reads
numbers as ``float()`` and ``Decimal()`` do, which also take spellings Binance never writes
(``" 1"``, ``"1_0"``, ``"1e2"``); the value is the same everywhere, and the book-sync actor
refuses such a level before it publishes anything
(:func:`actors.binance.market_data.level_number`, then :meth:`DepthSync.discard`).
"""

from __future__ import annotations

import enum
import sys
from bisect import bisect_left, insort
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, TypeAlias

import attrs
import orjson

from actors.config import AccountType

__all__ = [
    "DEFAULT_MAX_BUFFER",
    "Applied",
    "Buffered",
    "DepthDiff",
    "DepthOutcome",
    "DepthSnapshot",
    "DepthSync",
    "Ignored",
    "Level",
    "NeedSnapshot",
    "OrderBook",
    "SequenceRule",
    "SnapshotTooOld",
    "SyncState",
    "Synced",
    "float_key",
    "parse_depth_frame",
    "parse_depth_snapshot",
]

#: A level as Binance sends it: ``(price, size)``, both decimal strings.
Level: TypeAlias = tuple[str, str]

#: Diffs held while waiting for a snapshot before the book is declared stale. Binance pushes
#: at most ten diffs a second per symbol, so this covers minutes of snapshot latency.
DEFAULT_MAX_BUFFER = 5_000

_INF = float("inf")
_MIN_NORMAL = sys.float_info.min
#: Zero spellings answered without a Decimal (Binance pads sizes to the symbol's precision).
_ZEROS = frozenset(["0", "0."] + ["0." + "0" * places for places in range(1, 19)])
_loads = orjson.loads


# ----------------------------------------------------------------------------- numbers


def _price_value(price: object) -> Decimal:
    """The exact value of a price string; ``ValueError`` unless it is a positive finite decimal."""
    if type(price) is not str:
        raise ValueError(f"a price must be a string, not {price!r}")
    try:
        value = Decimal(price)
    except InvalidOperation:
        raise ValueError(f"not a decimal price: {price!r}") from None
    if not value.is_finite() or value <= 0:
        raise ValueError(f"not a positive finite price: {price!r}")
    return value


def _is_live(size: object) -> bool:
    """Whether a size string keeps its level: ``True`` above zero, ``False`` for zero in any
    spelling (``0``, ``0.000``...); ``ValueError`` for anything that is not a size."""
    if type(size) is not str:
        raise ValueError(f"a size must be a string, not {size!r}")
    try:
        value = Decimal(size)
    except InvalidOperation:
        raise ValueError(f"not a decimal size: {size!r}") from None
    if not value.is_finite() or value < 0:
        raise ValueError(f"not a non-negative finite size: {size!r}")
    return value != 0


def float_key(price: str) -> float | None:
    """``float(price)`` if it orders and compares exactly like the decimal ``price``, else None.

    Exact means ``Decimal(repr(float(price))) == Decimal(price)``: the float's shortest repr
    is the price itself. Floats of such prices are equal only for equal prices and ordered as
    the prices are (see the module docstring). Raises ``ValueError`` if ``price`` is not a
    positive finite decimal string.
    """
    value = _price_value(price)
    key = float(value)
    return key if Decimal(repr(key)) == value else None


def _fast_key(price: str) -> float | None:
    """:func:`float_key` with the cheap sufficient test first (as inlined in the hot loop)."""
    if len(price) < 16 and _MIN_NORMAL <= (key := float(price)) < _INF:
        return key
    return float_key(price)


# -------------------------------------------------------------------------------- book

#: Joins a level's price and size into the one string a book stores for it. No price or size
#: the book accepts contains it (``float`` and ``Decimal`` refuse it).
_SEP = "\x00"


def _new_keys(decimal: bool, keys: Iterable[Any] = ()) -> Any:
    """A side's sorted keys for the mode: floats, or Decimals (a list either way: faster than
    an ``array('d')``, whose bisect boxes a float per step, even counting the collector's
    walk over a list of floats)."""
    return list(keys)


def _not_strings(level: object) -> ValueError:
    return ValueError(f"a level must be [price, size] strings, not {level!r}")


def _apply_float_side(
    changes: Iterable[Sequence[str]],
    keys: list[float],
    levels: dict[float, str],
    ask: bool,
    _float: type[float] = float,
    _str: type[str] = str,
    _lowest: float = _MIN_NORMAL,
    _inf: float = _INF,
    _zeros: frozenset[str] = _ZEROS,
    _insort: Any = insort,
    _bisect_left: Any = bisect_left,
) -> bool:
    """Apply ``changes`` to one side keyed by floats (asks negated); the hot loop.

    Returns False, having applied the levels before it, at the first price whose float is not
    exact; the caller switches the book to Decimal keys and applies the side again (applying
    absolute sizes twice changes nothing). The trailing parameters are constants bound as
    locals for speed.
    """
    for level in changes:
        if type(level) is _str:  # "12" would unpack as price "1", size "2"
            raise ValueError(f"a level must be [price, size], not {level!r}")
        price, size = level
        if len(price) > 15 or not _lowest <= (key := _float(price)) < _inf:
            key = float_key(price)
            if key is None:
                return False
        if ask:
            key = -key
        if 0.0 < _float(size) < _inf or (size not in _zeros and _is_live(size)):
            if type(price) is not _str or type(size) is not _str:  # float() takes 1 or b"1"
                raise _not_strings(level)
            if key not in levels:
                _insort(keys, key)
            levels[key] = f"{price}\x00{size}"
        elif levels.pop(key, None) is not None:
            del keys[_bisect_left(keys, key)]
    return True


def _apply_decimal_side(
    changes: Iterable[Sequence[str]], keys: list[Decimal], levels: dict[Decimal, str], ask: bool
) -> None:
    """Apply ``changes`` to one side keyed by Decimals (asks negated exactly)."""
    for level in changes:
        if type(level) is str:
            raise ValueError(f"a level must be [price, size], not {level!r}")
        price, size = level
        key = _price_value(price)
        if ask:
            key = key.copy_negate()
        if _is_live(size):
            if key not in levels:
                insort(keys, key)
            levels[key] = f"{price}\x00{size}"
        elif levels.pop(key, None) is not None:
            del keys[bisect_left(keys, key)]


def _fill_side(
    source: Iterable[Sequence[str]], levels: dict[Any, str], ask: bool, decimal: bool
) -> Any:
    """Replace one side's levels with ``source`` (zero sizes skipped, a repeated price: the
    later wins) and return the side's sorted keys for the mode.

    Returns None (the side half-filled) at the first price without an exact float key.
    """
    levels.clear()
    for level in source:
        if type(level) is str:
            raise ValueError(f"a level must be [price, size], not {level!r}")
        price, size = level
        if decimal:
            key: Any = _price_value(price)
            if ask:
                key = key.copy_negate()
        else:
            key = _fast_key(price)
            if key is None:
                return None
            if ask:
                key = -key
        if 0.0 < float(size) < _INF or (size not in _ZEROS and _is_live(size)):
            if type(price) is not str or type(size) is not str:
                raise _not_strings(level)
            levels[key] = f"{price}\x00{size}"
        else:
            levels.pop(key, None)
    return _new_keys(decimal, sorted(levels))


def _size(level: str) -> str:
    return level.partition(_SEP)[2]


def _export(keys: Iterable[Any], levels: Mapping[Any, str], decimals: bool) -> list[Any]:
    split = (levels[key].partition(_SEP) for key in keys)
    if decimals:
        return [(Decimal(price), Decimal(size)) for price, _, size in split]
    return [(price, size) for price, _, size in split]


class OrderBook:
    """An exact, ordered price-level book: each side maps a price to its size.

    Levels keep Binance's own strings. A side holds a dict from price key to the level's one
    stored string (price and size joined by ``"\\x00"``) and the keys sorted with the best
    price last: floats, or Decimals once a price without an exact float forced Decimal keys
    (see the module docstring). Nothing the book holds per
    level is a container, so the garbage collector never visits a level. Removing a level that
    is not in the book does nothing, as Binance expects (its snapshots are depth-limited).

    Two books are equal when they hold the same prices with the same sizes, compared as
    decimal values (``"1.50"`` equals ``"1.5"``).
    """

    __slots__ = ("_ask_keys", "_asks", "_bid_keys", "_bids", "_decimal")

    def __init__(self) -> None:
        self._bid_keys: Any = _new_keys(False)
        self._ask_keys: Any = _new_keys(False)
        self._bids: dict[Any, str] = {}
        self._asks: dict[Any, str] = {}
        self._decimal = False

    # -- changing

    def replace(self, bids: Iterable[Sequence[str]], asks: Iterable[Sequence[str]]) -> None:
        """Make the book exactly ``bids`` and ``asks`` (a snapshot), in any order.

        Zero sizes are skipped; a price repeated ends at its last size. Raises ``ValueError``
        or ``TypeError`` for a malformed level; the book is then in an unspecified state
        (clear or replace it).
        """
        bids = bids if isinstance(bids, Sequence) else list(bids)
        asks = asks if isinstance(asks, Sequence) else list(asks)
        self._bid_keys = _new_keys(False)  # no best level if a malformed one raises
        self._ask_keys = _new_keys(False)
        for decimal in (False, True):
            self._decimal = decimal
            bid_keys = _fill_side(bids, self._bids, False, decimal)
            ask_keys = None if bid_keys is None else _fill_side(asks, self._asks, True, decimal)
            if ask_keys is not None:
                self._bid_keys = bid_keys
                self._ask_keys = ask_keys
                return

    def apply(self, bids: Sequence[Sequence[str]], asks: Sequence[Sequence[str]]) -> None:
        """Set each ``[price, size]`` level to its absolute size; a zero size removes it.

        Levels are applied in order, so a price repeated in one call ends at its last size.
        Raises ``ValueError`` or ``TypeError`` for a malformed level, with the levels before it
        already applied: a caller that must stay exact discards the book (as
        :class:`DepthSync` does).
        """
        if self._decimal or not _apply_float_side(bids, self._bid_keys, self._bids, False):
            self._use_decimal_keys()
            _apply_decimal_side(bids, self._bid_keys, self._bids, False)
        if self._decimal or not _apply_float_side(asks, self._ask_keys, self._asks, True):
            self._use_decimal_keys()
            _apply_decimal_side(asks, self._ask_keys, self._asks, True)

    def clear(self) -> None:
        """Remove every level (float keys again)."""
        self._bid_keys = _new_keys(False)
        self._ask_keys = _new_keys(False)
        self._bids.clear()
        self._asks.clear()
        self._decimal = False

    def _use_decimal_keys(self) -> None:
        """Re-key both sides by Decimal price; the levels themselves do not change."""
        if self._decimal:
            return
        self._decimal = True
        self._bid_keys = _rekey(self._bids, False)
        self._ask_keys = _rekey(self._asks, True)

    # -- reading

    @property
    def decimal_keys(self) -> bool:
        """Whether a price without an exact float forced Decimal keys (until the next
        :meth:`replace` or :meth:`clear`)."""
        return self._decimal

    @property
    def depth(self) -> tuple[int, int]:
        """How many bid and ask levels the book holds."""
        return len(self._bids), len(self._asks)

    def __len__(self) -> int:
        return len(self._bids) + len(self._asks)

    def best_bid(self) -> Level | None:
        """The highest bid ``(price, size)``, or None when there are no bids."""
        keys = self._bid_keys
        if not keys:
            return None
        price, _, size = self._bids[keys[-1]].partition(_SEP)
        return price, size

    def best_ask(self) -> Level | None:
        """The lowest ask ``(price, size)``, or None when there are no asks."""
        keys = self._ask_keys
        if not keys:
            return None
        price, _, size = self._asks[keys[-1]].partition(_SEP)
        return price, size

    def top(self, n: int, *, decimals: bool = False) -> tuple[list[Any], list[Any]]:
        """The best ``n`` bids and asks, best first, as ``(price, size)`` strings or, with
        ``decimals``, Decimals."""
        if n <= 0:
            return [], []
        return (
            _export(reversed(self._bid_keys[-n:]), self._bids, decimals),
            _export(reversed(self._ask_keys[-n:]), self._asks, decimals),
        )

    def levels(self, *, decimals: bool = False) -> tuple[list[Any], list[Any]]:
        """Every bid and ask, best first, as ``(price, size)`` strings or Decimals."""
        return (
            _export(reversed(self._bid_keys), self._bids, decimals),
            _export(reversed(self._ask_keys), self._asks, decimals),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, OrderBook):
            return NotImplemented
        if self._decimal == other._decimal:
            if self._bid_keys != other._bid_keys or self._ask_keys != other._ask_keys:
                return False
            for mine, theirs in ((self._bids, other._bids), (self._asks, other._asks)):
                for key, level in mine.items():
                    their_level = theirs[key]
                    if level != their_level and Decimal(_size(level)) != Decimal(
                        _size(their_level)
                    ):
                        return False
            return True
        return self.levels(decimals=True) == other.levels(decimals=True)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        bids, asks = self.depth
        return (
            f"OrderBook(bids={bids}, asks={asks}, best_bid={self.best_bid()}, "
            f"best_ask={self.best_ask()})"
        )


def _rekey(levels: dict[Any, str], ask: bool) -> list[Decimal]:
    """Re-key one side's levels in place by Decimal price; returns the side's sorted keys."""
    stored = list(levels.values())
    levels.clear()
    for level in stored:
        key = _price_value(level.partition(_SEP)[0])
        levels[key.copy_negate() if ask else key] = level
    return _new_keys(True, sorted(levels))


# ------------------------------------------------------------------------------ inputs


def _levels(raw: object, field: str, what: str) -> tuple[Level, ...]:
    """The levels of payload field ``field`` (``what``: ``bid`` or ``ask``) as ``(price,
    size)`` string pairs; ``ValueError`` unless it is a list of two-string lists. The strings
    are not read as numbers here: the book does that once, when it applies them."""
    if not isinstance(raw, list):
        raise ValueError(
            f"depth payload field {field!r} must be a list of {what} levels ([price, size] "
            f"strings), not {raw!r:.200}"
        )
    levels = []
    for level in raw:
        if (
            not isinstance(level, list | tuple)
            or len(level) != 2
            or type(level[0]) is not str
            or type(level[1]) is not str
        ):
            raise ValueError(
                f"depth payload field {field!r} holds a level that is not [price, size] "
                f"strings: {level!r:.200}"
            )
        levels.append((level[0], level[1]))
    return tuple(levels)


def _integer(payload: Mapping[str, Any], field: str) -> int:
    value = payload.get(field)
    if type(value) is not int:
        raise ValueError(f"depth payload field {field!r} must be an integer, not {value!r}")
    return value


def _optional_integer(payload: Mapping[str, Any], field: str) -> int | None:
    return None if payload.get(field) is None else _integer(payload, field)


@attrs.frozen(kw_only=True)
class DepthDiff:
    """One diff-depth event (``depthUpdate``) of ``<symbol>@depth``.

    Attributes:
        symbol: ``s``, upper case.
        first_update_id: ``U``, the first update id the diff covers.
        update_id: ``u``, the last.
        previous_update_id: ``pu``, the ``u`` of the stream's previous diff (futures only).
        bids: ``b``: levels with absolute sizes as of ``u``, in Binance's order; size zero
            removes the level.
        asks: ``a``, likewise.
        event_time_ms: ``E``.
        transaction_time_ms: ``T`` (futures only).
    """

    symbol: str
    first_update_id: int
    update_id: int
    previous_update_id: int | None = None
    bids: tuple[Level, ...] = ()
    asks: tuple[Level, ...] = ()
    event_time_ms: int | None = None
    transaction_time_ms: int | None = None

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> DepthDiff:
        """Read a ``depthUpdate`` object (``{"e", "E", "s", "U", "u", "b", "a"}``, futures add
        ``pu`` and ``T``; unknown fields ignored).

        Raises ``ValueError``, naming the field, if it is not one: another ``e``, a missing or
        mistyped ``s``, ``E``, ``U`` or ``u``, ``U`` after ``u``, a ``pu`` or ``T`` that is
        not an integer, or levels that are not a list of ``[price, size]`` strings. The level
        strings are checked as numbers only when the book applies them (see the module
        docstring).
        """
        if payload.get("e") != "depthUpdate":
            raise ValueError(f"not a depthUpdate event: e={payload.get('e')!r}")
        symbol = payload.get("s")
        if type(symbol) is not str:
            raise ValueError(f"depthUpdate without a symbol: s={symbol!r}")
        first = _integer(payload, "U")
        last = _integer(payload, "u")
        if first > last:
            raise ValueError(f"depthUpdate with U {first} after u {last}")
        return cls(
            symbol=symbol,
            first_update_id=first,
            update_id=last,
            previous_update_id=_optional_integer(payload, "pu"),
            bids=_levels(payload.get("b"), "b", "bid"),
            asks=_levels(payload.get("a"), "a", "ask"),
            event_time_ms=_integer(payload, "E"),
            transaction_time_ms=_optional_integer(payload, "T"),
        )


def _json(text: bytes | bytearray | memoryview | str, what: str) -> Any:
    try:
        return _loads(text)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"{what} must be JSON text ({exc}), not {text!r:.200}") from None


def _payload(frame: bytes | bytearray | memoryview | str) -> dict[str, Any]:
    payload = _json(frame, "a depth frame")
    if type(payload) is dict and "data" in payload and "stream" in payload:
        payload = payload["data"]
    if type(payload) is not dict:
        raise ValueError(f"a depth frame must be a JSON object, not {payload!r:.200}")
    return payload


def parse_depth_frame(frame: bytes | bytearray | memoryview | str) -> DepthDiff:
    """Parse a diff-depth frame from a ``/ws`` stream or a ``/stream`` (``{"stream",
    "data"}``) one (:meth:`DepthDiff.from_payload`); ``ValueError`` for anything else."""
    return DepthDiff.from_payload(_payload(frame))


@attrs.frozen(kw_only=True)
class DepthSnapshot:
    """A REST depth snapshot.

    Attributes:
        update_id: ``lastUpdateId``: the book contains every update up to it.
        bids: levels, best first as Binance sends them (order does not matter here).
        asks: likewise.
        event_time_ms: ``E`` (futures only).
        transaction_time_ms: ``T`` (futures only).
    """

    update_id: int
    bids: tuple[Level, ...] = ()
    asks: tuple[Level, ...] = ()
    event_time_ms: int | None = None
    transaction_time_ms: int | None = None

    @property
    def empty(self) -> bool:
        """No bids and no asks: Binance failed to give a book (see the module docstring)."""
        return not self.bids and not self.asks

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> DepthSnapshot:
        """Read a parsed ``GET .../depth`` response body (unknown fields ignored).

        Raises ``ValueError``, naming the field, for a missing or mistyped ``lastUpdateId``,
        an ``E`` or ``T`` that is not an integer, or levels that are not a list of ``[price,
        size]`` strings. As for diffs, the level strings are checked as numbers only when the
        book applies them: a snapshot of thousands of levels is read once, not twice.
        """
        return cls(
            update_id=_integer(payload, "lastUpdateId"),
            bids=_levels(payload.get("bids"), "bids", "bid"),
            asks=_levels(payload.get("asks"), "asks", "ask"),
            event_time_ms=_optional_integer(payload, "E"),
            transaction_time_ms=_optional_integer(payload, "T"),
        )


def parse_depth_snapshot(body: bytes | bytearray | memoryview | str) -> DepthSnapshot:
    """Parse a ``GET /api/v3/depth``, ``/fapi/v1/depth`` or ``/dapi/v1/depth`` response body
    (:meth:`DepthSnapshot.from_payload`); ``ValueError`` for a body that is not one (not JSON,
    not an object, malformed fields)."""
    payload = _json(body, "a depth snapshot")
    if type(payload) is not dict:
        raise ValueError(f"a depth snapshot must be a JSON object, not {payload!r:.200}")
    return DepthSnapshot.from_payload(payload)


# ----------------------------------------------------------------------------- outcomes


@attrs.frozen(kw_only=True)
class Applied:
    """A live diff was applied; the book is now at ``update_id``.

    ``bids`` and ``asks`` are the diff's levels exactly as Binance sent them (``[price,
    size]`` strings in its order, size zero: removed). Read them, never change them.
    """

    first_update_id: int
    update_id: int
    bids: Sequence[Sequence[str]]
    asks: Sequence[Sequence[str]]
    event_time_ms: int | None = None
    transaction_time_ms: int | None = None


@attrs.frozen(kw_only=True)
class Ignored:
    """The input changed nothing: a diff the book or buffer already contains (``update_id``
    at or below ``against``), or a snapshot (or a failed one) after the book was in sync."""

    update_id: int | None
    against: int | None
    reason: str


@attrs.frozen(kw_only=True)
class Buffered:
    """Not in sync: the diff is held for replay after the next snapshot.

    ``buffered`` is how many diffs are held now; ``dropped`` how many held diffs were
    discarded first because this one does not follow them (a diff was lost while waiting, so
    only a snapshot newer than this diff can sync the book).
    """

    first_update_id: int
    update_id: int
    buffered: int
    dropped: int = 0


@attrs.frozen(kw_only=True)
class NeedSnapshot:
    """The book is stale or was never synced: fetch a REST snapshot.

    ``reason`` says why in plain words. ``attempts`` counts the snapshots tried (received or
    failed) since the book was last proven in sync, for the caller's backoff. ``update_id`` is
    the book's id when this call ended a sync, else None.
    """

    reason: str
    attempts: int
    update_id: int | None = None


@attrs.frozen(kw_only=True)
class SnapshotTooOld:
    """The snapshot does not reach the first buffered diff it would have to be followed by
    (``snapshot_update_id`` too far below ``first_update_id``): fetch another one."""

    snapshot_update_id: int
    first_update_id: int
    attempts: int
    reason: str


@attrs.frozen(kw_only=True)
class Synced:
    """The book is in sync at ``update_id``: the snapshot at ``snapshot_update_id`` plus
    ``replayed`` buffered diffs; ``attempts`` snapshots it took."""

    update_id: int
    snapshot_update_id: int
    replayed: int
    attempts: int


DepthOutcome: TypeAlias = Applied | Ignored | Buffered | NeedSnapshot | SnapshotTooOld | Synced


# --------------------------------------------------------------------------------- sync


class SequenceRule(enum.Enum):
    """How a product's depth diffs chain: Spot on ``U == prev_u + 1``, futures (USD-M and
    COIN-M) on ``pu == prev_u``."""

    SPOT = "spot"
    FUTURES = "futures"

    @classmethod
    def for_account(cls, account_type: AccountType) -> SequenceRule:
        return cls.SPOT if account_type is AccountType.SPOT else cls.FUTURES


class SyncState(enum.Enum):
    """``WAITING``: buffering diffs for the first snapshot. ``SYNCED``: the book is exact at
    :attr:`DepthSync.update_id`. ``STALE``: a fault (gap, overflow, failed or empty snapshot,
    stream interruption, malformed diff) emptied the book; buffering for a resync."""

    WAITING = "waiting"
    SYNCED = "synced"
    STALE = "stale"


class DepthSync:
    """Keeps one instrument's :class:`OrderBook` in sync with Binance's depth stream.

    Feed it every diff of ``<symbol>@depth`` (:meth:`apply_frame` or :meth:`apply_diff`),
    every snapshot (:meth:`apply_snapshot`) or failed snapshot request
    (:meth:`snapshot_failed`), and every stream interruption (:meth:`stream_interrupted`);
    each call returns a :data:`DepthOutcome` (see the module docstring for what to do with
    it). :attr:`book` is exact at :attr:`update_id` while :attr:`state` is ``SYNCED``, and
    empty otherwise.

    Args:
        symbol: the instrument's Binance symbol; a diff for another symbol raises ValueError.
        rule: ``SPOT`` or ``FUTURES`` (USD-M and COIN-M).
        max_buffer: most diffs held while waiting for a snapshot.
    """

    __slots__ = (
        "_attempts",
        "_book",
        "_buffer",
        "_expect",
        "_first_pending",
        "_futures",
        "_link",
        "_max_buffer",
        "_proof",
        "_reason",
        "_rule",
        "_state",
        "_symbol",
        "_update_id",
    )

    def __init__(
        self, symbol: str, rule: SequenceRule, *, max_buffer: int = DEFAULT_MAX_BUFFER
    ) -> None:
        if max_buffer < 1:
            raise ValueError(f"max_buffer must be at least 1, not {max_buffer}")
        self._symbol = symbol
        self._rule = rule
        self._futures = rule is SequenceRule.FUTURES
        #: The field that chains a diff to the book: ``pu`` (futures) or ``U`` (Spot).
        self._link = "pu" if self._futures else "U"
        self._max_buffer = max_buffer
        self._book = OrderBook()
        self._buffer: list[DepthDiff] = []
        self._state = SyncState.WAITING
        self._update_id: int | None = None
        #: The value ``_link`` must have for the fast path, or None (not in sync, or no diff
        #: applied since the snapshot: the first one takes the general path).
        self._expect: int | None = None
        self._first_pending = False
        self._attempts = 0
        #: The last proof of a snapshot: (the update ids of the proving diff and of the book
        #: once the sync's replay was applied, the attempts the proof cleared).
        self._proof: tuple[int, int, int] | None = None
        self._reason: str | None = None

    # -- reading

    @property
    def symbol(self) -> str:
        return self._symbol

    @property
    def rule(self) -> SequenceRule:
        return self._rule

    @property
    def state(self) -> SyncState:
        return self._state

    @property
    def book(self) -> OrderBook:
        """The book: exact at :attr:`update_id` while ``SYNCED``, empty otherwise. Read it;
        never change it."""
        return self._book

    @property
    def update_id(self) -> int | None:
        """The update id the book is exact at, or None when not in sync."""
        return self._update_id

    @property
    def attempts(self) -> int:
        """Snapshots tried since the book was last proven in sync (a snapshot is proven by
        the first diff that follows it)."""
        return self._attempts

    @property
    def buffered(self) -> int:
        """How many diffs wait for a snapshot."""
        return len(self._buffer)

    @property
    def reason(self) -> str | None:
        """Why the book is ``STALE`` (the latest fault), else None."""
        return self._reason

    # -- diffs

    def apply_frame(self, frame: bytes | bytearray | memoryview | str) -> DepthOutcome:
        """Apply one raw diff-depth frame (``/ws`` or ``/stream`` form) of this symbol.

        The next diff of an in-sync book is applied straight from orjson's lists; any other
        goes through :meth:`apply_diff`. Raises ``ValueError`` (the book untouched) for a frame
        that is not a well-formed ``depthUpdate`` of this symbol; a lost diff is then caught
        by the next one's chain check. A level that is not a number makes the book stale
        (:class:`NeedSnapshot`).
        """
        payload = _loads(frame)
        if type(payload) is dict and "stream" in payload:
            payload = payload.get("data")
        if (
            type(payload) is not dict
            or payload.get("e") != "depthUpdate"
            or payload.get("s") != self._symbol
        ):
            raise ValueError(f"not a depthUpdate frame of {self._symbol}: {frame!r:.200}")
        expect = self._expect
        if expect is not None and payload.get(self._link) == expect:
            try:
                first = payload["U"]
                last = payload["u"]
                bids = payload["b"]
                asks = payload["a"]
                event_time = payload["E"]
            except KeyError:
                pass  # the general path says what is missing
            else:
                transaction_time = payload.get("T")
                if (
                    type(first) is int
                    and type(last) is int
                    and type(event_time) is int
                    and (transaction_time is None or type(transaction_time) is int)
                    and first <= last
                    and last >= (expect + 1 if self._futures else expect)
                ):
                    try:
                        self._book.apply(bids, asks)
                    except (ValueError, TypeError) as exc:
                        return self._malformed(
                            f"malformed depth diff {first}..{last}: {exc}", self._update_id
                        )
                    self._update_id = last
                    self._expect = last if self._futures else last + 1
                    return Applied(
                        first_update_id=first,
                        update_id=last,
                        bids=bids,
                        asks=asks,
                        event_time_ms=event_time,
                        transaction_time_ms=transaction_time,
                    )
        return self.apply_diff(DepthDiff.from_payload(payload))

    def apply_diff(self, diff: DepthDiff) -> DepthOutcome:
        """Apply, ignore or buffer one parsed diff under the rule (module docstring)."""
        if diff.symbol != self._symbol:
            raise ValueError(f"a depth diff of {diff.symbol} fed to the {self._symbol} book")
        if self._futures and diff.previous_update_id is None:
            raise ValueError("a futures depth diff must carry pu")
        if self._state is SyncState.SYNCED:
            return self._apply_synced(diff)
        return self._hold(diff)

    def _apply_synced(self, diff: DepthDiff) -> DepthOutcome:
        book_id = self._update_id
        assert book_id is not None
        first, last = diff.first_update_id, diff.update_id
        if self._futures:
            previous = diff.previous_update_id
            if self._first_pending:
                if last < book_id:
                    return Ignored(
                        update_id=last,
                        against=book_id,
                        reason=f"diff {first}..{last} ends before the snapshot at {book_id}",
                    )
                if not (first <= book_id <= last or previous == book_id):
                    return self._lose(
                        f"gap: the first diff after the snapshot at {book_id} covers "
                        f"{first}..{last} with pu {previous}",
                        diff,
                    )
            else:
                if last <= book_id:
                    return Ignored(
                        update_id=last,
                        against=book_id,
                        reason=f"diff {first}..{last} is already in the book at {book_id}",
                    )
                if previous != book_id:
                    return self._lose(
                        f"gap: diff {first}..{last} follows pu {previous}, "
                        f"the book is at {book_id}",
                        diff,
                    )
        else:
            if last <= book_id:
                return Ignored(
                    update_id=last,
                    against=book_id,
                    reason=f"diff {first}..{last} is already in the book at {book_id}",
                )
            if first > book_id + 1:
                return self._lose(
                    f"gap: diff {first}..{last} starts after the book at {book_id} + 1", diff
                )
        try:
            self._book.apply(diff.bids, diff.asks)
        except (ValueError, TypeError) as exc:
            return self._malformed(f"malformed depth diff {first}..{last}: {exc}", self._update_id)
        self._update_id = last
        self._expect = last if self._futures else last + 1
        if self._first_pending:
            self._first_pending = False
            self._proof = (last, last, self._attempts)
            self._attempts = 0
        return Applied(
            first_update_id=first,
            update_id=last,
            bids=diff.bids,
            asks=diff.asks,
            event_time_ms=diff.event_time_ms,
            transaction_time_ms=diff.transaction_time_ms,
        )

    def _hold(self, diff: DepthDiff) -> DepthOutcome:
        """Buffer a diff while not in sync, keeping the buffer one unbroken chain."""
        buffer = self._buffer
        dropped = 0
        if buffer:
            tail = buffer[-1].update_id
            if diff.update_id <= tail:
                return Ignored(
                    update_id=diff.update_id,
                    against=tail,
                    reason=(
                        f"diff {diff.first_update_id}..{diff.update_id} is at or before the "
                        f"buffered {tail}"
                    ),
                )
            if self._futures:
                chained = diff.previous_update_id == tail
            else:
                chained = diff.first_update_id <= tail + 1
            if not chained:
                dropped = len(buffer)
                buffer.clear()
        if len(buffer) >= self._max_buffer:
            buffer.clear()
            buffer.append(diff)
            reason = f"buffer overflow: {self._max_buffer} diffs held without a usable snapshot"
            self._state = SyncState.STALE
            self._reason = reason
            return NeedSnapshot(reason=reason, attempts=self._attempts)
        buffer.append(diff)
        return Buffered(
            first_update_id=diff.first_update_id,
            update_id=diff.update_id,
            buffered=len(buffer),
            dropped=dropped,
        )

    def _lose(self, reason: str, diff: DepthDiff | None) -> NeedSnapshot:
        """Discard the book at once; ``diff`` (the one that revealed a gap) starts the buffer."""
        lost = self._update_id
        self._book.clear()
        self._buffer.clear()
        if diff is not None:
            self._buffer.append(diff)
        self._state = SyncState.STALE
        self._update_id = None
        self._expect = None
        self._first_pending = False
        self._reason = reason
        return NeedSnapshot(reason=reason, attempts=self._attempts, update_id=lost)

    # -- snapshots and interruptions

    def apply_snapshot(self, snapshot: DepthSnapshot) -> DepthOutcome:
        """Sync the book from a REST snapshot and the buffered diffs (module docstring).

        Returns :class:`Synced`, :class:`SnapshotTooOld` (the buffer is kept; fetch again),
        :class:`NeedSnapshot` (empty or malformed snapshot, or a gap during replay) or, when
        the book is already in sync, :class:`Ignored`.
        """
        snapshot_id = snapshot.update_id
        if self._state is SyncState.SYNCED:
            return Ignored(
                update_id=snapshot_id,
                against=self._update_id,
                reason="a snapshot arrived while the book is in sync",
            )
        self._attempts += 1
        if snapshot.empty:
            return self._fault(f"empty snapshot at {snapshot_id}: no bids and no asks")
        buffer = self._buffer
        if self._futures:
            keep = next(
                (i for i, diff in enumerate(buffer) if diff.update_id >= snapshot_id),
                len(buffer),
            )
        else:
            keep = next(
                (i for i, diff in enumerate(buffer) if diff.update_id > snapshot_id),
                len(buffer),
            )
        if keep < len(buffer):
            first = buffer[keep]
            if self._futures:
                fits = (
                    first.first_update_id <= snapshot_id <= first.update_id
                    or first.previous_update_id == snapshot_id
                )
            else:
                fits = first.first_update_id <= snapshot_id + 1
            if not fits:
                return SnapshotTooOld(
                    snapshot_update_id=snapshot_id,
                    first_update_id=first.first_update_id,
                    attempts=self._attempts,
                    reason=(
                        f"snapshot at {snapshot_id} does not reach the buffered diff "
                        f"{first.first_update_id}..{first.update_id}"
                    ),
                )
        try:
            self._book.replace(snapshot.bids, snapshot.asks)
        except (ValueError, TypeError) as exc:
            self._book.clear()
            return self._fault(f"malformed snapshot at {snapshot_id}: {exc}")
        replay = buffer[keep:]
        buffer.clear()
        attempts = self._attempts
        self._state = SyncState.SYNCED
        self._reason = None
        self._update_id = snapshot_id
        self._first_pending = True
        self._expect = None
        for index, diff in enumerate(replay):
            outcome = self._apply_synced(diff)
            if isinstance(outcome, NeedSnapshot):
                for later in replay[index + 1 :]:
                    self._hold(later)
                return outcome
        if not self._first_pending and self._proof is not None:  # proven by the replay
            self._proof = (self._proof[0], self._update_id, self._proof[2])
        return Synced(
            update_id=self._update_id,
            snapshot_update_id=snapshot_id,
            replayed=len(replay),
            attempts=attempts,
        )

    def snapshot_failed(self, reason: str) -> NeedSnapshot | Ignored:
        """A snapshot request failed (``reason``: what the caller saw). Counts an attempt."""
        if self._state is SyncState.SYNCED:
            return Ignored(
                update_id=None,
                against=self._update_id,
                reason=f"a snapshot failed while the book is in sync: {reason}",
            )
        self._attempts += 1
        return self._fault(f"snapshot failed: {reason}")

    def stream_interrupted(self, reason: str) -> NeedSnapshot:
        """The stream reconnected or lost frames: discard the book and the buffer."""
        return self._lose(f"stream interrupted: {reason}", None)

    def discard(self, reason: str, *, published: int | None = None) -> NeedSnapshot:
        """The caller cannot use the book (say a level it applied is not in Binance's
        notation): discard the book and the buffer, as for a malformed level. ``published``:
        the update id the caller's published book was at before the level it refused (the
        book's own id when None)."""
        return self._malformed(reason, self._update_id if published is None else published)

    def _malformed(self, reason: str, at: int | None) -> NeedSnapshot:
        """Lose the book over a level that cannot be used. When the usable book (at ``at``)
        had not moved past the diffs that proved the last snapshot (the proving diff, or the
        end of the sync's replay), that proof did not hold: the attempts it cleared count
        again, so a venue whose every resync ends on such a level meets a growing backoff,
        not a snapshot loop. Otherwise the fault counts as one attempt (a backoff, not an
        immediate snapshot)."""
        proof = self._proof
        if proof is not None and at is not None and at in (proof[0], proof[1]):
            self._attempts = max(self._attempts, proof[2])
        else:
            self._attempts += 1
        return self._lose(reason, None)

    def _fault(self, reason: str) -> NeedSnapshot:
        """A snapshot fault while not in sync: the buffer stays, the book stays empty."""
        self._state = SyncState.STALE
        self._reason = reason
        return NeedSnapshot(reason=reason, attempts=self._attempts)

    def __repr__(self) -> str:
        return (
            f"DepthSync({self._symbol!r}, {self._rule.name}, state={self._state.name}, "
            f"update_id={self._update_id}, buffered={len(self._buffer)})"
        )
