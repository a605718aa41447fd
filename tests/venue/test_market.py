"""MarketState: book invariants, the snapshot + diff property, trades, klines, funding."""

from __future__ import annotations

import datetime
import itertools
import random
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scenarios.venue.instruments import Instrument, Product, default_instruments
from scenarios.venue.market import (
    FUNDING_INTERVAL_MS,
    FUTURES_KLINE_INTERVALS,
    SPOT_KLINE_INTERVALS,
    ActivityConfig,
    BookSide,
    BookUpdate,
    MarketQueryError,
    MarketState,
    Side,
    Trade,
    kline_close_time,
    kline_open_time,
    next_kline_open_time,
)

T0 = 1_704_070_800_000  # 2024-01-01 01:00 UTC
INSTRUMENTS = default_instruments(T0)
QUIET = ActivityConfig(
    maker_adds_per_step=0, maker_cancels_per_step=0, takers_per_step=0, volatility_ticks=0
)


def instrument(product: Product, kind: str = "PERPETUAL", symbol: str = "BTCUSDT") -> Instrument:
    for candidate in INSTRUMENTS:
        if candidate.product is not product:
            continue
        if product is Product.SPOT and candidate.symbol == symbol:
            return candidate
        if product is not Product.SPOT and candidate.contract_type == kind:
            return candidate
    raise LookupError(product)


def market(
    product: Product = Product.SPOT,
    *,
    kind: str = "PERPETUAL",
    seed: int = 7,
    now_ms: int = T0,
    activity: ActivityConfig | None = None,
    depth_levels: int = 50,
) -> MarketState:
    return MarketState(
        instrument(product, kind),
        rng=random.Random(seed),
        now_ms=now_ms,
        depth_levels=depth_levels,
        activity=activity,
    )


def book(state: MarketState) -> tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]:
    _, bids, asks = state.depth(1_000_000)
    return dict(bids), dict(asks)


def apply(levels: dict[Decimal, Decimal], changes: tuple[tuple[Decimal, Decimal], ...]) -> None:
    for price, quantity in changes:
        if quantity == 0:
            levels.pop(price, None)
        else:
            levels[price] = quantity


def check_book(state: MarketState) -> None:
    spec = state.instrument
    last_update_id, bids, asks = state.depth(1_000_000)
    assert last_update_id == state.update_id
    assert bids, "the bid side emptied"
    assert asks, "the ask side emptied"
    assert bids[0][0] < asks[0][0], "crossed book"
    assert all(a[0] > b[0] for a, b in itertools.pairwise(bids))
    assert all(a[0] < b[0] for a, b in itertools.pairwise(asks))
    for price, quantity in bids + asks:
        assert price % spec.tick_size == 0
        assert spec.min_price <= price <= spec.max_price
        assert quantity > 0
        assert quantity % spec.step_size == 0
    top = state.best_bid_ask()
    assert (top.bid_price, top.bid_quantity) == bids[0]
    assert (top.ask_price, top.ask_quantity) == asks[0]


def mid(state: MarketState) -> Decimal:
    top = state.best_bid_ask()
    return (top.bid_price + top.ask_price) / 2


# --- the opening book ----------------------------------------------------------------------


@pytest.mark.parametrize("spec", INSTRUMENTS, ids=lambda i: f"{i.product.value}-{i.symbol}")
def test_opening_book_is_realistic(spec):
    state = MarketState(spec, rng=random.Random(3), now_ms=T0, depth_levels=40)
    check_book(state)
    _, bids, asks = state.depth(1000)
    assert len(bids) == len(asks) == 40
    spread = (asks[0][0] - bids[0][0]) / spec.tick_size
    assert 1 <= spread <= 3
    assert bids[0][0] <= spec.start_price <= asks[0][0]
    assert state.update_id > 1_000_000
    assert state.last_price == spec.start_price
    assert state.depth(5)[1] == bids[:5]


def test_depth_and_top_agree():
    state = market()
    update_id, bids, asks = state.depth(7)
    assert (bids, asks) == state.top(7)
    assert update_id == state.update_id
    assert len(bids) == 7


# --- the property clients rely on ----------------------------------------------------------

operations = st.lists(
    st.one_of(
        st.tuples(st.just("step"), st.integers(0, 2_000)),
        st.tuples(st.just("snapshot")),
        st.tuples(st.just("set_price"), st.integers(-400, 400)),
        st.tuples(st.just("add"), st.booleans(), st.integers(0, 30), st.integers(1, 40)),
        st.tuples(
            st.just("remove"),
            st.booleans(),
            st.integers(0, 60),
            st.one_of(st.none(), st.integers(1, 40)),
        ),
        st.tuples(st.just("take"), st.booleans(), st.integers(1, 3_000)),
        st.tuples(st.just("advance"), st.integers(0, 20 * 3_600_000)),
    ),
    max_size=60,
)


def run(state: MarketState, ops: list[tuple]) -> list[list[BookUpdate | Trade] | str]:
    """Apply ``ops``, checking every invariant as it goes; return what each op produced."""
    spec = state.instrument
    tick, step = spec.tick_size, spec.step_size
    now = state.now_ms
    snapshots = [(state.update_id, *book(state))]
    last_trade_id = None
    outputs: list[list[BookUpdate | Trade] | str] = []
    for op in ops:
        before_id = state.update_id
        events: list[BookUpdate | Trade] = []
        kind = op[0]
        try:
            if kind == "step":
                now += op[1]
                events = state.step(now)
            elif kind == "snapshot":
                snapshots.append((state.update_id, *book(state)))
            elif kind == "set_price":
                target = mid(state) + op[1] * tick / 2
                events = state.set_price(target, now)
                assert mid(state) == target
            elif kind == "add":
                side = BookSide.BID if op[1] else BookSide.ASK
                top = state.best_bid_ask()
                if side is BookSide.BID:
                    price = top.ask_price - (1 + op[2]) * tick
                else:
                    price = top.bid_price + (1 + op[2]) * tick
                events = [state.add_liquidity(side, price, op[3] * spec.min_qty, now)]
            elif kind == "remove":
                side = BookSide.BID if op[1] else BookSide.ASK
                _, bids, asks = state.depth(1_000_000)
                levels = bids if side is BookSide.BID else asks
                price = levels[op[2] % len(levels)][0]
                quantity = None if op[3] is None else op[3] * spec.min_qty
                update = state.remove_liquidity(side, price, quantity, now)
                assert update is not None
                events = [update]
            elif kind == "take":
                side = Side.BUY if op[1] else Side.SELL
                events = state.take_liquidity(side, op[2] * step, now)
            else:
                now += op[1]
                state.advance_time(now)
        except ValueError as error:
            refusal: ValueError | None = error
        else:
            refusal = None
        if refusal is not None:
            # Only refusals the API documents, and a refusal changes nothing.
            assert kind in ("set_price", "add", "remove"), refusal
            assert state.update_id == before_id
            outputs.append(f"refused: {refusal}")
            check_book(state)
            continue
        outputs.append(events)
        check_book(state)
        expected_id = before_id
        for event in events:
            if isinstance(event, BookUpdate):
                expected_id += 1
                assert event.update_id == expected_id
                assert event.time_ms == now
                assert event.bids or event.asks
                for _, bids, asks in snapshots:
                    apply(bids, event.bids)
                    apply(asks, event.asks)
            else:
                assert event.time_ms == now
                assert event.price % tick == 0
                assert event.quantity > 0
                assert event.quantity % step == 0
                if last_trade_id is not None:
                    assert event.trade_id == last_trade_id + 1
                last_trade_id = event.trade_id
        assert state.update_id == expected_id
        current = book(state)
        for _, bids, asks in snapshots:
            assert (bids, asks) == current
    return outputs


@settings(max_examples=150, deadline=None)
@given(
    index=st.integers(0, len(INSTRUMENTS) - 1),
    seed=st.integers(0, 2**32),
    ops=operations,
)
def test_any_sequence_keeps_the_book_valid_and_diffs_reproduce_it(index, seed, ops):
    spec = INSTRUMENTS[index]
    state = MarketState(spec, rng=random.Random(seed), now_ms=T0, depth_levels=20)
    run(state, ops)


@settings(max_examples=25, deadline=None)
@given(index=st.integers(0, len(INSTRUMENTS) - 1), seed=st.integers(0, 2**32), ops=operations)
def test_same_seed_and_calls_give_identical_output(index, seed, ops):
    spec = INSTRUMENTS[index]
    first = MarketState(spec, rng=random.Random(seed), now_ms=T0, depth_levels=20)
    second = MarketState(spec, rng=random.Random(seed), now_ms=T0, depth_levels=20)
    assert run(first, ops) == run(second, ops)
    assert first.depth(1000) == second.depth(1000)
    assert first.recent_trades(1000) == second.recent_trades(1000)
    assert first.klines("1m") == second.klines("1m")


def test_long_run_keeps_the_book_bounded_and_moving():
    state = market(depth_levels=30)
    now = T0
    diff_book = book(state)
    start_mid = mid(state)
    mids = set()
    for _ in range(3_000):
        now += 100
        for event in state.step(now):
            if isinstance(event, BookUpdate):
                apply(diff_book[0], event.bids)
                apply(diff_book[1], event.asks)
        mids.add(mid(state))
    check_book(state)
    assert diff_book == book(state)
    _, bids, asks = state.depth(1_000_000)
    assert 15 <= len(bids) <= 60
    assert 15 <= len(asks) <= 60
    assert len(mids) > 20, "the mid price should wander"
    assert abs(mid(state) - start_mid) < start_mid / 100
    assert len(state.recent_trades(100_000)) > 1_000


def test_different_seeds_differ():
    first, second = market(seed=1), market(seed=2)
    assert [first.step(T0 + 100 * i) for i in range(1, 20)] != [
        second.step(T0 + 100 * i) for i in range(1, 20)
    ]


def test_time_never_goes_backwards():
    state = market()
    state.step(T0 + 10_000)
    events = state.step(T0 + 5_000)  # e.g. an injected clock skew
    assert all(event.time_ms == T0 + 10_000 for event in events)
    assert state.now_ms == T0 + 10_000


# --- control hooks -------------------------------------------------------------------------


def test_set_price_moves_the_mid_and_the_last_price():
    state = market(activity=QUIET)
    target = mid(state).quantize(Decimal("0.01")) + Decimal("250.00")
    events = state.set_price(target, T0 + 1)
    trades = [event for event in events if isinstance(event, Trade)]
    assert trades
    assert all(not trade.buyer_is_maker for trade in trades)  # a buyer lifted the offers
    assert trades[-1].price == target
    assert state.last_price == target
    top = state.best_bid_ask()
    assert top.bid_price == target - Decimal("0.01")
    assert top.ask_price == target + Decimal("0.01")
    assert isinstance(events[-1], BookUpdate)
    down = target - Decimal("1000.005")  # a half tick: bid and ask straddle it
    events = state.set_price(down, T0 + 2)
    assert state.last_price == down + Decimal("0.005")
    assert all(e.buyer_is_maker for e in events if isinstance(e, Trade))
    assert mid(state) == down
    check_book(state)


def test_set_price_within_the_spread_trades_nothing():
    state = market(activity=QUIET)
    _, _, asks = state.depth(10)
    for price, _ in asks[:6]:
        state.remove_liquidity(BookSide.ASK, price, None, T0)
    top = state.best_bid_ask()
    assert top.ask_price - top.bid_price >= Decimal("0.07")
    target = top.bid_price + Decimal("0.035")
    events = state.set_price(target, T0 + 1)
    assert not [event for event in events if isinstance(event, Trade)]
    assert mid(state) == target
    assert state.last_price == state.instrument.start_price


def test_set_price_refuses_off_grid_or_out_of_range_prices():
    state = market()
    with pytest.raises(ValueError, match="half the tick"):
        state.set_price(Decimal("60000.001"), T0)
    with pytest.raises(ValueError, match="no room"):
        state.set_price(Decimal("0.01"), T0)
    with pytest.raises(ValueError, match="positive"):
        state.set_price(Decimal("-1"), T0)


def test_add_and_remove_liquidity():
    state = market(activity=QUIET)
    top = state.best_bid_ask()
    price = top.bid_price - Decimal("0.01") * 500
    update = state.add_liquidity(BookSide.BID, price, Decimal("1.5"), T0 + 5)
    assert update.bids == ((price, Decimal("1.5")),)
    assert update.asks == ()
    assert update.time_ms == T0 + 5
    update = state.add_liquidity(BookSide.BID, price, Decimal("0.5"), T0 + 5)
    assert update.bids == ((price, Decimal("2.0")),)
    update = state.remove_liquidity(BookSide.BID, price, Decimal("0.7"), T0 + 6)
    assert update is not None
    assert update.bids == ((price, Decimal("1.3")),)
    update = state.remove_liquidity(BookSide.BID, price, None, T0 + 6)
    assert update is not None
    assert update.bids == ((price, Decimal(0)),)
    assert state.remove_liquidity(BookSide.BID, price, None, T0 + 6) is None
    with pytest.raises(ValueError, match="cross"):
        state.add_liquidity(BookSide.BID, top.ask_price, Decimal(1), T0 + 7)
    with pytest.raises(ValueError, match="cross"):
        state.add_liquidity(BookSide.ASK, top.bid_price, Decimal(1), T0 + 7)
    with pytest.raises(ValueError, match="tick"):
        state.add_liquidity(BookSide.BID, price + Decimal("0.001"), Decimal(1), T0 + 7)
    with pytest.raises(ValueError, match="step"):
        state.add_liquidity(BookSide.BID, price, Decimal("0.000001"), T0 + 7)
    with pytest.raises(ValueError, match="Decimal"):
        state.add_liquidity(BookSide.BID, 100.0, Decimal(1), T0 + 7)  # type: ignore[arg-type]
    check_book(state)


def test_the_last_level_of_a_side_cannot_be_removed():
    state = market(activity=QUIET, depth_levels=1)
    top = state.best_bid_ask()
    with pytest.raises(ValueError, match="last"):
        state.remove_liquidity(BookSide.ASK, top.ask_price, None, T0)
    check_book(state)


def test_taking_a_whole_side_refills_it_in_the_same_update():
    state = market(activity=QUIET, depth_levels=5)
    _, _, asks = state.depth(100)
    total = sum(quantity for _, quantity in asks)
    events = state.take_liquidity(Side.BUY, total + Decimal("1"), T0 + 1)
    trades = [event for event in events if isinstance(event, Trade)]
    assert sum(trade.quantity for trade in trades) == total
    assert [event for event in events if isinstance(event, BookUpdate)] == [events[-1]]
    check_book(state)
    assert state.best_bid_ask().ask_price > asks[-1][0]


def test_take_liquidity_respects_a_limit_price():
    state = market(activity=QUIET)
    _, _, asks = state.depth(100)
    limit = asks[2][0]
    events = state.take_liquidity(Side.BUY, Decimal(1000), T0 + 1, limit_price=limit)
    trades = [event for event in events if isinstance(event, Trade)]
    assert {trade.price for trade in trades} == {price for price, _ in asks[:3]}
    assert state.best_bid_ask().ask_price == asks[3][0]
    assert state.take_liquidity(Side.SELL, Decimal(1), T0 + 2, limit_price=limit) == []


# --- trades and aggregation ----------------------------------------------------------------


def test_fills_against_several_makers_at_one_price_aggregate():
    state = market(activity=QUIET)
    _, _, asks = state.depth(10)
    best, resting = asks[0]
    state.add_liquidity(BookSide.ASK, best, Decimal("0.01"), T0 + 1)
    state.add_liquidity(BookSide.ASK, best, Decimal("0.02"), T0 + 1)
    level = resting + Decimal("0.03")
    events = state.take_liquidity(Side.BUY, level + Decimal("0.00001"), T0 + 2)
    trades = [event for event in events if isinstance(event, Trade)]
    assert [trade.price for trade in trades] == [best, best, best, asks[1][0]]
    assert [trade.quantity for trade in trades] == [
        resting,
        Decimal("0.01"),
        Decimal("0.02"),
        Decimal("0.00001"),
    ]
    aggs = state.agg_trades(limit=10)
    assert len(aggs) == 2
    assert aggs[0].price == best
    assert aggs[0].quantity == level
    assert (aggs[0].first_trade_id, aggs[0].last_trade_id) == (
        trades[0].trade_id,
        trades[2].trade_id,
    )
    assert (aggs[1].first_trade_id, aggs[1].last_trade_id) == (trades[3].trade_id,) * 2
    assert aggs[1].agg_id == aggs[0].agg_id + 1
    assert not aggs[0].buyer_is_maker
    # Another taker at the same price is another aggregate.
    state.take_liquidity(Side.BUY, Decimal("0.00001"), T0 + 2)
    assert len(state.agg_trades(limit=10)) == 3


def test_agg_trades_partition_the_trades_by_taker_price_and_side():
    state = market(seed=11)
    now = T0
    for _ in range(600):
        now += 250
        state.step(now)
    trades = {trade.trade_id: trade for trade in state.recent_trades(100_000)}
    aggs = state.agg_trades(limit=100_000)
    assert aggs[0].first_trade_id == min(trades)
    assert aggs[-1].last_trade_id == max(trades)
    for previous, agg in itertools.pairwise(aggs):
        assert agg.agg_id == previous.agg_id + 1
        assert agg.first_trade_id == previous.last_trade_id + 1
        last = trades[previous.last_trade_id]
        first = trades[agg.first_trade_id]
        assert (last.taker_order_id, last.price, last.buyer_is_maker) != (
            first.taker_order_id,
            first.price,
            first.buyer_is_maker,
        )
    for agg in aggs:
        members = [trades[i] for i in range(agg.first_trade_id, agg.last_trade_id + 1)]
        assert sum(member.quantity for member in members) == agg.quantity
        assert {(m.taker_order_id, m.price, m.buyer_is_maker, m.time_ms) for m in members} == {
            (members[0].taker_order_id, agg.price, agg.buyer_is_maker, agg.time_ms)
        }
    assert any(agg.last_trade_id > agg.first_trade_id for agg in aggs)


def test_agg_trade_selection_follows_binance():
    state = market(seed=5)
    now = T0
    for _ in range(1_000):
        now += 10_000  # 10 s per step: 2h47m in all
        state.step(now)
    everything = state.agg_trades(limit=100_000)
    assert state.agg_trades() == everything[-500:]
    start, end = T0 + 1_800_000, T0 + 1_800_000 + 3_600_000
    window = state.agg_trades(start_ms=start, end_ms=end, limit=1000)  # exactly 1 h: allowed
    assert window == [a for a in everything if start <= a.time_ms <= end][:1000]
    assert (
        state.agg_trades(start_ms=start, limit=3)
        == [a for a in everything if a.time_ms >= start][:3]
    )
    assert state.agg_trades(end_ms=end, limit=3) == [a for a in everything if a.time_ms <= end][-3:]
    middle = everything[len(everything) // 2]
    assert state.agg_trades(from_id=middle.agg_id, limit=2) == [
        middle,
        everything[len(everything) // 2 + 1],
    ]
    with pytest.raises(MarketQueryError) as caught:
        state.agg_trades(start_ms=start, end_ms=end + 1)
    assert caught.value.code == -1127
    with pytest.raises(MarketQueryError):
        state.agg_trades(limit=0)


def test_recent_and_historical_trades():
    state = market(seed=9)
    now = T0
    for _ in range(200):
        now += 100
        state.step(now)
    trades = state.recent_trades(100_000)
    ids = [trade.trade_id for trade in trades]
    assert ids == list(range(ids[0], ids[0] + len(ids)))
    assert ids[0] > 1_000_000
    assert state.recent_trades(5) == trades[-5:]
    assert state.historical_trades(ids[10], 3) == trades[10:13]
    assert state.historical_trades(ids[0] - 50, 2) == trades[:2]
    assert state.historical_trades(ids[-1] + 1, 5) == []
    assert state.historical_trades(None, 4) == trades[-4:]
    for trade in trades:
        assert trade.quote_quantity == trade.price * trade.quantity


def test_coinm_trades_carry_the_base_amount():
    state = market(Product.COINM, activity=QUIET)
    events = state.take_liquidity(Side.SELL, Decimal(3), T0 + 1)
    trades = [event for event in events if isinstance(event, Trade)]
    assert trades
    for trade in trades:
        expected = trade.quantity * 100 / trade.price
        assert trade.quote_quantity == expected.quantize(Decimal("1E-8"), rounding="ROUND_DOWN")
        assert trade.buyer_is_maker


def test_memory_stays_bounded():
    activity = ActivityConfig(max_trades=50, max_klines=5, max_levels=25)
    state = market(activity=activity, depth_levels=20)
    now = T0
    for _ in range(300):
        now += 100
        state.step(now)
    assert len(state.recent_trades(10_000)) == 50
    assert len(state.agg_trades(limit=10_000)) <= 50
    _, bids, asks = state.depth(10_000)
    assert len(bids) <= 25
    assert len(asks) <= 25
    seconds = state.klines("1s", limit=1000)
    assert len([candle for candle in seconds if candle.trade_count]) <= 5
    assert seconds[0].open_time_ms > T0 + 10_000  # older candles are gone
    assert seconds[-1].open_time_ms == kline_open_time("1s", now)
    # One-minute candles always cover the 24 h ticker window.
    assert len(state.klines("1m", limit=1000)) == 1


# --- klines --------------------------------------------------------------------------------


def utc_ms(*parts: int) -> int:
    return int(datetime.datetime(*parts, tzinfo=datetime.UTC).timestamp() * 1000)


def test_kline_boundaries_follow_binance():
    moment = utc_ms(2024, 2, 15, 13, 47, 21) + 123
    assert kline_open_time("1s", moment) == moment - 123
    assert kline_open_time("1m", moment) == utc_ms(2024, 2, 15, 13, 47)
    assert kline_open_time("4h", moment) == utc_ms(2024, 2, 15, 12)
    assert kline_open_time("1d", moment) == utc_ms(2024, 2, 15)
    assert kline_open_time("1w", moment) == utc_ms(2024, 2, 12)  # Monday
    assert kline_open_time("1M", moment) == utc_ms(2024, 2, 1)
    assert kline_close_time("1M", utc_ms(2024, 2, 1)) == utc_ms(2024, 3, 1) - 1  # leap year
    assert kline_close_time("1M", utc_ms(2023, 12, 1)) == utc_ms(2024, 1, 1) - 1
    assert kline_close_time("1m", utc_ms(2024, 1, 1)) == utc_ms(2024, 1, 1) + 59_999
    # The weekly fixture kline opens on a Monday and closes 7 days later minus 1 ms.
    assert kline_open_time("1w", 1499040000000) == 1499040000000
    assert kline_close_time("1w", 1499040000000) == 1499644799999
    with pytest.raises(MarketQueryError):
        kline_open_time("2d", moment)


@given(
    interval=st.sampled_from(SPOT_KLINE_INTERVALS),
    moment=st.integers(min_value=0, max_value=4_102_444_800_000),
)
def test_every_interval_tiles_time(interval, moment):
    opened = kline_open_time(interval, moment)
    following = next_kline_open_time(interval, opened)
    assert opened <= moment <= kline_close_time(interval, opened)
    assert kline_close_time(interval, opened) == following - 1
    assert kline_open_time(interval, following) == following
    assert kline_open_time(interval, following - 1) == opened


def test_empty_intervals_carry_the_previous_close():
    state = market(activity=QUIET)
    start = utc_ms(2024, 1, 1, 1, 0, 10)
    first = [
        e for e in state.take_liquidity(Side.BUY, Decimal("0.5"), start) if isinstance(e, Trade)
    ]
    later = start + 3 * 60_000 + 30_000
    second = [
        e for e in state.take_liquidity(Side.SELL, Decimal("0.2"), later) if isinstance(e, Trade)
    ]
    candles = state.klines("1m", start_ms=utc_ms(2024, 1, 1, 1))
    assert [c.open_time_ms for c in candles] == [utc_ms(2024, 1, 1, 1, m) for m in range(4)]
    assert [c.close_time_ms for c in candles] == [c.open_time_ms + 59_999 for c in candles]
    full, *empty, last = candles
    assert full.trade_count == len(first)
    assert full.volume == Decimal("0.5")
    assert full.taker_buy_base_volume == Decimal("0.5")
    assert full.open == first[0].price
    assert full.close == first[-1].price
    assert full.high == max(t.price for t in first)
    assert (full.first_trade_id, full.last_trade_id) == (first[0].trade_id, first[-1].trade_id)
    for candle in empty:
        assert candle.open == candle.high == candle.low == candle.close == full.close
        assert candle.volume == candle.quote_volume == 0
        assert candle.trade_count == 0
        assert (candle.first_trade_id, candle.last_trade_id) == (-1, -1)
    assert last.trade_count == len(second)
    assert last.open == second[0].price
    assert last.taker_buy_base_volume == 0
    # The current (open) candle is served, empty ones up to now too.
    assert state.klines("1m", now_ms=later + 120_000)[-1].open_time_ms == utc_ms(2024, 1, 1, 1, 5)
    assert state.klines("1m", now_ms=later + 120_000)[-1].close == last.close


def test_klines_before_any_trade_sit_at_the_start_price():
    state = market(activity=QUIET)
    candles = state.klines("1h", now_ms=T0 + 5 * 3_600_000 + 1)
    assert [c.open_time_ms for c in candles] == [T0 + h * 3_600_000 for h in range(6)]
    assert {c.close for c in candles} == {state.instrument.start_price}
    assert state.klines("1m", end_ms=T0 - 1) == []


def test_kline_selection_by_start_end_and_limit():
    state = market(seed=4)
    now = T0
    for _ in range(600):
        now += 1_000
        state.step(now)
    everything = state.klines("1m", limit=1000)
    assert len(everything) == 11  # 01:00 .. 01:10
    assert state.klines("1m", limit=3) == everything[-3:]
    assert state.klines("1m", start_ms=T0 + 1, limit=2) == everything[1:3]  # open >= start
    assert state.klines("1m", start_ms=T0, limit=2) == everything[:2]
    assert state.klines("1m", end_ms=T0 + 150_000, limit=2) == everything[1:3]
    assert state.klines("1m", start_ms=T0 + 60_000, end_ms=T0 + 180_000) == everything[1:4]
    assert state.klines("1m", start_ms=now + 60_000) == []
    five = state.klines("5m", limit=1000)
    for candle in five:
        inside = [
            c for c in everything if candle.open_time_ms <= c.open_time_ms <= candle.close_time_ms
        ]
        assert candle.volume == sum(c.volume for c in inside)
        assert candle.trade_count == sum(c.trade_count for c in inside)
        assert candle.high == max(c.high for c in inside)
        assert candle.open == inside[0].open
        assert candle.close == inside[-1].close
    trades = state.recent_trades(100_000)
    assert sum(c.trade_count for c in everything) == len(trades)
    assert sum(c.quote_volume for c in everything) == sum(t.quote_quantity for t in trades)
    assert sum(c.taker_buy_base_volume for c in everything) == sum(
        t.quantity for t in trades if not t.buyer_is_maker
    )


def test_futures_have_no_one_second_klines():
    state = market(Product.USDM)
    assert "1s" not in FUTURES_KLINE_INTERVALS
    with pytest.raises(MarketQueryError) as caught:
        state.klines("1s")
    assert caught.value.code == -1120
    assert market().klines("1s", limit=1)


@pytest.mark.parametrize("interval", SPOT_KLINE_INTERVALS)
def test_every_interval_is_served(interval):
    state = market(seed=2)
    state.step(T0 + 500)
    candles = state.klines(interval, limit=5)
    assert candles
    assert candles[-1].open_time_ms == kline_open_time(interval, T0 + 500)
    assert candles[-1].close_time_ms == kline_close_time(interval, candles[-1].open_time_ms)


# --- statistics ----------------------------------------------------------------------------


def test_ticker_24hr_summarises_the_window():
    state = market(seed=8)
    now = T0
    for _ in range(500):
        now += 2_000
        state.step(now)
    trades = state.recent_trades(100_000)
    ticker = state.ticker_24hr(now)
    assert ticker.trade_count == len(trades)
    assert (ticker.first_trade_id, ticker.last_trade_id) == (
        trades[0].trade_id,
        trades[-1].trade_id,
    )
    assert ticker.open_price == trades[0].price
    assert ticker.last_price == trades[-1].price
    assert ticker.last_quantity == trades[-1].quantity
    assert ticker.high_price == max(t.price for t in trades)
    assert ticker.low_price == min(t.price for t in trades)
    assert ticker.volume == sum(t.quantity for t in trades)
    assert ticker.price_change == ticker.last_price - ticker.open_price
    assert ticker.weighted_avg_price == (ticker.quote_volume / ticker.volume).quantize(
        Decimal("1E-8")
    )
    assert ticker.prev_close_price == state.instrument.start_price
    assert ticker.close_time_ms == now
    assert ticker.open_time_ms == now - 86_400_000
    top = state.best_bid_ask()
    assert (ticker.bid_price, ticker.ask_price) == (top.bid_price, top.ask_price)
    # A day and more later the window holds no trade.
    idle = state.ticker_24hr(now + 2 * 86_400_000)
    assert idle.trade_count == 0
    assert (idle.first_trade_id, idle.last_trade_id) == (-1, -1)
    assert idle.volume == 0
    assert idle.open_price == idle.last_price == trades[-1].price
    assert idle.prev_close_price == trades[-1].price


def test_avg_price_is_the_five_minute_vwap():
    state = market(activity=QUIET)
    assert state.avg_price(T0).price == state.instrument.start_price
    state.take_liquidity(Side.BUY, Decimal("0.3"), T0 + 1_000)
    state.take_liquidity(Side.SELL, Decimal("0.1"), T0 + 400_000)
    trades = state.recent_trades()
    recent = [t for t in trades if t.time_ms > T0 + 400_000 - 300_000]
    average = state.avg_price(T0 + 400_000)
    expected = sum(t.price * t.quantity for t in recent) / sum(t.quantity for t in recent)
    assert average.mins == 5
    assert average.price == expected.quantize(Decimal("1E-8"))
    assert average.close_time_ms == T0 + 400_000


# --- futures -------------------------------------------------------------------------------


@given(moment=st.integers(min_value=0, max_value=4_102_444_800_000))
def test_funding_times_are_00_08_16_utc(moment):
    state = market(Product.USDM)
    due = state.next_funding_time_ms(moment)
    assert moment < due <= moment + FUNDING_INTERVAL_MS
    at = datetime.datetime.fromtimestamp(due // 1000, datetime.UTC)
    assert due % 1000 == 0
    assert (at.hour, at.minute, at.second) in {(0, 0, 0), (8, 0, 0), (16, 0, 0)}


def test_funding_settles_every_eight_hours_since_the_start():
    state = market(Product.USDM)
    assert state.funding_history() == []
    now = T0
    for _ in range(31):  # to 08:00 the next day
        now += 3_600_000
        state.step(now)
    history = state.funding_history()
    expected = [
        utc_ms(2024, 1, 1, 8),
        utc_ms(2024, 1, 1, 16),
        utc_ms(2024, 1, 2),
        utc_ms(2024, 1, 2, 8),
    ]
    assert [record.funding_time_ms for record in history] == expected
    for record in history:
        assert abs(record.funding_rate) <= Decimal("0.0075")
        assert record.funding_rate == record.funding_rate.quantize(Decimal("1E-8"))
        assert abs(record.mark_price - state.instrument.start_price) < 1000
    assert state.funding_history(start_ms=expected[1], limit=2) == history[1:3]
    assert state.funding_history(end_ms=expected[2], limit=2) == history[1:3]
    assert state.funding_history(start_ms=expected[1], end_ms=expected[1]) == history[1:2]
    # Time passing without activity also settles funding.
    state.advance_time(now + 24 * 3_600_000)
    assert len(state.funding_history()) == 7


def test_premium_index_is_consistent():
    lively = ActivityConfig(premium_step=Decimal("0.0002"), max_premium=Decimal("0.002"))
    state = market(Product.USDM, seed=3, activity=lively)
    now = T0
    rates = set()
    for _ in range(400):
        now += 1_000
        state.step(now)
        rates.add(state.last_funding_rate(now))
    top = state.best_bid_ask()
    premium = state.premium_index(now)
    assert premium.time_ms == now
    assert premium.next_funding_time_ms == utc_ms(2024, 1, 1, 8)
    assert premium.interest_rate == Decimal("0.0001")
    assert premium.mark_price == state.mark_price(now)
    assert premium.index_price == state.index_price(now)
    assert premium.estimated_settle_price == state.estimated_settle_price(now)
    assert premium.last_funding_rate == state.last_funding_rate(now)
    # The median of (funding-adjusted index, mid, last price) lies between mid and last.
    low = min(top.bid_price, state.last_price)
    high = max(top.ask_price, state.last_price)
    assert low <= premium.mark_price <= high
    assert abs(premium.index_price - mid(state)) <= mid(state) * Decimal("0.0021")
    assert len(rates) > 1
    assert all(abs(rate) < Decimal("0.002") for rate in rates)


def test_default_funding_rates_stay_near_the_interest_rate():
    state = market(Product.USDM, seed=3)
    now = T0
    for _ in range(400):
        now += 1_000
        state.step(now)
        rate = state.last_funding_rate(now)
        assert rate is not None
        assert Decimal("-0.0005") <= rate <= Decimal("0.0006")
        assert abs(state.index_price(now) - mid(state)) <= mid(state) * Decimal("0.0011")


def test_delivery_contracts_have_no_funding():
    state = market(Product.COINM, kind="CURRENT_QUARTER")
    state.advance_time(T0 + 3 * 86_400_000)
    premium = state.premium_index(T0 + 3 * 86_400_000)
    assert premium.last_funding_rate is None
    assert premium.interest_rate is None
    assert premium.next_funding_time_ms == 0
    assert state.funding_history() == []
    assert premium.mark_price > 0


def test_open_interest_moves_with_trading():
    state = market(Product.USDM, seed=6)
    start = state.open_interest()
    assert start > 0
    assert start % state.instrument.step_size == 0
    seen = {start}
    now = T0
    for _ in range(100):
        now += 500
        state.step(now)
        seen.add(state.open_interest())
    assert len(seen) > 10
    assert min(seen) >= start / 2


def test_spot_markets_have_no_futures_data():
    state = market()
    for call in (
        lambda: state.mark_price(T0),
        lambda: state.index_price(T0),
        lambda: state.premium_index(T0),
        lambda: state.funding_history(),
        lambda: state.open_interest(),
        lambda: state.next_funding_time_ms(T0),
    ):
        with pytest.raises(ValueError, match="spot"):
            call()


def test_activity_config_is_checked():
    with pytest.raises(ValueError, match="near_levels"):
        ActivityConfig(near_levels=0)
    with pytest.raises(ValueError, match="order_notional"):
        ActivityConfig(order_notional=100.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="depth_levels"):
        market(depth_levels=0)
