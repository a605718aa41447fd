"""User orders on the shared book: resting, matching, self-trade prevention, icebergs."""

from __future__ import annotations

import random
from decimal import Decimal

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scenarios.venue.instruments import Product
from scenarios.venue.market import (
    ActivityConfig,
    BookSide,
    BookUpdate,
    MakerFill,
    MarketState,
    Side,
    StpAction,
    Trade,
)
from tests.venue.test_market import QUIET, T0, instrument


@attrs.define(eq=False)
class Order:
    name: str
    account: str = "a"


def quiet_market(seed: int = 3) -> MarketState:
    return MarketState(instrument(Product.SPOT), rng=random.Random(seed), now_ms=T0, activity=QUIET)


def inside_bid(market: MarketState) -> Decimal:
    """A bid price inside the spread (widened first if needed): met before anything else."""
    tick = market.instrument.tick_size
    while True:
        best_bid, best_ask = market.best(BookSide.BID), market.best(BookSide.ASK)
        assert best_bid is not None
        assert best_ask is not None
        if best_ask - best_bid >= 2 * tick:
            return best_bid + tick
        market.remove_liquidity(BookSide.ASK, best_ask, None, T0)


def apply(book: dict[Decimal, Decimal], update: BookUpdate, side: BookSide) -> None:
    for price, quantity in update.bids if side is BookSide.BID else update.asks:
        if quantity == 0:
            book.pop(price, None)
        else:
            book[price] = quantity


def test_rest_shows_in_depth_and_withdraw_removes_it() -> None:
    market = quiet_market()
    tick = market.instrument.tick_size
    step = market.instrument.step_size
    best_bid = market.best(BookSide.BID)
    assert best_bid is not None
    before = dict(market.top(100)[0])
    order = Order("bid")
    price = best_bid - 40 * tick  # below the book's levels or joining one
    update = market.rest(order, Side.BUY, price, 3 * step, T0)
    assert update.update_id == market.update_id
    after = dict(market.top(100)[0])
    assert after[price] == before.get(price, Decimal(0)) + 3 * step
    assert market.resting(order) == 3 * step
    removed = market.withdraw(order, T0)
    assert removed is not None
    assert dict(market.top(100)[0]).get(price, Decimal(0)) == before.get(price, Decimal(0))
    assert market.resting(order) is None
    assert market.withdraw(order, T0) is None


def test_rest_refuses_to_cross_and_double_rest() -> None:
    market = quiet_market()
    best_ask = market.best(BookSide.ASK)
    assert best_ask is not None
    with pytest.raises(ValueError, match="cross"):
        market.rest(Order("x"), Side.BUY, best_ask, market.instrument.step_size, T0)
    order = Order("y")
    price = best_ask + market.instrument.tick_size
    market.rest(order, Side.SELL, price, market.instrument.step_size, T0)
    with pytest.raises(ValueError, match="already resting"):
        market.rest(order, Side.SELL, price, market.instrument.step_size, T0)


def test_match_takes_background_first_by_time_then_user_order() -> None:
    market = quiet_market()
    step = market.instrument.step_size
    best_ask = market.best(BookSide.ASK)
    assert best_ask is not None
    level = dict(market.top(1)[1])[best_ask]
    resting = Order("maker", account="b")
    market.rest(resting, Side.SELL, best_ask, 2 * step, T0)
    result = market.match(Side.BUY, level + step, T0 + 1, limit_price=best_ask)
    assert result.filled == level + step
    assert all(trade.price == best_ask for trade in result.trades)
    assert result.makers[-1] is resting
    assert all(maker is None for maker in result.makers[:-1])
    assert [fill.order for fill in result.maker_fills] == [resting]
    assert result.maker_fills[0].remaining == step
    assert market.resting(resting) == step
    assert isinstance(result.events[-1], BookUpdate)
    assert all(isinstance(event, Trade) for event in result.events[:-1])


def test_match_respects_limit_and_returns_unfilled_to_the_caller() -> None:
    market = quiet_market()
    best_ask = market.best(BookSide.ASK)
    assert best_ask is not None
    available = market.available(Side.BUY, best_ask)
    result = market.match(Side.BUY, available * 10, T0, limit_price=best_ask)
    assert result.filled == available
    assert market.best(BookSide.ASK) > best_ask


def test_quote_budget_spends_at_most_the_budget_in_whole_steps() -> None:
    market = quiet_market()
    budget = Decimal("1234.5")
    result = market.match(Side.BUY, None, T0, quote_budget=budget)
    spent = sum((t.price * t.quantity for t in result.trades), Decimal(0))
    assert 0 < spent <= budget
    cheapest_next = market.best(BookSide.ASK)
    assert cheapest_next is not None
    assert budget - spent < cheapest_next * market.instrument.step_size * 2
    assert all(t.quantity % market.instrument.step_size == 0 for t in result.trades)


def own_orders(account: str, action: StpAction):
    return lambda order: action if order.account == account else None


@pytest.mark.parametrize(
    ("action", "maker_left", "taker_filled", "stopped"),
    [
        (StpAction.EXPIRE_TAKER, 5, 0, True),
        (StpAction.EXPIRE_MAKER, 0, 3, False),
        (StpAction.EXPIRE_BOTH, 0, 0, True),
        (StpAction.DECREMENT, 2, 0, False),
    ],
)
def test_self_trade_prevention(
    action: StpAction, maker_left: int, taker_filled: int, stopped: bool
) -> None:
    market = quiet_market()
    step = market.instrument.step_size
    price = inside_bid(market)  # the new best bid: met first
    mine = Order("mine", account="me")
    market.rest(mine, Side.BUY, price, 5 * step, T0)
    result = market.match(Side.SELL, 3 * step, T0, self_trade=own_orders("me", action))
    assert result.filled == taker_filled * step
    assert result.stopped_by_stp is stopped
    assert len(result.preventions) == 1
    prevention = result.preventions[0]
    assert prevention.order is mine
    assert prevention.action is action
    assert prevention.quantity == 3 * step
    assert prevention.remaining == maker_left * step
    assert market.resting(mine) == (maker_left * step if maker_left else None)
    assert result.filled + result.prevented <= 3 * step


def test_other_accounts_trade_normally() -> None:
    market = quiet_market()
    step = market.instrument.step_size
    price = inside_bid(market)
    theirs = Order("theirs", account="them")
    market.rest(theirs, Side.BUY, price, 5 * step, T0)
    result = market.match(
        Side.SELL, 3 * step, T0, self_trade=own_orders("me", StpAction.EXPIRE_TAKER)
    )
    assert result.preventions == []
    assert result.maker_fills[0].order is theirs


def test_iceberg_shows_a_slice_and_refreshes_at_the_back() -> None:
    market = quiet_market()
    step = market.instrument.step_size
    price = inside_bid(market)  # an ask there is inside the spread too
    iceberg = Order("iceberg")
    other = Order("other", account="b")
    market.rest(iceberg, Side.SELL, price, 10 * step, T0, visible=2 * step)
    market.rest(other, Side.SELL, price, 1 * step, T0)
    assert dict(market.top(1)[1]) == {price: 3 * step}
    result = market.match(Side.BUY, 3 * step, T0, limit_price=price)
    # First the iceberg's visible slice, then the order behind it (the refreshed slice went
    # to the back of the queue).
    assert [fill.order.name for fill in result.maker_fills] == ["iceberg", "other"]
    assert result.filled == 3 * step
    assert market.resting(iceberg) == 8 * step
    assert dict(market.top(1)[1]) == {price: 2 * step}
    assert market.available(Side.BUY, price) == 8 * step


def test_reduce_keeps_priority() -> None:
    market = quiet_market()
    step = market.instrument.step_size
    price = inside_bid(market)
    first, second = Order("first"), Order("second", account="b")
    market.rest(first, Side.SELL, price, 4 * step, T0)
    market.rest(second, Side.SELL, price, 4 * step, T0)
    market.reduce(first, 1 * step, T0)
    with pytest.raises(ValueError, match="must lower"):
        market.reduce(first, 1 * step, T0)
    result = market.match(Side.BUY, 2 * step, T0, limit_price=price)
    assert [fill.order.name for fill in result.maker_fills] == ["first", "second"]


def test_background_cancels_and_trimming_never_remove_user_orders() -> None:
    activity = ActivityConfig(takers_per_step=0, maker_cancels_per_step=5, max_levels=20)
    market = MarketState(
        instrument(Product.SPOT), rng=random.Random(11), now_ms=T0, activity=activity
    )
    step, tick = market.instrument.step_size, market.instrument.tick_size
    best_bid = market.best(BookSide.BID)
    assert best_bid is not None
    far = Order("far")
    market.rest(far, Side.BUY, best_bid - 500 * tick, step, T0)
    for n in range(1, 300):
        assert not any(isinstance(e, MakerFill) for e in market.step(T0 + n * 100))
    assert market.resting(far) == step
    assert dict(market.top(1000)[0])[best_bid - 500 * tick] >= step


def test_background_takers_fill_user_orders() -> None:
    activity = ActivityConfig(takers_per_step=3)
    market = MarketState(
        instrument(Product.SPOT), rng=random.Random(11), now_ms=T0, activity=activity
    )
    step = market.instrument.step_size
    near = Order("near")
    total = 100_000 * step
    market.rest(near, Side.BUY, inside_bid(market), total, T0)
    fills: list[MakerFill] = []
    for n in range(1, 200):
        fills += [e for e in market.step(T0 + n * 100) if isinstance(e, MakerFill)]
    assert fills, "takers should have reached the order at the best bid"
    assert all(fill.order is near for fill in fills)
    assert all(fill.trade.buyer_is_maker for fill in fills)
    filled = sum((fill.trade.quantity for fill in fills), Decimal(0))
    assert (market.resting(near) or Decimal(0)) == total - filled
    assert fills[-1].remaining == total - filled


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    actions=st.lists(
        st.tuples(
            st.sampled_from(["rest", "withdraw", "match", "step"]),
            st.sampled_from([Side.BUY, Side.SELL]),
            st.integers(-5, 5),
            st.integers(1, 40),
            st.sampled_from([None, StpAction.EXPIRE_MAKER, StpAction.DECREMENT]),
        ),
        max_size=40,
    ),
)
def test_user_orders_are_conserved_and_the_book_replays(seed: int, actions: list) -> None:
    """Every user order's quantity is accounted for (on the book, filled or prevented);
    the book never crosses; a snapshot plus every change-set reproduces the book."""
    market = MarketState(
        instrument(Product.SPOT),
        rng=random.Random(seed),
        now_ms=T0,
        activity=ActivityConfig(takers_per_step=2),
    )
    tick, step = market.instrument.tick_size, market.instrument.step_size
    _, bids, asks = market.depth(5000)
    book = {BookSide.BID: dict(bids), BookSide.ASK: dict(asks)}
    orders: dict[int, tuple[Order, Decimal]] = {}
    done: dict[int, Decimal] = {}  # filled + prevented + withdrawn, per order
    now = T0

    def record(events: list) -> None:
        for event in events:
            if isinstance(event, BookUpdate):
                apply(book[BookSide.BID], event, BookSide.BID)
                apply(book[BookSide.ASK], event, BookSide.ASK)
            elif isinstance(event, MakerFill):
                done[id(event.order)] += event.trade.quantity

    for number, (kind, side, offset, size, stp) in enumerate(actions):
        now += 50
        if kind == "rest":
            opposite = market.best(BookSide.ASK if side is Side.BUY else BookSide.BID)
            assert opposite is not None
            price = opposite - tick * (1 + abs(offset)) * (1 if side is Side.BUY else -1)
            if price <= 0:
                continue
            order = Order(f"o{number}", account="me" if offset % 2 else "you")
            orders[id(order)] = (order, size * step)
            done[id(order)] = Decimal(0)
            record([market.rest(order, side, price, size * step, now)])
        elif kind == "withdraw" and orders:
            order, _ = list(orders.values())[abs(offset) % len(orders)]
            left = market.resting(order)
            update = market.withdraw(order, now)
            if update is not None:
                done[id(order)] += left
                record([update])
        elif kind == "match":
            rule = None if stp is None else own_orders("me", stp)
            before = {
                key: market.resting(order) or Decimal(0) for key, (order, _) in orders.items()
            }
            result = market.match(side, size * step, now, self_trade=rule)
            record(result.events)
            filled_now: dict[int, Decimal] = {}
            for fill in result.maker_fills:
                filled_now[id(fill.order)] = filled_now.get(id(fill.order), 0) + fill.trade.quantity
                done[id(fill.order)] += fill.trade.quantity
            for prevention in result.preventions:
                key = id(prevention.order)
                after = market.resting(prevention.order) or Decimal(0)
                assert prevention.remaining == after
                gone = before[key] - after - filled_now.get(key, Decimal(0))
                if prevention.action is StpAction.DECREMENT:
                    assert gone == prevention.quantity
                else:
                    assert after == 0
                done[key] += gone
        else:
            record(market.step(now))
        best_bid, best_ask = market.best(BookSide.BID), market.best(BookSide.ASK)
        assert best_bid is not None
        assert best_ask is not None
        assert best_bid < best_ask
    for key, (order, total) in orders.items():
        assert (market.resting(order) or Decimal(0)) + done[key] == total, order.name
    _, bids, asks = market.depth(5000)
    assert book[BookSide.BID] == dict(bids)
    assert book[BookSide.ASK] == dict(asks)


def test_a_limit_taker_that_empties_a_side_can_rest_at_its_limit() -> None:
    market = quiet_market()
    step = market.instrument.step_size
    worst_ask = max(price for price, _ in market.top(1000)[1])
    limit = worst_ask + 10 * market.instrument.tick_size
    everything = market.available(Side.BUY, None)
    result = market.match(Side.BUY, everything + step, T0, limit_price=limit)
    assert result.filled == everything
    best_ask = market.best(BookSide.ASK)
    assert best_ask is not None
    assert best_ask > limit, "the refilled side starts beyond the taker's limit"
    update = market.rest(Order("rest"), Side.BUY, limit, step, T0)
    assert (limit, step) in update.bids


def test_a_side_swept_at_the_price_filter_bound_comes_back() -> None:
    market = MarketState(
        instrument(Product.SPOT), rng=random.Random(5), now_ms=T0, activity=ActivityConfig()
    )
    tick = market.instrument.tick_size
    market.set_price(market.instrument.min_price + 3 * tick, T0)
    for n in range(3):
        everything = market.available(Side.SELL, None)
        if everything:
            market.match(Side.SELL, everything, T0 + n)
    for n in range(1, 50):
        market.step(T0 + n * 100)
        bid, ask = market.best(BookSide.BID), market.best(BookSide.ASK)
        assert bid is not None
        assert ask is not None
        assert bid < ask
