"""Property: random Spot order flows keep the books straight.

Three accounts place limit, market, quote-quantity, stop and OCO orders, cancel and amend
them, with background activity in between. After every flow:

* balances are conserved: per asset, the accounts hold what they started with plus the
  net flow of their fills (a fill against another account cancels out; one against background
  liquidity does not) minus the commissions in ``myTrades``, which add up to what the engine
  collected;
* nothing is negative, and every locked amount is held by an open order (or OCO pair);
* every open priced order that holds its own lock holds exactly what it can still spend: a
  BUY ``remaining x price`` of the quote asset (price improvement and prevented quantity are
  released), a SELL its remaining quantity;
* no order is both open and FILLED, and each order's last executionReport agrees with its
  status and executed quantity;
* every fill is in ``myTrades`` exactly once and in the executionReports exactly once, with
  the same quantity, price and commission.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scenarios.venue import spot_api
from scenarios.venue.errors import VenueError
from scenarios.venue.market import BookSide
from scenarios.venue.spot_model import PRICED_TYPES
from tests.venue.test_spot_support import KEYS, D, Desk

TICK = D("0.01")
STEP = D("0.00001")
#: Refusals a random flow may meet; anything else is a failure.
EXPECTED_CODES = {-2010, -2011, -2013, -2038, -1013}

accounts = st.sampled_from(KEYS)
sides = st.sampled_from(["BUY", "SELL"])
stp_modes = st.sampled_from(["NONE", "EXPIRE_MAKER", "EXPIRE_TAKER", "EXPIRE_BOTH", "DECREMENT"])
quantities = st.integers(min_value=10, max_value=2000)  # in steps: 0.0001 .. 0.02 BTC

operation = st.one_of(
    st.tuples(
        st.just("limit"),
        accounts,
        sides,
        st.integers(min_value=-6, max_value=6),
        quantities,
        st.sampled_from(["GTC", "GTC", "IOC", "FOK"]),
        stp_modes,
        st.sampled_from(["LIMIT", "LIMIT", "LIMIT_MAKER", "ICEBERG"]),
    ),
    st.tuples(st.just("market"), accounts, sides, quantities, stp_modes, st.booleans()),
    st.tuples(st.just("stop"), accounts, sides, st.integers(min_value=1, max_value=40), quantities),
    st.tuples(st.just("oco"), accounts, sides, st.integers(min_value=2, max_value=40), quantities),
    st.tuples(st.just("self"), accounts, sides, quantities, stp_modes, quantities),
    st.tuples(
        st.just("sweep"),
        accounts,
        sides,
        st.integers(min_value=1, max_value=3),
        quantities,
        stp_modes,
    ),
    st.tuples(st.just("cancel"), accounts, st.integers(min_value=0, max_value=5)),
    st.tuples(st.just("amend"), accounts, st.integers(min_value=0, max_value=5)),
    st.tuples(st.just("background"), st.integers(min_value=1, max_value=4)),
    st.tuples(st.just("fund"), accounts, st.sampled_from(["BTC", "USDT"]), st.integers(1, 50)),
)


def _apply(desk: Desk, step: tuple[Any, ...], funded: Counter) -> None:
    kind = step[0]
    market = desk.market()
    if kind == "limit":
        _, account, side, offset, steps, tif, stp, flavour = step
        anchor = desk.best(BookSide.BID if side == "BUY" else BookSide.ASK)
        price = anchor + offset * TICK
        params: dict[str, Any] = {
            "side": side,
            "quantity": str(steps * STEP),
            "price": str(price),
            "selfTradePreventionMode": stp,
        }
        if flavour == "LIMIT_MAKER":
            params["type"] = "LIMIT_MAKER"
        elif flavour == "ICEBERG":
            slice_steps = max(steps // 4, 10)
            params.update(type="LIMIT", timeInForce="GTC", icebergQty=str(slice_steps * STEP))
        else:
            params.update(type="LIMIT", timeInForce=tif)
        desk.order(account, **params)
    elif kind == "market":
        _, account, side, steps, stp, by_quote = step
        amount = {"quoteOrderQty": str(steps)} if by_quote else {"quantity": str(steps * STEP)}
        desk.order(account, side=side, type="MARKET", selfTradePreventionMode=stp, **amount)
    elif kind == "stop":
        _, account, side, distance, steps = step
        last = market.last_price
        stop = last - distance * TICK if side == "SELL" else last + distance * TICK
        limit = stop - 5 * TICK if side == "SELL" else stop + 5 * TICK
        desk.order(
            account,
            side=side,
            type="STOP_LOSS_LIMIT",
            timeInForce="GTC",
            quantity=str(steps * STEP),
            stopPrice=str(stop),
            price=str(limit),
        )
    elif kind == "oco":
        _, account, side, distance, steps = step
        last = market.last_price
        away = distance * TICK
        above, below = (
            ("LIMIT_MAKER", "STOP_LOSS") if side == "SELL" else ("STOP_LOSS", "LIMIT_MAKER")
        )
        params = {"symbol": "BTCUSDT", "side": side, "quantity": str(steps * STEP)}
        params.update({"aboveType": above, "belowType": below})
        params["abovePrice" if above == "LIMIT_MAKER" else "aboveStopPrice"] = str(last + away)
        params["belowPrice" if below == "LIMIT_MAKER" else "belowStopPrice"] = str(last - away)
        desk.do(spot_api.place_oco, account, **params)
    elif kind == "self":
        # A resting order at the back of the best level, then a taker of the same account
        # that eats the level and meets it: self-trade prevention (or a self-trade), the
        # taker's rest meeting more or less than the resting order.
        _, account, side, steps, stp, taker_steps = step
        book_side = BookSide.ASK if side == "SELL" else BookSide.BID
        price = desk.best(book_side)
        bids, asks = market.top(1)
        level = (asks if side == "SELL" else bids)[0][1]
        common = {"type": "LIMIT", "timeInForce": "GTC", "price": str(price)}
        desk.order(account, side=side, quantity=str(steps * STEP), **common)
        other = "BUY" if side == "SELL" else "SELL"
        taker_quantity = level + taker_steps * STEP
        desk.order(
            account, side=other, quantity=str(taker_quantity), selfTradePreventionMode=stp, **common
        )
    elif kind == "sweep":
        # A GTC limit that takes the best ``levels`` of the other side (the first ones at
        # better prices than its own) and rests what is left: price improvement.
        _, account, side, levels, steps, stp = step
        bids, asks = market.top(levels)
        ladder = asks if side == "BUY" else bids
        if not ladder:
            return
        price = ladder[-1][0]
        quantity = sum(size for _, size in ladder) + steps * STEP
        desk.order(
            account,
            side=side,
            type="LIMIT",
            timeInForce="GTC",
            quantity=str(quantity),
            price=str(price),
            selfTradePreventionMode=stp,
        )
    elif kind == "cancel":
        _, account, index = step
        open_orders = desk.do(spot_api.open_orders, account, symbol="BTCUSDT")
        if open_orders:
            chosen = open_orders[index % len(open_orders)]
            desk.do(spot_api.cancel_order, account, symbol="BTCUSDT", orderId=chosen["orderId"])
    elif kind == "amend":
        _, account, index = step
        open_orders = desk.do(spot_api.open_orders, account, symbol="BTCUSDT")
        if open_orders:
            chosen = open_orders[index % len(open_orders)]
            left = D(chosen["origQty"]) - D(chosen["executedQty"])
            new = D(chosen["executedQty"]) + (left / 2).quantize(STEP)
            desk.do(
                spot_api.amend_keep_priority,
                account,
                symbol="BTCUSDT",
                orderId=chosen["orderId"],
                newQty=str(new),
            )
    elif kind == "background":
        for _ in range(step[1]):
            desk.step()
    elif kind == "fund":
        _, account, asset, amount = step
        desk.engine.control_actions()["fund"](
            {"account": account, "asset": asset, "delta": str(amount)}
        )
        funded[asset] += Decimal(amount)


def _check_locks(desk: Desk) -> None:
    """Open priced orders lock exactly what they can still spend (OCO pairs share a lock)."""
    engine = desk.engine
    for order in engine.orders.values():
        if not order.is_open or order.is_pending or order.type not in PRICED_TYPES:
            continue
        order_list = engine.list_of(order)
        if order_list is not None and order in order_list.pair and not order_list.resolved:
            continue
        needed = order.remaining * order.price if order.is_buy else order.remaining
        assert order.locked == needed, (order.order_id, order.side, order.locked, needed)


def _check(desk: Desk, initial: Counter, funded: Counter) -> None:
    engine = desk.engine
    engine.check_invariants()
    _check_locks(desk)
    expected = Counter(initial)
    expected.update(funded)
    commissions: Counter = Counter()
    for account in KEYS:
        rows = desk.do(spot_api.my_trades, account, symbol="BTCUSDT", limit=1000)
        assert len(rows) == len(engine.fills_of(account)) or len(rows) == 1000
        for row in rows:
            quantity, quote = D(row["qty"]), D(row["quoteQty"])
            assert quote == quantity * D(row["price"])
            sign = 1 if row["isBuyer"] else -1
            expected["BTC"] += sign * quantity
            expected["USDT"] -= sign * quote
            expected[row["commissionAsset"]] -= D(row["commission"])
            commissions[row["commissionAsset"]] += D(row["commission"])
        # Every fill exactly once in myTrades and in the TRADE reports, with the same numbers.
        fills = Counter((row["orderId"], row["id"]) for row in rows)
        trades = [report for report in desk.reports(account) if report["x"] == "TRADE"]
        reported = Counter((report["i"], report["t"]) for report in trades)
        assert max(fills.values(), default=1) == 1
        assert reported == fills
        by_fill = {(row["orderId"], row["id"]): row for row in rows}
        for report in trades:
            row = by_fill[(report["i"], report["t"])]
            assert (report["l"], report["L"], report["n"], report["N"]) == (
                row["qty"],
                row["price"],
                row["commission"],
                row["commissionAsset"],
            )
        # The last report of each order agrees with the order; open never means FILLED.
        last_report: dict[int, dict] = {}
        for report in desk.reports(account):
            last_report[report["i"]] = report
        for order in engine.orders_of(account):
            report = last_report[order.order_id]
            assert report["X"] == order.status, (order.order_id, report["x"])
            assert D(report["z"]) == order.executed
        open_ids = {row["orderId"] for row in desk.do(spot_api.open_orders, account)}
        for order in engine.orders_of(account):
            assert (order.order_id in open_ids) == order.is_open
            assert not (order.order_id in open_ids and order.status == "FILLED")
        # The last position event of each asset is the balance now.
        seen: dict[str, tuple[str, str]] = {}
        for event in desk.of_type("outboundAccountPosition", account):
            for row in event["B"]:
                seen[row["a"]] = (row["f"], row["l"])
        balances = engine.account(account).balances
        for asset, (free, locked) in seen.items():
            assert (D(free), D(locked)) == (balances[asset].free, balances[asset].locked)
    for asset in ("BTC", "USDT"):
        held = sum(engine.account(account).balance(asset).total for account in KEYS)
        assert held == expected[asset], asset
        assert commissions[asset] == engine.commissions.get(asset, 0)


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(script=st.lists(operation, min_size=5, max_size=40), seed=st.integers(0, 3))
async def test_random_flows_conserve_balances_and_report_every_fill_once(script, seed) -> None:
    desk = Desk(seed=seed)
    initial: Counter = Counter()
    for account in KEYS:
        for asset, balance in desk.engine.account(account).balances.items():
            initial[asset] += balance.total
    funded: Counter = Counter()
    refusals = []
    for step in script:
        try:
            _apply(desk, step, funded)
        except VenueError as error:
            refusals.append((step, error))
    assert [(step, e) for step, e in refusals if e.code not in EXPECTED_CODES] == []
    _check(desk, initial, funded)
