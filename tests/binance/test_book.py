"""The exact order book, Binance's depth sequencing rules and the parsers of diff-depth events
and REST depth snapshots, tern's only ones (actors/binance/book.py): against every depth
fixture, the local venue's payloads, malformed and random ones.

The model-based tests build a true history of one book at the granularity of single update
ids, cut it into diffs as Binance does (Spot: contiguous ``U``..``u``; futures: ``pu`` chains
with unused ids between diffs), deliver the diffs with losses, duplicates, swaps, merges,
snapshots at every interesting id, empty and failed snapshots and reconnects, and check after
every step that a book that says it is in sync equals the true book at its update id.
"""

from __future__ import annotations

import csv
import gc
import math
import os
import string
import sys
from decimal import Decimal
from pathlib import Path
from typing import NamedTuple

import attrs
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.binance.book import (
    Applied,
    Buffered,
    DepthDiff,
    DepthSnapshot,
    DepthSync,
    Ignored,
    NeedSnapshot,
    OrderBook,
    SequenceRule,
    SnapshotTooOld,
    Synced,
    SyncState,
    float_key,
    parse_depth_frame,
    parse_depth_snapshot,
)
from actors.config import AccountType
from scenarios.venue import payloads

SPOT = SequenceRule.SPOT
FUTURES = SequenceRule.FUTURES
FIXTURES = Path(
    os.environ.get(
        "TERN_BINANCE_FIXTURES",
        Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "binance",
    )
)


def d(text: str) -> Decimal:
    return Decimal(text)


def diff(first, last, bids=(), asks=(), *, pu=None, symbol="BTCUSDT") -> DepthDiff:
    return DepthDiff(
        symbol=symbol,
        first_update_id=first,
        update_id=last,
        previous_update_id=pu,
        bids=tuple(bids),
        asks=tuple(asks),
        event_time_ms=1,
    )


def frame(first, last, bids=(), asks=(), *, pu=None, symbol="BTCUSDT", wrap=False) -> bytes:
    payload = {
        "e": "depthUpdate",
        "E": 1,
        "s": symbol,
        "U": first,
        "u": last,
        "b": [list(level) for level in bids],
        "a": [list(level) for level in asks],
    }
    if pu is not None:
        payload |= {"T": 1, "pu": pu}
    if wrap:
        payload = {"stream": f"{symbol.lower()}@depth@100ms", "data": payload}
    return orjson.dumps(payload)


def snapshot(update_id, bids=(("10.0", "1"),), asks=(("11.0", "1"),)) -> DepthSnapshot:
    return DepthSnapshot(update_id=update_id, bids=tuple(bids), asks=tuple(asks))


def decimals(levels) -> list[tuple[Decimal, Decimal]]:
    return [(Decimal(p), Decimal(q)) for p, q in levels]


# ------------------------------------------------------------------------------ the book


def test_levels_are_kept_exactly_and_in_order() -> None:
    book = OrderBook()
    book.replace(
        [("100.10", "1.000"), ("100.30", "0.500"), ("100.20", "2.0")],
        [("100.50", "1"), ("100.40", "3.25")],
    )
    assert book.best_bid() == ("100.30", "0.500")
    assert book.best_ask() == ("100.40", "3.25")
    assert book.depth == (3, 2)
    assert len(book) == 5
    assert book.levels() == (
        [("100.30", "0.500"), ("100.20", "2.0"), ("100.10", "1.000")],
        [("100.40", "3.25"), ("100.50", "1")],
    )
    assert book.top(2) == (
        [("100.30", "0.500"), ("100.20", "2.0")],
        [("100.40", "3.25"), ("100.50", "1")],
    )
    assert book.top(1, decimals=True) == ([(d("100.30"), d("0.5"))], [(d("100.4"), d("3.25"))])
    assert book.top(0) == ([], [])
    assert book.top(100) == book.levels()


def test_any_zero_spelling_removes_and_unknown_removals_are_normal() -> None:
    book = OrderBook()
    book.replace([("1.0", "1"), ("2.0", "1"), ("3.0", "1"), ("4.0", "1")], [("5.0", "1")])
    book.apply([("1.0", "0"), ("2.0", "0.000"), ("3.0", "0E-8"), ("9.0", "0.00000000")], [])
    assert book.levels() == ([("4.0", "1")], [("5.0", "1")])
    book.apply([("4.00", "00.0")], [("7.0", "0")])
    assert book.levels() == ([], [("5.0", "1")])
    assert book.best_bid() is None


def test_a_price_is_one_level_however_it_is_spelled() -> None:
    book = OrderBook()
    book.replace([("100.50", "1")], [])
    book.apply([("100.5", "2"), ("100.500000", "3")], [])
    assert book.levels() == ([("100.500000", "3")], [])
    book.apply([("100.50", "0")], [])
    assert book.depth == (0, 0)


def test_later_levels_win_within_one_change() -> None:
    book = OrderBook()
    book.apply([("1.0", "1"), ("1.0", "0"), ("2.0", "1"), ("2.0", "5")], [])
    assert book.levels() == ([("2.0", "5")], [])


def test_books_compare_by_value() -> None:
    left, right = OrderBook(), OrderBook()
    left.replace([("1.50", "2.0")], [("2.0", "1")])
    right.replace([("1.5", "2")], [("2.00", "1.000")])
    assert left == right
    right.apply([("1.4", "1")], [])
    assert left != right
    right.apply([("1.4", "0")], [("2", "3")])
    assert left != right
    assert left != "a book"


def test_imprecise_prices_fall_back_to_decimal_keys() -> None:
    """1.0000000000000001 and 1.0000000000000002 are the same float: the book must notice."""
    book = OrderBook()
    book.replace([("1", "1"), ("0.9", "1")], [("3", "1")])
    assert not book.decimal_keys
    book.apply([("1.0000000000000001", "2"), ("1.0000000000000002", "3")], [("2.5", "1")])
    assert book.decimal_keys
    assert book.levels() == (
        [("1.0000000000000002", "3"), ("1.0000000000000001", "2"), ("1", "1"), ("0.9", "1")],
        [("2.5", "1"), ("3", "1")],
    )
    book.apply([("1.0000000000000001", "0")], [("2.50", "0")])
    assert book.levels() == (
        [("1.0000000000000002", "3"), ("1", "1"), ("0.9", "1")],
        [("3", "1")],
    )
    reference = OrderBook()
    reference.replace([("0.9", "1"), ("1.00", "1"), ("1.0000000000000002", "3")], [("3", "1")])
    assert book == reference
    assert reference == book
    book.replace([("1", "1")], [("2", "1")])
    assert not book.decimal_keys


def test_prices_beyond_the_double_range_are_exact_too() -> None:
    book = OrderBook()
    book.replace(
        [("1e-400", "1"), ("2e-400", "1"), ("1e-310", "1")], [("1e400", "1"), ("1E+16", "1")]
    )
    assert book.decimal_keys
    assert book.levels() == (
        [("1e-310", "1"), ("2e-400", "1"), ("1e-400", "1")],
        [("1E+16", "1"), ("1e400", "1")],
    )


@pytest.mark.parametrize(
    ("bids", "asks"),
    [
        ([("abc", "1")], []),
        ([("1.0", "-1")], []),
        ([("-1.0", "1")], []),
        ([("0", "1")], []),
        ([("nan", "1")], []),
        ([], [("inf", "1")]),
        ([("1.0", "nan")], []),
        ([("1.0", "1", "2")], []),
    ],
)
def test_malformed_levels_raise(bids, asks) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        OrderBook().apply(bids, asks)
    with pytest.raises(ValueError):  # noqa: PT011
        OrderBook().replace(bids, asks)


@pytest.mark.parametrize(
    ("bids", "asks"),
    [
        ([("1.0", 1)], []),
        ([], [("1.0", 2.5)]),
        ([("1.0", True)], []),
        ([(b"1.0", "1")], []),
        ([], [(bytearray(b"1.0"), "1")]),
    ],
)
def test_levels_that_are_not_strings_are_refused(bids, asks) -> None:
    """``float()`` takes ``1`` and ``b"1"``; the book keeps strings only, as the parsers do."""
    with pytest.raises(ValueError, match="strings"):
        OrderBook().apply(bids, asks)
    with pytest.raises(ValueError, match="strings"):
        OrderBook().replace(bids, asks)
    book = OrderBook()
    book.apply([("1.0000000000000001", "1")], [])  # Decimal keys
    with pytest.raises(ValueError, match="string"):
        book.apply(bids, asks)


def test_the_book_keeps_no_reference_to_the_levels_it_was_given() -> None:
    bid, ask = ["100.0", "1.5"], ["101.0", "2"]
    book = OrderBook()
    book.replace([bid], [ask])
    bid[1], ask[1] = "9", "9"
    assert book.levels() == ([("100.0", "1.5")], [("101.0", "2")])
    change = ["100.0", "3"]
    book.apply([change], [])
    change[1] = "0"
    assert book.best_bid() == ("100.0", "3")


def _tracked_from(root: object) -> list[object]:
    """Every object reachable from ``root`` that the garbage collector tracks (types aside)."""
    seen = {id(root)}
    stack = [root]
    tracked = []
    while stack:
        obj = stack.pop()
        if gc.is_tracked(obj):
            tracked.append(obj)
        for ref in gc.get_referents(obj):
            if not isinstance(ref, type) and id(ref) not in seen:
                seen.add(id(ref))
                stack.append(ref)
    return tracked


def _deep_sync(levels: int) -> DepthSync:
    """A synced USD-M book ``levels`` deep a side, moved by live frames (the fast path)."""
    sync = DepthSync("BTCUSDT", FUTURES)
    sync.apply_snapshot(
        DepthSnapshot(
            update_id=10,
            bids=tuple((f"{50_000 - i}.10", f"{i + 1}.000") for i in range(levels)),
            asks=tuple((f"{50_001 + i}.20", f"{i + 1}.500") for i in range(levels)),
        )
    )
    previous = 10
    for n in range(40):
        bids = [[f"{50_000 - 3 * n}.10", "0.000"], [f"{49_000 - n}.15", "7.250"]]
        asks = [[f"{50_001 + 2 * n}.20", f"{n}.125"], [f"{50_100 + n}.25", "1.000"]]
        outcome = sync.apply_frame(frame(previous + 1, previous + 3, bids, asks, pu=previous))
        assert isinstance(outcome, Applied)
        previous += 3
    assert sync.state is SyncState.SYNCED
    return sync


@pytest.mark.parametrize("decimal", [False, True])
def test_the_collector_never_visits_a_level(decimal) -> None:
    """Nothing the book holds per level is a tracked object, however deep the book: a full
    collection does not walk a book level by level (no gc.collect() first: it is so from the
    start, not once the collector has untracked something)."""
    shallow, deep = _deep_sync(50).book, _deep_sync(3000).book
    if decimal:
        for book in (shallow, deep):
            book.apply([("1.0000000000000001", "1")], [])
            assert book.decimal_keys
    assert len(deep) > 6000
    for book in (shallow, deep):
        tracked = _tracked_from(book)
        assert tracked[0] is book
        assert len(tracked) <= 3  # the book and, at most, each side's sorted keys
        for container in tracked[1:]:
            referents = [ref for ref in gc.get_referents(container) if not isinstance(ref, type)]
            assert not any(gc.is_tracked(ref) for ref in referents)  # floats or Decimals
    assert len(_tracked_from(deep)) == len(_tracked_from(shallow))


def test_clearing_a_decimal_keyed_book_returns_to_float_keys() -> None:
    book = OrderBook()
    book.apply([("1.0000000000000001", "1"), ("2", "1")], [("3", "1")])
    assert book.decimal_keys
    book.clear()
    assert not book.decimal_keys
    assert book.levels() == ([], [])
    book.apply([("1.5", "1"), ("1.25", "2")], [("3", "1"), ("2.75", "4")])
    assert not book.decimal_keys
    assert book.levels() == ([("1.5", "1"), ("1.25", "2")], [("2.75", "4"), ("3", "1")])
    other = OrderBook()
    other.replace([("1.50", "1.0"), ("1.25", "2")], [("2.75", "4"), ("3.0", "1")])
    assert book == other


@st.composite
def short_decimals(draw, max_digits=15) -> Decimal:
    """A positive decimal of at most ``max_digits`` significant digits, at any plausible scale."""
    digits = draw(st.integers(1, 10**max_digits - 1))
    exponent = draw(st.integers(-30, 20))
    return Decimal(digits).scaleb(exponent)


@settings(max_examples=400, deadline=None)
@given(short_decimals(), short_decimals())
def test_floats_of_15_digit_prices_are_exact(left, right) -> None:
    """DBL_DIG is 15: floats of such decimals are injective and monotonic, so comparing the
    floats compares the prices."""
    for value in (left, right):
        assert float_key(str(value)) == float(value)
        assert Decimal(repr(float(value))) == value
    assert (float(left) < float(right)) == (left < right)
    assert (float(left) == float(right)) == (left == right)


@settings(max_examples=400, deadline=None)
@given(st.from_regex(r"[0-9]{1,9}(\.[0-9]{1,9})?", fullmatch=True))
def test_the_hot_loop_shortcut_is_exact(text) -> None:
    """The hot loop trusts a price of at most 15 characters whose float is a normal double
    (at most 15 digits: within DBL_DIG); the full test agrees on every such price."""
    value = Decimal(text)
    if len(text) <= 15 and value > 0 and sys.float_info.min <= float(text) < math.inf:
        assert Decimal(repr(float(text))) == value
        assert float_key(text) == float(text)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.one_of(short_decimals(max_digits=20), short_decimals(max_digits=4)),
            st.sampled_from(["plain", "exp", "padded"]),
            st.sampled_from(["1", "0.5", "0", "0.000"]),
        ),
        max_size=40,
    )
)
def test_the_book_orders_any_prices_exactly(changes) -> None:
    """Whatever the prices (float keys or the Decimal fallback), the book is the exact one."""

    def spell(value: Decimal, how: str) -> str:
        if how == "exp":
            return f"{value:E}"
        if how == "padded":
            return f"{value:f}" + ("0" if "." in f"{value:f}" else ".0")
        return f"{value:f}"

    book = OrderBook()
    expected: dict[Decimal, Decimal] = {}
    for value, how, size in changes:
        book.apply([(spell(value, how), size)], [(spell(value, how), size)])
        if Decimal(size):
            expected[value] = Decimal(size)
        else:
            expected.pop(value, None)
    bids, asks = book.levels(decimals=True)
    assert bids == sorted(expected.items(), reverse=True)
    assert asks == sorted(expected.items())


# ---------------------------------------------------------------------------- Spot rules


def synced_spot(update_id=100) -> DepthSync:
    sync = DepthSync("BTCUSDT", SPOT)
    assert isinstance(sync.apply_snapshot(snapshot(update_id)), Synced)
    return sync


def test_spot_snapshot_exactly_between_two_events_is_continuous() -> None:
    """§8.1: the first applied event satisfies U <= lastUpdateId + 1 <= u, boundary included."""
    sync = DepthSync("BTCUSDT", SPOT)
    assert sync.state is SyncState.WAITING
    assert sync.apply_diff(diff(101, 105, [("10.0", "2")])) == Buffered(
        first_update_id=101, update_id=105, buffered=1
    )
    outcome = sync.apply_snapshot(snapshot(100))
    assert outcome == Synced(update_id=105, snapshot_update_id=100, replayed=1, attempts=1)
    assert sync.state is SyncState.SYNCED
    assert sync.update_id == 105
    assert sync.book.levels() == ([("10.0", "2")], [("11.0", "1")])


def test_spot_snapshot_inside_the_first_event() -> None:
    sync = DepthSync("BTCUSDT", SPOT)
    sync.apply_diff(diff(101, 105, [("10.0", "2")]))
    sync.apply_diff(diff(106, 110, [("10.5", "1")]))
    assert sync.apply_snapshot(snapshot(103)) == Synced(
        update_id=110, snapshot_update_id=103, replayed=2, attempts=1
    )


def test_spot_snapshot_before_the_first_buffered_event_is_too_old() -> None:
    """Step 3: lastUpdateId + 1 < first U means the snapshot cannot reach the buffer."""
    sync = DepthSync("BTCUSDT", SPOT)
    sync.apply_diff(diff(101, 105))
    outcome = sync.apply_snapshot(snapshot(99))
    assert isinstance(outcome, SnapshotTooOld)
    assert (outcome.snapshot_update_id, outcome.first_update_id, outcome.attempts) == (99, 101, 1)
    assert sync.state is SyncState.WAITING
    assert sync.buffered == 1
    assert len(sync.book) == 0
    assert sync.apply_snapshot(snapshot(100)) == Synced(
        update_id=105, snapshot_update_id=100, replayed=1, attempts=2
    )
    assert sync.attempts == 0  # the replayed event proved the snapshot


def test_spot_drops_buffered_events_the_snapshot_contains() -> None:
    sync = DepthSync("BTCUSDT", SPOT)
    sync.apply_diff(diff(101, 105, [("10.0", "5")]))
    sync.apply_diff(diff(106, 110, [("10.5", "1")]))
    assert sync.apply_snapshot(snapshot(105)).replayed == 1
    assert sync.book.levels() == ([("10.5", "1"), ("10.0", "1")], [("11.0", "1")])

    newer = DepthSync("BTCUSDT", SPOT)
    newer.apply_diff(diff(101, 105))
    assert newer.apply_snapshot(snapshot(120)) == Synced(
        update_id=120, snapshot_update_id=120, replayed=0, attempts=1
    )
    assert newer.attempts == 1  # not proven until an event follows it
    assert isinstance(newer.apply_diff(diff(106, 110)), Ignored)
    assert isinstance(newer.apply_frame(frame(121, 125)), Applied)
    assert newer.attempts == 0


def test_spot_gap_discards_the_book_and_applies_nothing_until_resynced() -> None:
    sync = DepthSync("BTCUSDT", SPOT)
    sync.apply_diff(diff(101, 105))
    sync.apply_snapshot(snapshot(100))
    outcome = sync.apply_frame(frame(107, 110, [("10.0", "9")]))
    assert isinstance(outcome, NeedSnapshot)
    assert outcome.update_id == 105
    assert "gap" in outcome.reason
    assert sync.state is SyncState.STALE
    assert sync.reason == outcome.reason
    assert len(sync.book) == 0
    assert sync.update_id is None
    # The event that showed the gap starts the new buffer; nothing is applied.
    assert sync.buffered == 1
    assert isinstance(sync.apply_frame(frame(111, 115)), Buffered)
    assert isinstance(sync.apply_frame(frame(116, 120)), Buffered)
    assert isinstance(sync.apply_snapshot(snapshot(105)), SnapshotTooOld)
    assert sync.apply_snapshot(snapshot(112)) == Synced(
        update_id=120, snapshot_update_id=112, replayed=2, attempts=2
    )


def test_spot_duplicates_and_late_events_are_ignored() -> None:
    sync = synced_spot(100)
    assert isinstance(sync.apply_frame(frame(101, 105, [("10.0", "2")])), Applied)
    before = sync.book.levels()
    duplicate = sync.apply_frame(frame(101, 105, [("10.0", "7")]))
    assert duplicate == Ignored(
        update_id=105, against=105, reason="diff 101..105 is already in the book at 105"
    )
    assert isinstance(sync.apply_diff(diff(90, 100, [("10.0", "7")])), Ignored)
    assert sync.book.levels() == before
    assert sync.update_id == 105


def test_spot_reordered_events_are_a_gap() -> None:
    sync = synced_spot(100)
    sync.apply_frame(frame(101, 105))
    assert isinstance(sync.apply_frame(frame(111, 115)), NeedSnapshot)
    assert isinstance(sync.apply_frame(frame(106, 110)), Ignored)  # older than the buffer
    assert sync.buffered == 1


def test_spot_overlapping_event_is_applied() -> None:
    """Step 6 only calls U > book + 1 a gap; sizes are absolute, so an overlap is exact."""
    sync = synced_spot(100)
    sync.apply_frame(frame(101, 110))
    outcome = sync.apply_frame(frame(108, 115, [("10.0", "3")]))
    assert isinstance(outcome, Applied)
    assert outcome.update_id == 115


def test_spot_continuous_events_take_the_fast_path() -> None:
    sync = synced_spot(100)
    for first in range(101, 200, 3):
        outcome = sync.apply_frame(frame(first, first + 2, [("10.0", str(first))], [("11.0", "0")]))
        assert isinstance(outcome, Applied)
        assert [list(level) for level in outcome.bids] == [["10.0", str(first)]]
        # After the first diff the levels come straight from orjson's lists.
        assert isinstance(outcome.bids, tuple if first == 101 else list)
    assert sync.update_id == 199
    assert sync.book.levels() == ([("10.0", "197")], [])


# ------------------------------------------------------------------------- futures rules


def test_futures_first_event_straddles_the_snapshot() -> None:
    """§8.2 step 4: U <= lastUpdateId <= u."""
    sync = DepthSync("BTCUSDT", FUTURES)
    sync.apply_diff(diff(101, 110, [("10.0", "2")], pu=95))
    assert sync.apply_snapshot(snapshot(105)) == Synced(
        update_id=110, snapshot_update_id=105, replayed=1, attempts=1
    )


def test_futures_event_ending_at_the_snapshot_is_kept() -> None:
    """Step 3 drops only u < lastUpdateId: an event with u == lastUpdateId is applied."""
    sync = DepthSync("BTCUSDT", FUTURES)
    sync.apply_diff(diff(101, 110, [("10.0", "2")], pu=95))
    sync.apply_diff(diff(113, 120, [("10.5", "1")], pu=110))
    assert sync.apply_snapshot(snapshot(110)) == Synced(
        update_id=120, snapshot_update_id=110, replayed=2, attempts=1
    )
    assert sync.book.levels() == ([("10.5", "1"), ("10.0", "2")], [("11.0", "1")])


def test_futures_snapshot_between_two_events_chains_on_pu() -> None:
    """The boundary case: U > lastUpdateId but pu == lastUpdateId is continuous."""
    sync = DepthSync("BTCUSDT", FUTURES)
    sync.apply_diff(diff(101, 110, pu=95))
    sync.apply_diff(diff(113, 120, [("10.5", "1")], pu=110))
    assert sync.apply_snapshot(snapshot(110)).replayed == 2
    # The same boundary with the older event already gone from the buffer:
    later = DepthSync("BTCUSDT", FUTURES)
    later.apply_diff(diff(113, 120, [("10.5", "1")], pu=110))
    assert later.apply_snapshot(snapshot(110)) == Synced(
        update_id=120, snapshot_update_id=110, replayed=1, attempts=1
    )
    # And live, after a snapshot newer than the buffer:
    live = DepthSync("BTCUSDT", FUTURES)
    live.apply_snapshot(snapshot(110))
    assert isinstance(live.apply_frame(frame(113, 120, pu=110)), Applied)


def test_futures_snapshot_that_reaches_no_event_is_too_old() -> None:
    sync = DepthSync("BTCUSDT", FUTURES)
    sync.apply_diff(diff(101, 110, pu=95))
    sync.apply_diff(diff(113, 120, pu=110))
    assert isinstance(sync.apply_snapshot(snapshot(99)), SnapshotTooOld)
    # An id between two events (after pu, before U) is not one the rules accept either.
    outcome = sync.apply_snapshot(snapshot(111))
    assert isinstance(outcome, SnapshotTooOld)
    assert outcome.first_update_id == 113
    assert sync.apply_snapshot(snapshot(115)) == Synced(
        update_id=120, snapshot_update_id=115, replayed=1, attempts=3
    )


def test_futures_first_live_event_must_fit_the_snapshot() -> None:
    sync = DepthSync("BTCUSDT", FUTURES)
    sync.apply_snapshot(snapshot(110))
    assert isinstance(sync.apply_frame(frame(101, 109, pu=95)), Ignored)
    assert isinstance(sync.apply_frame(frame(105, 110, pu=95)), Applied)  # u == lastUpdateId
    sync2 = DepthSync("BTCUSDT", FUTURES)
    sync2.apply_snapshot(snapshot(110))
    assert isinstance(sync2.apply_frame(frame(113, 120, pu=111)), NeedSnapshot)


def test_futures_chain_on_pu_for_the_life_of_the_stream() -> None:
    sync = DepthSync("BTCUSDT", FUTURES)
    sync.apply_snapshot(snapshot(100))
    assert isinstance(sync.apply_frame(frame(98, 105, pu=97)), Applied)
    # Futures ids are not contiguous: U may jump, pu is what chains.
    assert isinstance(sync.apply_frame(frame(150, 160, pu=105)), Applied)
    assert isinstance(sync.apply_frame(frame(150, 160, pu=105)), Ignored)  # duplicate
    outcome = sync.apply_frame(frame(171, 180, [("10.0", "5")], pu=170))
    assert isinstance(outcome, NeedSnapshot)
    assert outcome.update_id == 160
    assert sync.state is SyncState.STALE
    assert len(sync.book) == 0
    assert isinstance(sync.apply_frame(frame(181, 190, pu=180)), Buffered)
    assert isinstance(sync.apply_frame(frame(195, 199, pu=190)), Buffered)
    assert sync.apply_snapshot(snapshot(185)) == Synced(
        update_id=199, snapshot_update_id=185, replayed=2, attempts=1
    )


def test_futures_diff_without_pu_is_refused() -> None:
    sync = DepthSync("BTCUSDT", FUTURES)
    with pytest.raises(ValueError, match="pu"):
        sync.apply_frame(frame(1, 2))


def test_rule_per_account_type() -> None:
    assert SequenceRule.for_account(AccountType.SPOT) is SPOT
    assert SequenceRule.for_account(AccountType.USDT_FUTURES) is FUTURES
    assert SequenceRule.for_account(AccountType.COIN_FUTURES) is FUTURES


# ------------------------------------------------------------------------ faults, inputs


@pytest.mark.parametrize("rule", [SPOT, FUTURES])
def test_an_empty_snapshot_is_a_failure_but_one_empty_side_is_a_book(rule) -> None:
    sync = DepthSync("BTCUSDT", rule)
    outcome = sync.apply_snapshot(snapshot(100, bids=(), asks=()))
    assert outcome == NeedSnapshot(reason="empty snapshot at 100: no bids and no asks", attempts=1)
    assert sync.state is SyncState.STALE
    assert isinstance(sync.snapshot_failed("HTTP 503"), NeedSnapshot)
    assert sync.reason == "snapshot failed: HTTP 503"
    outcome = sync.apply_snapshot(snapshot(100, asks=()))
    assert outcome == Synced(update_id=100, snapshot_update_id=100, replayed=0, attempts=3)
    assert sync.book.levels() == ([("10.0", "1")], [])
    assert sync.reason is None


def test_failed_snapshots_count_attempts_until_proven() -> None:
    sync = DepthSync("BTCUSDT", SPOT)
    assert sync.snapshot_failed("timeout") == NeedSnapshot(
        reason="snapshot failed: timeout", attempts=1
    )
    assert sync.snapshot_failed("HTTP 429").attempts == 2
    sync.apply_snapshot(snapshot(100))
    assert sync.attempts == 3
    # A gap before any event proved the snapshot keeps counting (the caller backs off).
    assert sync.apply_frame(frame(105, 106)).attempts == 3
    assert sync.apply_snapshot(snapshot(104)).attempts == 4
    assert sync.attempts == 0
    assert isinstance(sync.snapshot_failed("late"), Ignored)
    assert isinstance(sync.apply_snapshot(snapshot(200)), Ignored)
    assert sync.update_id == 106


def test_a_stream_interruption_discards_book_and_buffer() -> None:
    sync = synced_spot(100)
    sync.apply_frame(frame(101, 105))
    outcome = sync.stream_interrupted("reconnected")
    assert outcome == NeedSnapshot(
        reason="stream interrupted: reconnected", attempts=0, update_id=105
    )
    assert sync.state is SyncState.STALE
    assert len(sync.book) == 0
    assert sync.buffered == 0
    sync.apply_frame(frame(110, 115))
    assert sync.stream_interrupted("again").update_id is None
    assert sync.buffered == 0


def test_buffer_overflow_makes_the_book_stale() -> None:
    sync = DepthSync("BTCUSDT", FUTURES, max_buffer=3)
    for first in (1, 11, 21):
        assert isinstance(sync.apply_diff(diff(first, first + 9, pu=first - 1)), Buffered)
    outcome = sync.apply_diff(diff(31, 40, pu=30))
    assert isinstance(outcome, NeedSnapshot)
    assert "overflow" in outcome.reason
    assert sync.state is SyncState.STALE
    assert sync.buffered == 1
    assert sync.apply_snapshot(snapshot(35)).update_id == 40
    with pytest.raises(ValueError, match="max_buffer"):
        DepthSync("BTCUSDT", SPOT, max_buffer=0)


def test_a_gap_while_buffering_restarts_the_buffer() -> None:
    sync = DepthSync("BTCUSDT", SPOT)
    sync.apply_diff(diff(1, 5))
    sync.apply_diff(diff(6, 9))
    assert sync.apply_diff(diff(20, 25)) == Buffered(
        first_update_id=20, update_id=25, buffered=1, dropped=2
    )
    assert isinstance(sync.apply_diff(diff(3, 9)), Ignored)
    assert isinstance(sync.apply_snapshot(snapshot(9)), SnapshotTooOld)


def test_frames_of_another_symbol_or_kind_are_refused() -> None:
    sync = synced_spot(100)
    with pytest.raises(ValueError, match="depthUpdate"):
        sync.apply_frame(frame(101, 105, symbol="ETHUSDT"))
    with pytest.raises(ValueError, match="depthUpdate"):
        sync.apply_frame(b'{"result":null,"id":1}')
    with pytest.raises(ValueError, match="depthUpdate"):
        sync.apply_frame(b"[1, 2]")
    with pytest.raises(ValueError):  # noqa: PT011
        sync.apply_frame(b"not json")
    with pytest.raises(ValueError, match="ETHUSDT"):
        sync.apply_diff(diff(101, 105, symbol="ETHUSDT"))
    with pytest.raises(ValueError, match="U 106 after u 105"):
        sync.apply_frame(frame(106, 105))
    assert sync.update_id == 100
    assert sync.state is SyncState.SYNCED
    assert isinstance(sync.apply_frame(frame(101, 105, wrap=True)), Applied)


def test_a_malformed_level_makes_the_book_stale() -> None:
    sync = synced_spot(100)
    outcome = sync.apply_frame(frame(101, 105, [("10.0", "2"), ("abc", "1")]))
    assert isinstance(outcome, NeedSnapshot)
    assert "malformed" in outcome.reason
    assert len(sync.book) == 0
    assert sync.buffered == 0
    sync = synced_spot(100)
    sync.apply_frame(frame(101, 105))
    outcome = sync.apply_diff(diff(106, 110, [("10.0", "-1")]))
    assert isinstance(outcome, NeedSnapshot)
    assert len(sync.book) == 0
    sync = synced_spot(100)
    sync.apply_frame(frame(101, 105))
    outcome = sync.apply_frame(frame(106, 110, [], [("11.0", "nan")]))  # the fast path
    assert isinstance(outcome, NeedSnapshot)
    assert outcome.update_id == 105
    assert len(sync.book) == 0
    assert sync.state is SyncState.STALE


# --------------------------------------------------------------------------------- parsing
#
# DepthDiff.from_payload (parse_depth_frame) and DepthSnapshot.from_payload
# (parse_depth_snapshot) are the only readers of diff-depth events and REST depth snapshots.
# They check shapes; a level's numbers are checked once, when the book applies it.

DIFF = {"e": "depthUpdate", "E": 1, "s": "BTCUSDT", "U": 1, "u": 2, "b": [], "a": []}
SNAPSHOT = {"lastUpdateId": 2, "bids": [["10.0", "1"]], "asks": [["11.0", "1"]]}


def without(payload: dict, key: str) -> dict:
    return {name: value for name, value in payload.items() if name != key}


@pytest.mark.parametrize(
    ("payload", "complaint"),
    [
        (without(DIFF, "e"), "not a depthUpdate event: e=None"),
        ({**DIFF, "e": "trade"}, "not a depthUpdate event: e='trade'"),
        (without(DIFF, "s"), "without a symbol: s=None"),
        ({**DIFF, "s": 5}, "without a symbol: s=5"),
        (without(DIFF, "U"), "field 'U' must be an integer, not None"),
        (without(DIFF, "u"), "field 'u' must be an integer, not None"),
        ({**DIFF, "U": "1"}, "field 'U' must be an integer, not '1'"),
        ({**DIFF, "u": 2.0}, "field 'u' must be an integer, not 2.0"),
        ({**DIFF, "U": True}, "field 'U' must be an integer, not True"),
        ({**DIFF, "U": 3}, "U 3 after u 2"),
        (without(DIFF, "E"), "field 'E' must be an integer, not None"),
        ({**DIFF, "E": "now"}, "field 'E' must be an integer, not 'now'"),
        ({**DIFF, "pu": "1"}, "field 'pu' must be an integer"),
        ({**DIFF, "T": 1.5}, "field 'T' must be an integer"),
        (without(DIFF, "b"), r"field 'b' must be a list of bid levels \(\[price, size\] strings\)"),
        ({**DIFF, "a": {}}, "field 'a' must be a list of ask levels"),
        ({**DIFF, "b": "12"}, "field 'b' must be a list of bid levels"),
        (
            {**DIFF, "b": [["1"]]},
            r"field 'b' holds a level that is not \[price, size\] strings: \['1'\]",
        ),
        ({**DIFF, "b": [["1", "2", "3"]]}, "field 'b' holds a level"),
        ({**DIFF, "b": [[1, "2"]]}, "field 'b' holds a level"),
        ({**DIFF, "b": [["1", None]]}, "field 'b' holds a level"),
        ({**DIFF, "a": [["1", 2.5]]}, "field 'a' holds a level"),
        ({**DIFF, "a": ["12"]}, "field 'a' holds a level"),
        ({**DIFF, "a": [None]}, "field 'a' holds a level"),
        ({**DIFF, "a": [{"price": "1", "size": "2"}]}, "field 'a' holds a level"),
    ],
)
def test_malformed_diffs_are_refused_naming_the_field(payload, complaint) -> None:
    with pytest.raises(ValueError, match=complaint):
        DepthDiff.from_payload(payload)
    with pytest.raises(ValueError, match=complaint):
        parse_depth_frame(orjson.dumps(payload))
    with pytest.raises(ValueError, match=complaint):
        parse_depth_frame(orjson.dumps({"stream": "btcusdt@depth@100ms", "data": payload}))


@pytest.mark.parametrize(
    ("frame", "complaint"),
    [
        (b"<html>502 Bad Gateway</html>", "a depth frame must be JSON text"),
        (b"", "a depth frame must be JSON text"),
        ("{nope", "a depth frame must be JSON text"),
        (b"[1, 2]", "must be a JSON object, not"),
        (b'"depthUpdate"', "must be a JSON object, not"),
        (b'{"stream": "btcusdt@depth", "data": [1]}', "must be a JSON object, not"),
        (b'{"result": null, "id": 1}', "not a depthUpdate event"),
    ],
)
def test_depth_frames_that_are_not_json_objects_are_refused(frame, complaint) -> None:
    with pytest.raises(ValueError, match=complaint):
        parse_depth_frame(frame)


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ("<html>502 Bad Gateway</html>", "a depth snapshot must be JSON text"),
        (b"", "a depth snapshot must be JSON text"),
        (b"[]", "must be a JSON object, not"),
        (b"null", "must be a JSON object, not"),
        (b'{"bids":[],"asks":[]}', "field 'lastUpdateId' must be an integer, not None"),
        ('{"code":-1121,"msg":"Invalid symbol."}', "field 'lastUpdateId' must be an integer"),
        ({**SNAPSHOT, "lastUpdateId": "2"}, "field 'lastUpdateId' must be an integer, not '2'"),
        ({**SNAPSHOT, "lastUpdateId": 2.5}, "field 'lastUpdateId' must be an integer"),
        ({**SNAPSHOT, "E": "x"}, "field 'E' must be an integer"),
        ({**SNAPSHOT, "T": 1.5}, "field 'T' must be an integer"),
        (without(SNAPSHOT, "bids"), "field 'bids' must be a list of bid levels"),
        ({**SNAPSHOT, "asks": "x"}, "field 'asks' must be a list of ask levels"),
        ({**SNAPSHOT, "asks": {"11.0": "1"}}, "field 'asks' must be a list of ask levels"),
        (
            {**SNAPSHOT, "bids": [["1"]]},
            r"field 'bids' holds a level that is not \[price, size\] strings: \['1'\]",
        ),
        ({**SNAPSHOT, "bids": [["1", "2", "3"]]}, "field 'bids' holds a level"),
        ({**SNAPSHOT, "bids": ["12"]}, "field 'bids' holds a level"),
        ({**SNAPSHOT, "asks": [["1", 1]]}, "field 'asks' holds a level"),
        ({**SNAPSHOT, "asks": [[None, "1"]]}, "field 'asks' holds a level"),
        ({**SNAPSHOT, "asks": [None]}, "field 'asks' holds a level"),
    ],
)
def test_malformed_snapshots_are_refused_naming_the_field(body, complaint) -> None:
    raw = body if isinstance(body, str | bytes) else orjson.dumps(body)
    with pytest.raises(ValueError, match=complaint):
        parse_depth_snapshot(raw)
    if isinstance(body, dict):
        with pytest.raises(ValueError, match=complaint):
            DepthSnapshot.from_payload(body)


def test_a_diff_without_event_time_is_refused_on_both_paths() -> None:
    """Binance's diffs always carry ``E``. The fast path never applied a diff without it; the
    general path (and so a buffered diff) now refuses it too, instead of publishing a diff
    with no time."""
    sync = synced_spot(100)
    assert isinstance(sync.apply_frame(frame(101, 101)), Applied)  # the fast path is armed
    no_time = orjson.dumps(without(orjson.loads(frame(102, 102, [("10.0", "2")])), "E"))
    with pytest.raises(ValueError, match="'E'"):
        sync.apply_frame(no_time)
    assert (sync.state, sync.update_id, sync.book.best_bid()) == (
        SyncState.SYNCED,
        101,
        ("10.0", "1"),
    )
    waiting = DepthSync("BTCUSDT", SPOT)
    with pytest.raises(ValueError, match="'E'"):
        waiting.apply_frame(no_time)
    assert waiting.buffered == 0


#: Levels of the right shape whose strings are not a positive price and a non-negative size.
NOT_NUMBERS = [
    ("x", "1"),
    ("-1", "1"),
    ("0", "1"),
    ("", "1"),
    ("NaN", "1"),
    ("-inf", "1"),
    ("1.2.3", "1"),
    ("1e", "1"),
    ("10.5", "abc"),
    ("10.5", "-1"),
    ("10.5", "Infinity"),
    ("10.5", "0x10"),
    ("10.5", ""),
]


@pytest.mark.parametrize("level", NOT_NUMBERS)
@pytest.mark.parametrize("side", ["bids", "asks"])
def test_levels_that_are_not_numbers_parse_but_make_the_book_stale(level, side) -> None:
    """Parsing checks shapes only; the book reads a level's numbers when it applies it, and a
    book in sync goes stale (empty, asking for a snapshot) rather than taking the level."""
    changes = [["10.5", "2"], list(level)]
    raw = frame(102, 103, **{side: changes})
    parsed = parse_depth_frame(raw)
    assert getattr(parsed, side) == (("10.5", "2"), level)
    for apply in (lambda sync: sync.apply_frame(raw), lambda sync: sync.apply_diff(parsed)):
        sync = synced_spot(100)
        assert isinstance(sync.apply_frame(frame(101, 101)), Applied)
        outcome = apply(sync)
        assert isinstance(outcome, NeedSnapshot)
        assert outcome.reason.startswith("malformed depth diff 102..103")
        assert (outcome.update_id, sync.state, sync.update_id) == (101, SyncState.STALE, None)
        assert len(sync.book) == 0
    # Buffered before the snapshot, it is refused when the snapshot replays it.
    sync = DepthSync("BTCUSDT", SPOT)
    assert isinstance(sync.apply_frame(raw), Buffered)
    outcome = sync.apply_snapshot(snapshot(101))
    assert isinstance(outcome, NeedSnapshot)
    assert (sync.state, len(sync.book)) == (SyncState.STALE, 0)

    body = orjson.dumps({**SNAPSHOT, side: [*SNAPSHOT[side], list(level)]})
    parsed_snapshot = parse_depth_snapshot(body)
    assert getattr(parsed_snapshot, side)[-1] == level
    sync = DepthSync("BTCUSDT", SPOT)
    outcome = sync.apply_snapshot(parsed_snapshot)
    assert isinstance(outcome, NeedSnapshot)
    assert outcome.reason.startswith("malformed snapshot at 2")
    assert (sync.state, sync.update_id, len(sync.book)) == (SyncState.STALE, None, 0)


# ----------------------------------------------------------------------------- fixtures


def fixture(relative: str) -> bytes:
    return (FIXTURES / relative).read_bytes()


class Expected(NamedTuple):
    """What a depth fixture must parse to: its ids (diff: ``U``, ``u``, ``pu``; snapshot:
    ``lastUpdateId``), times (``E``, ``T``) and, per side, how many levels, the first and the
    last, as the fixture's strings."""

    ids: tuple[int | None, ...]
    times: tuple[int | None, int | None]
    bids: tuple[int, tuple[str, str], tuple[str, str]]
    asks: tuple[int, tuple[str, str], tuple[str, str]]


_DOCS_DIFF = Expected(
    ids=(157, 160, 149),
    times=(123456789, 123456788),
    bids=(1, ("0.0024", "10"), ("0.0024", "10")),
    asks=(1, ("0.0026", "100"), ("0.0026", "100")),
)
#: Every diff-depth event among the fixtures (all futures: there is no Spot one).
DIFF_FIXTURES = {
    "python_tests/ws_messages/ws_futures_depth_update.json": Expected(
        ids=(390497796, 390497878, 390497794),
        times=(1571889248277, 1571889248276),
        bids=(5, ("7403.89", "0.002"), ("7405.43", "2.562")),
        asks=(5, ("7405.96", "3.340"), ("7407.20", "0.175")),
    ),
    "python_tests/ws_messages/ws_futures_depth_diff_update.json": _DOCS_DIFF,
    "rust_test_data/futures/market_data_json/depth_update_stream.json": _DOCS_DIFF,
}
_DOCS_SNAPSHOT_LEVELS = {
    "bids": (1, ("4.00000000", "431.00000000"), ("4.00000000", "431.00000000")),
    "asks": (1, ("4.00000200", "12.00000000"), ("4.00000200", "12.00000000")),
}
#: Every REST depth snapshot among the fixtures.
SNAPSHOT_FIXTURES = {
    "python_tests/http_responses/http_spot_market_depth.json": Expected(
        ids=(14527958487,),
        times=(None, None),
        bids=(10, ("60650.00000000", "0.00213000"), ("60639.93000000", "0.07282000")),
        asks=(10, ("60650.01000000", "0.61982000"), ("60659.94000000", "0.96170000")),
    ),
    "python_tests/http_responses/http_futures_market_depth.json": Expected(
        ids=(1027024,), times=(1589436922972, 1589436922959), **_DOCS_SNAPSHOT_LEVELS
    ),
    "rust_test_data/spot/http_json/depth_response.json": Expected(
        ids=(1027024,), times=(None, None), **_DOCS_SNAPSHOT_LEVELS
    ),
}


def depth_fixtures() -> dict[str, str]:
    """Every JSON fixture that is a diff-depth event (``"diff"``) or a REST depth snapshot
    (``"snapshot"``), found by its content, by path relative to :data:`FIXTURES`."""
    found = {}
    for path in FIXTURES.rglob("*.json"):
        try:
            body = orjson.loads(path.read_bytes())
        except orjson.JSONDecodeError:
            continue
        if isinstance(body, dict) and "stream" in body and "data" in body:
            body = body["data"]
        if not isinstance(body, dict):
            continue
        if body.get("e") == "depthUpdate":
            found[str(path.relative_to(FIXTURES))] = "diff"
        elif "lastUpdateId" in body:
            found[str(path.relative_to(FIXTURES))] = "snapshot"
    return found


def test_every_depth_fixture_is_parsed_below() -> None:
    assert depth_fixtures() == {
        **dict.fromkeys(DIFF_FIXTURES, "diff"),
        **dict.fromkeys(SNAPSHOT_FIXTURES, "snapshot"),
    }


def sides(parsed: DepthDiff | DepthSnapshot) -> tuple[tuple, tuple]:
    """Per side: how many levels, the first and the last."""
    return (
        (len(parsed.bids), parsed.bids[0], parsed.bids[-1]),
        (len(parsed.asks), parsed.asks[0], parsed.asks[-1]),
    )


@pytest.mark.parametrize("relative", sorted(DIFF_FIXTURES))
def test_diff_fixtures_parse_to_their_values(relative) -> None:
    raw = fixture(relative)
    expected = DIFF_FIXTURES[relative]
    parsed = parse_depth_frame(raw)
    assert parsed.symbol == "BTCUSDT"
    assert (parsed.first_update_id, parsed.update_id, parsed.previous_update_id) == expected.ids
    assert (parsed.event_time_ms, parsed.transaction_time_ms) == expected.times
    assert sides(parsed) == (expected.bids, expected.asks)
    body = orjson.loads(raw)
    assert parsed.bids == tuple(map(tuple, body["b"]))  # every level, Binance's strings in order
    assert parsed.asks == tuple(map(tuple, body["a"]))
    assert parse_depth_frame(raw.decode()) == parsed
    assert parse_depth_frame(orjson.dumps({"stream": "btcusdt@depth", "data": body})) == parsed
    assert DepthDiff.from_payload(body) == parsed


@pytest.mark.parametrize("relative", sorted(SNAPSHOT_FIXTURES))
def test_snapshot_fixtures_parse_to_their_values(relative) -> None:
    raw = fixture(relative)
    expected = SNAPSHOT_FIXTURES[relative]
    parsed = parse_depth_snapshot(raw)
    assert (parsed.update_id,) == expected.ids
    assert (parsed.event_time_ms, parsed.transaction_time_ms) == expected.times
    assert sides(parsed) == (expected.bids, expected.asks)
    body = orjson.loads(raw)
    assert parsed.bids == tuple(map(tuple, body["bids"]))
    assert parsed.asks == tuple(map(tuple, body["asks"]))
    assert parse_depth_snapshot(raw.decode()) == parsed
    assert DepthSnapshot.from_payload(body) == parsed


@pytest.mark.parametrize("relative", sorted(SNAPSHOT_FIXTURES))
def test_snapshot_fixtures_sync_a_book(relative) -> None:
    parsed = parse_depth_snapshot(fixture(relative))
    expected = SNAPSHOT_FIXTURES[relative]
    rule = FUTURES if "futures" in relative else SPOT
    sync = DepthSync("BTCUSDT", rule)
    outcome = sync.apply_snapshot(parsed)
    assert outcome == Synced(
        update_id=parsed.update_id, snapshot_update_id=parsed.update_id, replayed=0, attempts=1
    )
    # Binance sends each side best first.
    assert sync.book.best_bid() == expected.bids[1]
    assert sync.book.best_ask() == expected.asks[1]
    assert sync.book.depth == (expected.bids[0], expected.asks[0])
    body = orjson.loads(fixture(relative))
    assert sync.book.levels() == (
        [tuple(level) for level in body["bids"]],
        [tuple(level) for level in body["asks"]],
    )


@pytest.mark.parametrize("relative", sorted(DIFF_FIXTURES))
def test_diff_fixtures_apply_live_and_from_the_buffer(relative) -> None:
    raw = fixture(relative)
    event = parse_depth_frame(raw)
    body = orjson.loads(raw)
    assert (event.first_update_id, event.update_id, event.previous_update_id) == (
        body["U"],
        body["u"],
        body["pu"],
    )
    assert event.transaction_time_ms == body["T"]
    base = parse_depth_snapshot(
        fixture("python_tests/http_responses/http_futures_market_depth.json")
    )
    at_pu = attrs.evolve(base, update_id=event.previous_update_id)
    expected_bids = {Decimal(p): Decimal(q) for p, q in base.bids}
    expected_asks = {Decimal(p): Decimal(q) for p, q in base.asks}
    for side, changes in ((expected_bids, body["b"]), (expected_asks, body["a"])):
        for price, size in changes:
            side[Decimal(price)] = Decimal(size)
    expected = (sorted(expected_bids.items(), reverse=True), sorted(expected_asks.items()))

    live = DepthSync("BTCUSDT", FUTURES)
    assert isinstance(live.apply_snapshot(at_pu), Synced)
    outcome = live.apply_frame(raw)
    assert isinstance(outcome, Applied)
    assert outcome.update_id == body["u"]
    assert live.book.levels(decimals=True) == expected

    buffered = DepthSync("BTCUSDT", FUTURES)
    assert isinstance(buffered.apply_frame(raw), Buffered)
    assert buffered.apply_snapshot(at_pu).replayed == 1
    assert buffered.book == live.book

    # The fixture's own snapshot id is unrelated to these events: far newer, so they are dropped.
    newer = DepthSync("BTCUSDT", FUTURES)
    newer.apply_frame(raw)
    synced = newer.apply_snapshot(base)
    if base.update_id > body["u"]:
        assert synced.replayed == 0
    else:
        assert isinstance(synced, SnapshotTooOld)


def csv_rows(name: str) -> list[dict[str, str]]:
    with (FIXTURES / "historical_csv" / name).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_historical_csv_snapshot_and_update_apply() -> None:
    snap_rows = csv_rows("btcusdt-depth-snap.csv")
    snap = DepthSnapshot(
        update_id=int(snap_rows[0]["last_update_id"]),
        bids=tuple((r["price"], r["qty"]) for r in snap_rows if r["side"] == "b"),
        asks=tuple((r["price"], r["qty"]) for r in snap_rows if r["side"] == "a"),
    )
    update_rows = csv_rows("btcusdt-depth-update.csv")
    first = update_rows[0]
    update = diff(
        int(first["first_update_id"]),
        int(first["last_update_id"]),
        [(r["price"], r["qty"]) for r in update_rows if r["side"] == "b"],
        [(r["price"], r["qty"]) for r in update_rows if r["side"] == "a"],
        pu=int(first["pu"]),
    )
    # With their real ids the snapshot is far older than the update: the rules refuse it.
    sync = DepthSync("BTCUSDT", FUTURES)
    sync.apply_diff(update)
    assert isinstance(sync.apply_snapshot(snap), SnapshotTooOld)
    # Re-dated to the update's pu, the update applies (mostly removals of unknown levels).
    assert isinstance(
        sync.apply_snapshot(attrs.evolve(snap, update_id=update.previous_update_id)), Synced
    )
    expected: dict[str, dict[Decimal, Decimal]] = {
        "b": {Decimal(p): Decimal(q) for p, q in snap.bids},
        "a": {},
    }
    for row in update_rows:
        side = expected[row["side"]]
        if Decimal(row["qty"]):
            side[Decimal(row["price"])] = Decimal(row["qty"])
        else:
            side.pop(Decimal(row["price"]), None)
    assert sync.book.levels(decimals=True) == (
        sorted(expected["b"].items(), reverse=True),
        sorted(expected["a"].items()),
    )
    assert sync.book.depth == (len(expected["b"]), len(expected["a"]))


_ACCOUNTS = {
    "spot": AccountType.SPOT,
    "usdm": AccountType.USDT_FUTURES,
    "coinm": AccountType.COIN_FUTURES,
}


@pytest.mark.parametrize("product", sorted(_ACCOUNTS))
def test_local_venue_depth_payloads_parse_and_sync(product) -> None:
    """The local venue's diff and snapshot payloads parse to their fields and, in Binance's
    order (a diff buffered, the snapshot, the next diff), sync a book."""
    spot = product == "spot"
    precision = (
        payloads.SPOT_PRECISION if spot else payloads.Precision(price=2, quantity=3, notional=4)
    )
    price, size = Decimal("60000.5"), Decimal("0.25")

    def event(first: int, last: int, bids: list, asks: list) -> dict:
        return payloads.depth_update_event(
            product,
            symbol="BTCUSDT",
            event_time=13 + last,
            transaction_time=12 + last,
            first_update_id=first,
            final_update_id=last,
            previous_final_update_id=first - 1,
            bids=bids,
            asks=asks,
            precision=precision,
        )

    first = event(20, 25, [(price, size)], [(price + 1, Decimal(0))])
    diff = parse_depth_frame(orjson.dumps(first))
    assert (diff.symbol, diff.first_update_id, diff.update_id, diff.event_time_ms) == (
        "BTCUSDT",
        20,
        25,
        38,
    )
    assert (diff.previous_update_id, diff.transaction_time_ms) == (
        (None, None) if spot else (19, 37)
    )
    assert (diff.bids, diff.asks) == (tuple(map(tuple, first["b"])), tuple(map(tuple, first["a"])))
    body = payloads.depth_snapshot(
        product,
        symbol="BTCUSDT",
        last_update_id=22,
        event_time=14,
        transaction_time=15,
        bids=[(price - 1, size)],
        asks=[(price + 2, size)],
        precision=precision,
    )
    snap = parse_depth_snapshot(orjson.dumps(body))
    assert (snap.update_id, snap.event_time_ms, snap.transaction_time_ms) == (
        (22, None, None) if spot else (22, 14, 15)
    )
    assert (snap.bids, snap.asks) == (
        tuple(map(tuple, body["bids"])),
        tuple(map(tuple, body["asks"])),
    )

    sync = DepthSync("BTCUSDT", SequenceRule.for_account(_ACCOUNTS[product]))
    assert isinstance(sync.apply_frame(orjson.dumps(first)), Buffered)
    assert sync.apply_snapshot(snap) == Synced(
        update_id=25, snapshot_update_id=22, replayed=1, attempts=1
    )
    second = event(26, 30, [(price, Decimal(0))], [(price + 1, size)])
    outcome = sync.apply_frame(orjson.dumps(second))
    assert isinstance(outcome, Applied)
    assert outcome.update_id == sync.update_id == 30
    assert sync.book.levels(decimals=True) == (
        [(price - 1, size)],
        [(price + 1, size), (price + 2, size)],
    )


# ------------------------------------------------------------------ the model-based tests

BID_GRID = [Decimal(100 + i) / 10 for i in range(12)]  # 10.0 .. 11.1
ASK_GRID = [Decimal(112 + i) / 10 for i in range(12)]  # 11.2 .. 12.3
SIZES = ["1", "2.5", "0.001", "10.000", "7"]
ZERO_SPELLINGS = ["0", "0.000", "0.00000000", "0E-8"]
BASE = 1000


def spell(price: Decimal, padded: bool) -> str:
    return f"{price:.4f}" if padded else str(price)


@attrs.frozen
class History:
    """The true book: ``initial`` at ``BASE`` and one list of changes per later update id."""

    initial: tuple[dict[Decimal, str], dict[Decimal, str]]
    updates: tuple[tuple[tuple[str, str, str], ...], ...]  # (side, price, size)
    events: tuple[dict, ...]

    @property
    def last_id(self) -> int:
        return BASE + len(self.updates)

    def state(self, update_id: int) -> tuple[list, list]:
        bids, asks = dict(self.initial[0]), dict(self.initial[1])
        for changes in self.updates[: max(0, update_id - BASE)]:
            for side, price, size in changes:
                book = bids if side == "b" else asks
                if Decimal(size):
                    book[Decimal(price)] = size
                else:
                    book.pop(Decimal(price), None)
        return (
            sorted(((p, Decimal(q)) for p, q in bids.items()), reverse=True),
            sorted((p, Decimal(q)) for p, q in asks.items()),
        )

    def snapshot(self, update_id: int) -> DepthSnapshot:
        bids, asks = self.state(update_id)
        return DepthSnapshot(
            update_id=update_id,
            bids=tuple((str(p), str(q)) for p, q in bids),
            asks=tuple((str(p), str(q)) for p, q in asks),
        )


@st.composite
def histories(draw, futures: bool) -> History:
    bids = {
        p: draw(st.sampled_from(SIZES))
        for p in draw(st.lists(st.sampled_from(BID_GRID), min_size=2, max_size=8, unique=True))
    }
    asks = {
        p: draw(st.sampled_from(SIZES))
        for p in draw(st.lists(st.sampled_from(ASK_GRID), min_size=2, max_size=8, unique=True))
    }
    live = {"b": dict(bids), "a": dict(asks)}
    updates = []
    for _ in range(draw(st.integers(3, 30))):
        changes = []
        if not (futures and draw(st.integers(0, 4)) == 0):  # futures: some ids touch nothing
            for _ in range(draw(st.integers(1, 3))):
                side = draw(st.sampled_from("ba"))
                grid = BID_GRID if side == "b" else ASK_GRID
                price = draw(st.sampled_from(grid))
                text = spell(price, draw(st.booleans()))
                if draw(st.integers(0, 2)) == 0 and (
                    price not in live[side] or len(live[side]) > 1
                ):
                    changes.append((side, text, draw(st.sampled_from(ZERO_SPELLINGS))))
                    live[side].pop(price, None)
                else:
                    size = draw(st.sampled_from(SIZES))
                    changes.append((side, text, size))
                    live[side][price] = size
        updates.append(tuple(changes))
    # Cut the ids into diffs.
    events = []
    position = 0  # updates[position] has id BASE + 1 + position
    previous = BASE
    while position < len(updates):
        length = draw(st.integers(1, 4))
        chunk = updates[position : position + length]
        first = previous + 1
        if futures:  # ids that touch nothing before the diff's first change are not in it
            while first < previous + len(chunk) and not updates[first - BASE - 1]:
                first += 1
        last = previous + len(chunk)
        merged: dict[tuple[str, Decimal], tuple[str, str]] = {}
        for changes in chunk:
            for side, price, size in changes:
                merged.pop((side, Decimal(price)), None)
                merged[side, Decimal(price)] = (price, size)
        event = {
            "e": "depthUpdate",
            "E": last,
            "s": "BTCUSDT",
            "U": first,
            "u": last,
            "b": [list(level) for (side, _), level in merged.items() if side == "b"],
            "a": [list(level) for (side, _), level in merged.items() if side == "a"],
        }
        if futures:
            event |= {"T": last, "pu": previous}
        events.append(event)
        position += len(chunk)
        previous = last
    return History(initial=(bids, asks), updates=tuple(updates), events=tuple(events))


def merge(first: dict, second: dict) -> dict:
    """Two consecutive diffs as one, as a slower stream would send them."""
    merged = dict(second, U=first["U"])
    if "pu" in first:
        merged["pu"] = first["pu"]
    for side in "ba":
        levels = {Decimal(p): [p, q] for p, q in first[side]}
        for p, q in second[side]:
            levels.pop(Decimal(p), None)
            levels[Decimal(p)] = [p, q]
        merged[side] = list(levels.values())
    return merged


OPS = st.lists(
    st.tuples(
        st.sampled_from(
            ["next"] * 6
            + ["drop", "dup", "swap", "merge", "snapshot", "snapshot", "empty", "fail", "interrupt"]
        ),
        st.integers(0, 1000),
        st.booleans(),
    ),
    max_size=50,
)


def interesting_ids(history: History) -> list[int]:
    ids = {BASE - 1, BASE, BASE + 1, history.last_id, history.last_id + 1}
    for event in history.events:
        ids |= {event["U"] - 2, event["U"] - 1, event["U"], event["U"] + 1}
        ids |= {event["u"] - 1, event["u"], event["u"] + 1}
    return sorted(ids)


def run_model(rule: SequenceRule, history: History, ops, max_buffer: int) -> None:
    sync = DepthSync("BTCUSDT", rule, max_buffer=max_buffer)
    events = history.events
    ids = interesting_ids(history)
    cursor = 0
    delivered: list[dict] = []
    in_sync = False

    def deliver(event: dict, raw: bool, wrap: bool = False):
        delivered.append(event)
        if raw:
            payload = {"stream": "btcusdt@depth", "data": event} if wrap else event
            return sync.apply_frame(orjson.dumps(payload))
        return sync.apply_diff(DepthDiff.from_payload(event))

    def check(outcome) -> None:
        nonlocal in_sync
        if isinstance(outcome, Synced):
            in_sync = True
        elif isinstance(outcome, NeedSnapshot):
            in_sync = False
        elif isinstance(outcome, Applied):
            assert in_sync, "applied a diff after a gap before resyncing"
        assert (sync.state is SyncState.SYNCED) == in_sync
        if in_sync:
            assert sync.update_id is not None
            assert sync.book.levels(decimals=True) == history.state(sync.update_id)
        else:
            assert len(sync.book) == 0
            assert sync.update_id is None

    for kind, number, flag in ops:
        if kind in ("next", "drop") and cursor < len(events):
            if kind == "next":
                check(deliver(events[cursor], flag, wrap=number % 3 == 0))
            cursor += 1
        elif kind == "dup" and delivered:
            check(deliver(delivered[number % len(delivered)], flag))
        elif kind in ("swap", "merge") and cursor + 1 < len(events):
            if kind == "swap":
                check(deliver(events[cursor + 1], flag))
                check(deliver(events[cursor], flag))
            else:
                check(deliver(merge(events[cursor], events[cursor + 1]), flag))
            cursor += 2
        elif kind == "snapshot":
            check(sync.apply_snapshot(history.snapshot(ids[number % len(ids)])))
        elif kind == "empty":
            check(sync.apply_snapshot(DepthSnapshot(update_id=ids[number % len(ids)])))
        elif kind == "fail":
            check(sync.snapshot_failed("HTTP 503"))
        elif kind == "interrupt":
            check(sync.stream_interrupted("reconnected"))

    # Heal: reconnect, take a snapshot at the newest diff seen, and stream the rest in order.
    # Every diff must apply: the rules never refuse a continuous stream.
    check(sync.stream_interrupted("heal"))
    start = max((event["u"] for event in delivered), default=BASE)
    outcome = sync.apply_snapshot(history.snapshot(start))
    assert outcome == Synced(
        update_id=start, snapshot_update_id=start, replayed=0, attempts=sync.attempts
    )
    check(outcome)
    for event in events:
        if event["u"] > start:
            outcome = deliver(event, raw=True)
            assert isinstance(outcome, Applied), outcome
            check(outcome)
    assert sync.update_id == history.last_id
    assert sync.book.levels(decimals=True) == history.state(history.last_id)


MODEL_SETTINGS = settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@MODEL_SETTINGS
@given(histories(futures=False), OPS, st.sampled_from([2, 6, 1000]))
def test_spot_model(history, ops, max_buffer) -> None:
    run_model(SPOT, history, ops, max_buffer)


@MODEL_SETTINGS
@given(histories(futures=True), OPS, st.sampled_from([2, 6, 1000]))
def test_futures_model(history, ops, max_buffer) -> None:
    run_model(FUTURES, history, ops, max_buffer)


@settings(max_examples=50, deadline=None)
@given(st.data())
def test_model_histories_chain_as_binance_does(data) -> None:
    """The generator's own diffs chain as §8 says, or the model tests would prove nothing."""
    rule = data.draw(st.sampled_from([SPOT, FUTURES]))
    history = data.draw(histories(futures=rule is FUTURES))
    previous = BASE
    for event in history.events:
        if rule is FUTURES:
            assert event["pu"] == previous
            assert event["U"] > previous
        else:
            assert event["U"] == previous + 1
        assert event["U"] <= event["u"]
        previous = event["u"]
    assert previous == history.last_id


def in_futures_hole(history: History, update_id: int) -> bool:
    """An id after a diff's pu and before its U: the futures rules accept no snapshot there."""
    return any(event["pu"] < update_id < event["U"] for event in history.events)


def run_clean(rule: SequenceRule, history: History, pick: int, arrival: int) -> None:
    """Every diff delivered once and in order, one snapshot arriving after ``arrival`` diffs:
    a snapshot the rules accept must sync, and nothing may then be refused."""
    ids = [i for i in interesting_ids(history) if BASE <= i <= history.last_id]
    if rule is FUTURES:
        ids = [i for i in ids if not in_futures_hole(history, i)]
    snapshot_id = ids[pick % len(ids)]
    events = history.events
    arrival %= len(events) + 1
    sync = DepthSync("BTCUSDT", rule)
    for event in events[:arrival]:
        assert isinstance(sync.apply_frame(orjson.dumps(event)), Buffered)
    outcome = sync.apply_snapshot(history.snapshot(snapshot_id))
    assert isinstance(outcome, Synced), outcome
    assert sync.book.levels(decimals=True) == history.state(outcome.update_id)
    for event in events[arrival:]:
        outcome = sync.apply_frame(orjson.dumps(event))
        assert isinstance(outcome, Applied | Ignored), outcome
        assert sync.book.levels(decimals=True) == history.state(sync.update_id)
    assert sync.update_id == max(history.last_id, snapshot_id)


@settings(max_examples=150, deadline=None)
@given(histories(futures=False), st.integers(0, 1000), st.integers(0, 1000))
def test_spot_clean_delivery_always_syncs(history, pick, arrival) -> None:
    run_clean(SPOT, history, pick, arrival)


@settings(max_examples=150, deadline=None)
@given(histories(futures=True), st.integers(0, 1000), st.integers(0, 1000))
def test_futures_clean_delivery_always_syncs(history, pick, arrival) -> None:
    run_clean(FUTURES, history, pick, arrival)


def test_the_fast_path_refuses_what_the_general_path_refuses() -> None:
    """A next-in-chain diff with a malformed event time or a level given as a string is not
    applied blindly by the fast path."""
    sync = DepthSync("BTCUSDT", SequenceRule.FUTURES)
    snapshot = {"lastUpdateId": 10, "bids": [["100.0", "1"]], "asks": [["101.0", "1"]]}
    first = {"e": "depthUpdate", "E": 1, "T": 1, "s": "BTCUSDT", "U": 9, "u": 11, "pu": 8}
    sync.apply_diff(DepthDiff.from_payload({**first, "b": [], "a": []}))
    assert isinstance(sync.apply_snapshot(DepthSnapshot.from_payload(snapshot)), Synced)
    good = {"e": "depthUpdate", "E": 2, "T": 2, "s": "BTCUSDT", "U": 12, "u": 12, "pu": 11}
    with pytest.raises(ValueError, match="E"):
        sync.apply_frame(orjson.dumps({**good, "E": "now", "b": [], "a": []}))
    with pytest.raises(ValueError, match="'T'"):
        sync.apply_frame(orjson.dumps({**good, "T": "then", "b": [], "a": []}))
    assert sync.update_id == 11  # nothing applied
    outcome = sync.apply_frame(orjson.dumps({**good, "b": ["12"], "a": []}))
    assert isinstance(outcome, NeedSnapshot)
    assert sync.book.best_bid() is None  # stale: emptied, never "price 1 size 2"


# ------------------------------------------------- random payloads through the parsers


@st.composite
def decimal_text(draw, positive: bool = False) -> str:
    whole = draw(st.integers(1 if positive else 0, 10**15))
    places = draw(st.integers(0, 12))
    return f"{whole}.{draw(st.integers(0, 10**places - 1)):0{places}d}" if places else str(whole)


UPDATE_IDS = st.integers(0, 2**63 - 1)
#: Levels the book takes: a positive price, a non-negative size (zero removes).
LEVELS = st.lists(st.tuples(decimal_text(positive=True), decimal_text()).map(list), max_size=20)
JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=8,
)
#: Fields Binance adds without notice, and made-up ones.
EXTRA_FIELDS = st.dictionaries(
    st.one_of(
        st.sampled_from(["st", "ps", "nq", "ap", "rpi", "symbol", "pair"]),
        st.text(string.ascii_letters, min_size=1, max_size=6).map("x_".__add__),
    ),
    JSON_VALUES,
    max_size=4,
)
PARSE_SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@st.composite
def diff_payloads(draw, futures: bool | None = None) -> dict:
    if futures is None:
        futures = draw(st.booleans())
    first, last = sorted(draw(st.tuples(UPDATE_IDS, UPDATE_IDS)))
    payload = {
        "e": "depthUpdate",
        "E": draw(UPDATE_IDS),
        "s": draw(st.sampled_from(["BTCUSDT", "ETHBTC", "BTCUSD_PERP"])),
        "U": first,
        "u": last,
        "b": draw(LEVELS),
        "a": draw(LEVELS),
    }
    if futures:
        payload |= {"T": draw(UPDATE_IDS), "pu": draw(UPDATE_IDS)}
    return payload


@st.composite
def snapshot_payloads(draw, futures: bool | None = None) -> dict:
    if futures is None:
        futures = draw(st.booleans())
    payload = {"lastUpdateId": draw(UPDATE_IDS), "bids": draw(LEVELS), "asks": draw(LEVELS)}
    if futures:
        payload |= {"E": draw(UPDATE_IDS), "T": draw(UPDATE_IDS)}
    return payload


def levels_of(raw: list) -> tuple:
    return tuple(map(tuple, raw))


@PARSE_SETTINGS
@given(diff_payloads(), EXTRA_FIELDS, st.booleans())
def test_random_diffs_parse_to_their_fields(payload, extra, wrap) -> None:
    expected = DepthDiff(
        symbol=payload["s"],
        first_update_id=payload["U"],
        update_id=payload["u"],
        previous_update_id=payload.get("pu"),
        bids=levels_of(payload["b"]),
        asks=levels_of(payload["a"]),
        event_time_ms=payload["E"],
        transaction_time_ms=payload.get("T"),
    )
    extended = {**extra, **payload}  # unknown fields are ignored
    sent = {"stream": "x@depth", "data": extended} if wrap else extended
    assert parse_depth_frame(orjson.dumps(sent)) == expected
    assert parse_depth_frame(orjson.dumps(sent).decode()) == expected
    assert DepthDiff.from_payload(extended) == expected


@PARSE_SETTINGS
@given(snapshot_payloads(), EXTRA_FIELDS)
def test_random_snapshots_parse_to_their_fields(payload, extra) -> None:
    expected = DepthSnapshot(
        update_id=payload["lastUpdateId"],
        bids=levels_of(payload["bids"]),
        asks=levels_of(payload["asks"]),
        event_time_ms=payload.get("E"),
        transaction_time_ms=payload.get("T"),
    )
    extended = {**extra, **payload}
    assert parse_depth_snapshot(orjson.dumps(extended)) == expected
    assert parse_depth_snapshot(orjson.dumps(extended).decode()) == expected
    assert DepthSnapshot.from_payload(extended) == expected


def wrong(kind: str) -> st.SearchStrategy:
    """JSON values that are not of ``kind``: ``int``, ``str``, ``event`` (``e``: anything but
    ``"depthUpdate"``) or ``levels`` (anything but a list of two-string lists)."""
    others = st.one_of(
        st.none(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.lists(JSON_SCALARS, max_size=3),
        st.dictionaries(st.text(max_size=3), JSON_SCALARS, max_size=3),
    )
    if kind == "int":
        return st.one_of(others, st.booleans(), st.text(max_size=8))
    if kind == "str":
        return st.one_of(others, st.booleans(), st.integers(-(2**63), 2**63 - 1))
    if kind == "event":
        return st.one_of(others, st.text(max_size=12).filter(lambda text: text != "depthUpdate"))
    bad_level = st.one_of(
        st.lists(decimal_text(), max_size=1),
        st.lists(decimal_text(), min_size=3, max_size=4),
        st.tuples(decimal_text(), JSON_SCALARS.filter(lambda v: type(v) is not str)).map(list),
        st.tuples(JSON_SCALARS.filter(lambda v: type(v) is not str), decimal_text()).map(list),
        JSON_SCALARS,
        st.dictionaries(st.text(max_size=3), JSON_SCALARS, max_size=2),
    )
    return st.one_of(
        st.none(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=5),
        st.dictionaries(st.text(max_size=3), JSON_SCALARS, max_size=3),
        st.tuples(LEVELS, bad_level, LEVELS).map(lambda parts: [*parts[0], parts[1], *parts[2]]),
    )


#: The required fields of each payload and what they hold.
DIFF_FIELDS = {
    **{"e": "event", "E": "int", "s": "str", "U": "int", "u": "int"},
    **{"b": "levels", "a": "levels"},
}
SNAPSHOT_FIELDS = {"lastUpdateId": "int", "bids": "levels", "asks": "levels"}


def assert_refused_naming(key: str, parsers: list, payload: dict) -> None:
    """Every parser refuses ``payload`` with a ValueError naming field ``key`` (``'U'``, or
    ``e=`` / ``s=`` for the event type and the symbol)."""
    for parse in parsers:
        with pytest.raises(ValueError, match=f"'{key}'|\\b{key}="):
            parse(payload)


@PARSE_SETTINGS
@given(st.data())
def test_random_corrupted_payloads_are_refused_naming_the_field(data) -> None:
    """A required field missing or of the wrong kind, in a diff or a snapshot."""
    if data.draw(st.booleans()):
        payload, fields = data.draw(diff_payloads()), DIFF_FIELDS
        parsers = [DepthDiff.from_payload, lambda p: parse_depth_frame(orjson.dumps(p))]
    else:
        payload, fields = data.draw(snapshot_payloads()), SNAPSHOT_FIELDS
        parsers = [DepthSnapshot.from_payload, lambda p: parse_depth_snapshot(orjson.dumps(p))]
    key = data.draw(st.sampled_from(sorted(fields)))
    if data.draw(st.booleans()):
        del payload[key]
    else:
        payload[key] = data.draw(wrong(fields[key]))
    assert_refused_naming(key, parsers, payload)


@pytest.mark.parametrize(
    ("payloads_of", "key", "attribute"),
    [
        (diff_payloads, "pu", "previous_update_id"),
        (diff_payloads, "T", "transaction_time_ms"),
        (snapshot_payloads, "E", "event_time_ms"),
        (snapshot_payloads, "T", "transaction_time_ms"),
    ],
)
@PARSE_SETTINGS
@given(st.data())
def test_optional_fields_may_be_absent_but_not_mistyped(payloads_of, key, attribute, data) -> None:
    payload = data.draw(payloads_of(futures=True))
    if payloads_of is diff_payloads:
        parsers = [DepthDiff.from_payload, lambda p: parse_depth_frame(orjson.dumps(p))]
    else:
        parsers = [DepthSnapshot.from_payload, lambda p: parse_depth_snapshot(orjson.dumps(p))]
    for parse in parsers:
        assert getattr(parse(without(payload, key)), attribute) is None
        assert getattr(parse({**payload, key: None}), attribute) is None
    payload[key] = data.draw(wrong("int").filter(lambda value: value is not None))
    assert_refused_naming(key, parsers, payload)


#: JSON objects with the depth payloads' fields, of any JSON kind: most are malformed.
NEAR_DEPTH = st.one_of(
    st.fixed_dictionaries(
        {"e": st.just("depthUpdate")},
        optional=dict.fromkeys(["E", "s", "U", "u", "pu", "T", "b", "a"], JSON_VALUES),
    ),
    st.fixed_dictionaries(
        {}, optional=dict.fromkeys(["lastUpdateId", "bids", "asks", "E", "T"], JSON_VALUES)
    ),
)


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(JSON_VALUES, NEAR_DEPTH, NEAR_DEPTH.map(lambda data: {"stream": "x", "data": data}))
)
def test_any_json_value_parses_or_raises_value_error(value) -> None:
    raw = orjson.dumps(value)
    for parse in (parse_depth_frame, parse_depth_snapshot):
        try:
            parsed = parse(raw)
        except ValueError:
            continue
        assert type(parsed.update_id) is int
        for price, size in (*parsed.bids, *parsed.asks):
            assert type(price) is str
            assert type(size) is str


#: Strings that are neither a float nor a Decimal (and "-1", which is neither a price nor a
#: size), so no level holding one may reach a book.
NOT_A_NUMBER = st.one_of(
    st.sampled_from(["", "abc", "NaN", "nan", "inf", "-Infinity", "1.2.3", "0x10", "1e", "-1"]),
    st.text(alphabet="bcghjkoxz ,;:#-.", max_size=8),
)


@PARSE_SETTINGS
@given(st.data())
def test_random_levels_that_are_not_numbers_make_a_synced_book_stale(data) -> None:
    futures = data.draw(st.booleans())
    rule = FUTURES if futures else SPOT
    side = data.draw(st.sampled_from(["b", "a"]))
    attribute = "bids" if side == "b" else "asks"
    payload = data.draw(diff_payloads(futures=futures))
    levels = payload[side]
    junk = data.draw(NOT_A_NUMBER)
    good = data.draw(st.tuples(decimal_text(positive=True), decimal_text()))
    bad = [junk, good[1]] if data.draw(st.booleans()) else [good[0], junk]
    levels.insert(data.draw(st.integers(0, len(levels))), bad)
    warm = data.draw(st.booleans())  # the fast path needs one diff applied since the snapshot
    first = 102 if warm else 101
    last = first + data.draw(st.integers(0, 5))
    payload |= {"s": "BTCUSDT", "U": first, "u": last}
    if futures:
        payload["pu"] = first - 1
    raw = orjson.dumps(payload)
    assert tuple(bad) in getattr(parse_depth_frame(raw), attribute)
    for apply in (
        lambda sync: sync.apply_frame(raw),
        lambda sync: sync.apply_diff(parse_depth_frame(raw)),
    ):
        sync = DepthSync("BTCUSDT", rule)
        assert isinstance(sync.apply_snapshot(snapshot(100)), Synced)
        if warm:
            assert isinstance(
                sync.apply_frame(frame(101, 101, pu=100 if futures else None)), Applied
            )
        outcome = apply(sync)
        assert isinstance(outcome, NeedSnapshot), outcome
        assert outcome.reason.startswith(f"malformed depth diff {first}..{last}")
        assert (sync.state, sync.update_id, len(sync.book)) == (SyncState.STALE, None, 0)

    body = data.draw(snapshot_payloads())
    body[attribute].append(bad)
    parsed = parse_depth_snapshot(orjson.dumps(body))
    sync = DepthSync("BTCUSDT", rule)
    outcome = sync.apply_snapshot(parsed)
    assert isinstance(outcome, NeedSnapshot)
    assert outcome.reason.startswith("malformed snapshot")
    assert (sync.state, len(sync.book)) == (SyncState.STALE, 0)
