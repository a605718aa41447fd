"""Property test: random order flows of two accounts with background market activity.

After every flow, for each account:

* the wallet equals its start plus the realized PnL minus the commissions of its fills;
* each position equals the signed sum of its fills;
* no order is both open and FILLED, every open order rests on the book and no other does,
  and each order's executed quantity is the sum of its fills;
* every fill appears exactly once in ``userTrades`` and once among the ``ORDER_TRADE_UPDATE``
  TRADE events.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scenarios.venue.errors import VenueError
from tests.venue.test_futures_helpers import COINM, KEY_A, KEY_B, USDM, Client, make_venue, market

SYMBOLS = {USDM: "BTCUSDT", COINM: "BTCUSD_PERP"}
LOT = {USDM: Decimal("0.001"), COINM: Decimal(1)}
ASSET = {USDM: "USDT", COINM: "BTC"}

who = st.sampled_from([KEY_A, KEY_B])
side = st.sampled_from(["BUY", "SELL"])
operation = st.one_of(
    st.tuples(
        st.just("market"), who, side, st.integers(1, 12), st.sampled_from([False] * 3 + [True])
    ),
    st.tuples(
        st.just("limit"),
        who,
        side,
        st.integers(-4, 3),
        st.integers(1, 12),
        st.sampled_from(["GTC", "GTC", "IOC", "GTX", "FOK"]),
        st.sampled_from(["EXPIRE_MAKER", "NONE", "EXPIRE_TAKER", "EXPIRE_BOTH"]),
    ),
    st.tuples(st.just("cancel"), who, st.integers(0, 20)),
    st.tuples(st.just("modify"), who, st.integers(0, 20), st.integers(-4, 8), st.integers(1, 12)),
    st.tuples(st.just("steps"), st.integers(1, 25)),
)


def run(clients: dict[str, Client], venue, product, ops) -> None:
    symbol = SYMBOLS[product]
    book = market(venue, product, symbol)
    tick = book.instrument.tick_size
    lot = LOT[product]
    engine = clients[KEY_A].engine
    for op in ops:
        kind = op[0]
        try:
            if kind == "market":
                _, key, order_side, lots, reduce_only = op
                params = {"reduceOnly": "true"} if reduce_only else {}
                clients[key].order(
                    symbol=symbol,
                    side=order_side,
                    type="MARKET",
                    quantity=str(lots * lot),
                    **params,
                )
            elif kind == "limit":
                _, key, order_side, offset, lots, tif, stp = op
                top = book.best_bid_ask()
                # positive offsets stay passive, negative ones cross the spread
                price = (
                    top.bid_price - offset * tick
                    if order_side == "BUY"
                    else (top.ask_price + offset * tick)
                )
                clients[key].order(
                    symbol=symbol,
                    side=order_side,
                    type="LIMIT",
                    timeInForce=tif,
                    quantity=str(lots * lot),
                    price=str(price),
                    selfTradePreventionMode=stp,
                )
            elif kind == "cancel":
                _, key, index = op
                mine = [o for o in engine.open_orders.values() if o.account == key]
                if mine:
                    order = mine[index % len(mine)]
                    clients[key].call("DELETE", "order", symbol=symbol, orderId=order.order_id)
            elif kind == "modify":
                _, key, index, offset, lots = op
                mine = [o for o in engine.open_orders.values() if o.account == key]
                if mine:
                    order = mine[index % len(mine)]
                    top = book.best_bid_ask()
                    price = (
                        top.bid_price - offset * tick
                        if order.side == "BUY"
                        else (top.ask_price + offset * tick)
                    )
                    clients[key].call(
                        "PUT",
                        "order",
                        symbol=symbol,
                        orderId=order.order_id,
                        side=order.side,
                        quantity=str(lots * lot),
                        price=str(price),
                    )
            else:
                for _ in range(op[1]):
                    now = venue.clock.advance(100)
                    venue.on_market(product, symbol, book.step(now))
                    engine.on_time(now)
        except VenueError:
            pass


def check(clients: dict[str, Client], venue, product) -> None:
    symbol = SYMBOLS[product]
    engine = clients[KEY_A].engine
    accounts = engine.accounts
    book = market(venue, product, symbol)
    asset = ASSET[product]
    start = venue.config.balances[product.value][asset]
    for order in engine.orders.values():
        assert not (order.is_open and order.status == "FILLED")
        assert (order.order_id in engine.open_orders) == order.is_open
        assert (book.resting(order) is not None) == order.is_open, order
        fills = [f for f in engine.fills if f.order_id == order.order_id]
        assert order.executed == sum((f.quantity for f in fills), Decimal(0))
        assert order.executed <= order.quantity
        if order.status == "FILLED":
            assert order.executed == order.quantity
    for key, client in clients.items():
        account = accounts.account(key)
        fills = engine.account_fills.get(key, [])
        realized = sum((f.realized_pnl for f in fills), Decimal(0))
        commission = sum((f.commission for f in fills), Decimal(0))
        assert accounts.wallet_balance(account, asset) == start + realized - commission
        signed = sum((f.quantity if f.side == "BUY" else -f.quantity for f in fills), Decimal(0))
        assert account.position(symbol, "BOTH").amount == signed
        assert sum((p.realized for p in account.positions.values()), Decimal(0)) == realized
        expected = Counter((f.order_id, f.trade_id, f.quantity) for f in fills)
        rows = client.call("GET", "userTrades", symbol=symbol, limit=1000)
        from_rest = Counter((r["orderId"], r["id"], Decimal(r["qty"])) for r in rows)
        events = [e["o"] for e in client.of_type("ORDER_TRADE_UPDATE", "TRADE")]
        from_events = Counter((e["i"], e["t"], Decimal(e["l"])) for e in events)
        assert from_rest == expected
        assert from_events == expected


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    product=st.sampled_from([USDM, COINM]),
    seed=st.integers(0, 50),
    ops=st.lists(operation, min_size=10, max_size=40),
    isolated=st.booleans(),
    leverage=st.integers(1, 125),
)
async def test_flows_conserve_money_and_positions(product, seed, ops, isolated, leverage):
    venue = make_venue(seed)
    clients = {key: Client(venue, product, key) for key in (KEY_A, KEY_B)}
    if isolated:
        clients[KEY_A].call("POST", "marginType", symbol=SYMBOLS[product], marginType="ISOLATED")
    clients[KEY_B].call("POST", "leverage", symbol=SYMBOLS[product], leverage=leverage)
    run(clients, venue, product, ops)
    check(clients, venue, product)
