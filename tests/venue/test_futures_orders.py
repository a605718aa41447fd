"""Futures regular orders: validation, time in force, priceMatch, reduce-only, hedge mode,
self-trade prevention, modify, batches, cancels, countdown and GTD expiry."""

from __future__ import annotations

from decimal import Decimal

import pytest

from scenarios.venue.market import BookSide, Side
from tests.venue.test_futures_helpers import (
    COINM,
    KEY_B,
    USDM,
    Client,
    add_ask,
    add_bid,
    best,
    limit,
    market,
    trades_of,
    um_fixture,  # noqa: F401  (fixture)
    venue_fixture,  # noqa: F401  (fixture)
)

SYMBOL = "BTCUSDT"
TICK = Decimal("0.10")


def at_market(**params):
    return {"symbol": SYMBOL, "type": "MARKET", **params}


def amend(order_id: int | str, **params):
    """``PUT /order`` parameters of order ``order_id`` on ``SYMBOL`` (a BUY unless given)."""
    return {"symbol": SYMBOL, "orderId": order_id, "side": "BUY", **params}


def position_amount(client: Client, symbol: str = SYMBOL, side: str = "BOTH") -> Decimal:
    account = client.engine.accounts.account(client.key)
    return account.position(symbol, side).amount


# --- validation --------------------------------------------------------------------------


async def test_conditional_types_are_sent_to_the_algo_api(um):
    error = um.error("POST", "order", symbol=SYMBOL, side="BUY", type="STOP_MARKET", quantity="1")
    assert (error.code, error.msg) == (
        -4120,
        "Order type not supported for this endpoint. "
        "Please use the Algo Order API endpoints instead.",
    )
    error = um.error("POST", "order", symbol=SYMBOL, side="BUY", type="LIMIT_MAKER", quantity="1")
    assert (error.code, error.msg) == (-1116, "Invalid orderType.")


#: A LIMIT order's parameters that pass every check (the rejections change one).
VALID_LIMIT = {"side": "BUY", "quantity": "0.01", "price": "60000", "timeInForce": "GTC"}


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"side": "BUY", "quantity": "0.01", "price": "60000"}, -1102),  # no timeInForce
        ({"side": "BUY", "quantity": "0.01", "timeInForce": "GTC"}, -1102),  # no price
        ({**VALID_LIMIT, "side": "UP"}, -1117),
        ({**VALID_LIMIT, "timeInForce": "XYZ"}, -1115),
        ({**VALID_LIMIT, "quantity": "x"}, -1100),
        ({**VALID_LIMIT, "price": "401"}, -4013),
        ({**VALID_LIMIT, "price": "2000000"}, -4002),
        ({**VALID_LIMIT, "price": "60000.15"}, -4014),
        ({**VALID_LIMIT, "quantity": "0.0001"}, -1111),
        ({**VALID_LIMIT, "quantity": "0"}, -4003),
        ({**VALID_LIMIT, "quantity": "1001"}, -4005),
        ({**VALID_LIMIT, "price": "90000"}, -4016),
        ({**VALID_LIMIT, "side": "SELL", "price": "30000"}, -4024),
        ({**VALID_LIMIT, "newClientOrderId": "bad id!"}, -4015),
        ({**VALID_LIMIT, "newOrderRespType": "FULL"}, -1136),
        ({**VALID_LIMIT, "selfTradePreventionMode": "DECREMENT"}, -5039),
        ({**VALID_LIMIT, "positionSide": "LONG"}, -4061),
    ],
)
async def test_rejections(um, params, code):
    error = um.error("POST", "order", symbol=SYMBOL, type="LIMIT", **params)
    assert error.code == code
    assert um.engine.account_orders.get(um.key, []) == []


async def test_min_notional_message_and_reduce_only_exemption(um):
    error = um.error("POST", "order", **limit(side="BUY", quantity="0.001", price="6000.0"))
    assert (error.code, error.msg) == (
        -4164,
        "Order's notional must be no smaller than 10 (unless you choose reduce only)",
    )


async def test_duplicate_client_order_id_among_open_orders(um, venue):
    bid, _ = best(venue, USDM, SYMBOL)
    low = str(bid - 100)
    um.order(**limit(side="BUY", quantity="0.01", price=low, newClientOrderId="mine-1"))
    error = um.error(
        "POST", "order", **limit(side="BUY", quantity="0.01", price=low, newClientOrderId="mine-1")
    )
    assert (error.code, error.msg) == (-4116, "ClientOrderId is duplicated.")
    um.call("DELETE", "order", symbol=SYMBOL, origClientOrderId="mine-1")
    um.order(**limit(side="BUY", quantity="0.01", price=low, newClientOrderId="mine-1"))


async def test_margin_insufficient(um, venue):
    bid, _ = best(venue, USDM, SYMBOL)
    error = um.error("POST", "order", **limit(side="BUY", quantity="900", price=str(bid - 50)))
    assert (error.code, error.msg) == (-2019, "Margin is insufficient.")


# --- time in force ---------------------------------------------------------------------


async def test_gtx_would_take_is_rejected_and_not_recorded(um, venue):
    bid, ask = best(venue, USDM, SYMBOL)
    error = um.error(
        "POST", "order", **limit(side="BUY", quantity="0.01", price=str(ask), timeInForce="GTX")
    )
    assert error.code == -5022
    assert "Post Only order will be rejected" in error.msg
    assert um.call("GET", "allOrders", symbol=SYMBOL) == []
    body = um.order(**limit(side="BUY", quantity="0.01", price=str(bid), timeInForce="GTX"))
    assert body["status"] == "NEW"
    assert market(venue, USDM, SYMBOL).resting(um.engine.orders[body["orderId"]]) == Decimal(
        "0.010"
    )


async def test_fok_unfillable_is_rejected_fillable_fills(um, venue):
    _, ask = best(venue, USDM, SYMBOL)
    available = market(venue, USDM, SYMBOL).available(Side.BUY, ask)
    error = um.error(
        "POST",
        "order",
        **limit(
            side="BUY",
            quantity=str(available + Decimal("0.001")),
            price=str(ask),
            timeInForce="FOK",
        ),
    )
    assert error.code == -5021
    assert um.call("GET", "allOrders", symbol=SYMBOL) == []
    body = um.order(
        **limit(
            side="BUY",
            quantity=str(available),
            price=str(ask),
            timeInForce="FOK",
            newOrderRespType="RESULT",
        )
    )
    assert body["status"] == "FILLED"


async def test_ioc_remainder_expires_with_reason_2(um, venue):
    _, ask = best(venue, USDM, SYMBOL)
    available = market(venue, USDM, SYMBOL).available(Side.BUY, ask)
    body = um.order(
        **limit(
            side="BUY",
            quantity=str(available + Decimal("0.005")),
            price=str(ask),
            timeInForce="IOC",
            newOrderRespType="RESULT",
        )
    )
    assert body["status"] == "EXPIRED"
    assert Decimal(body["executedQty"]) == available
    expired = um.of_type("ORDER_TRADE_UPDATE", "EXPIRED")[-1]["o"]
    assert expired["er"] == "2"
    assert expired["X"] == "EXPIRED"


async def test_ack_is_the_state_at_acceptance_result_the_final_one(um):
    ack = um.order(symbol=SYMBOL, side="BUY", type="MARKET", quantity="0.003")
    assert (ack["status"], ack["executedQty"]) == ("NEW", "0.000")
    result = um.order(
        symbol=SYMBOL, side="BUY", type="MARKET", quantity="0.003", newOrderRespType="RESULT"
    )
    assert (result["status"], result["executedQty"]) == ("FILLED", "0.003")
    assert "avgPrice" not in result
    assert "cumQuote" not in result
    query = um.call("GET", "order", symbol=SYMBOL, orderId=ack["orderId"])
    assert query["status"] == "FILLED"
    assert Decimal(query["avgPrice"]) > 0


async def test_gtd_needs_a_date_600s_ahead_and_expires(um, venue):
    bid, _ = best(venue, USDM, SYMBOL)
    now = venue.clock.now_ms()
    params = limit(side="BUY", quantity="0.01", price=str(bid - 100), timeInForce="GTD")
    assert um.error("POST", "order", **params).code == -1102
    assert um.error("POST", "order", goodTillDate=now + 500_000, **params).code == -5040
    body = um.order(goodTillDate=now + 700_123, **params)
    assert body["goodTillDate"] == (now + 700_123) // 1000 * 1000
    venue.clock.advance(701_000)
    um.engine.on_time(venue.clock.now_ms())
    assert um.call("GET", "order", symbol=SYMBOL, orderId=body["orderId"])["status"] == "EXPIRED"
    assert market(venue, USDM, SYMBOL).resting(um.engine.orders[body["orderId"]]) is None


async def test_coinm_has_no_gtd(venue):
    cm = Client(venue, COINM)
    error = cm.error(
        "POST",
        "order",
        **limit("BTCUSD_PERP", side="BUY", timeInForce="GTD", quantity="1", price="60000.0"),
    )
    assert error.code == -1115


# --- priceMatch ------------------------------------------------------------------------


async def test_price_match_opponent_and_queue(um, venue):
    bid, ask = best(venue, USDM, SYMBOL)
    queue = um.order(**limit(side="BUY", quantity="0.01", priceMatch="QUEUE"))
    assert Decimal(queue["price"]) == bid
    assert queue["priceMatch"] == "QUEUE"
    fifth = market(venue, USDM, SYMBOL).level(BookSide.ASK, 5)
    opponent = um.order(
        **limit(
            side="BUY",
            timeInForce="IOC",
            quantity="0.002",
            priceMatch="OPPONENT_5",
            newOrderRespType="RESULT",
        )
    )
    assert Decimal(opponent["price"]) == fifth
    assert opponent["status"] == "FILLED"
    del ask


@pytest.mark.parametrize(
    ("params", "code"),
    [
        (
            {"type": "LIMIT", "timeInForce": "GTC", "priceMatch": "OPPONENT", "price": "60000"},
            -1106,
        ),
        ({"type": "MARKET", "priceMatch": "OPPONENT"}, -5038),
        ({"type": "LIMIT", "timeInForce": "GTC", "priceMatch": "BEST"}, -5037),
    ],
)
async def test_price_match_rules(um, params, code):
    assert (
        um.error("POST", "order", symbol=SYMBOL, side="BUY", quantity="0.01", **params).code == code
    )


# --- reduce-only and hedge mode ---------------------------------------------------------


async def test_reduce_only_rejected_without_position_and_shrunk_to_it(um, venue):
    error = um.error("POST", "order", **at_market(side="SELL", quantity="0.01", reduceOnly="true"))
    assert (error.code, error.msg) == (-2022, "ReduceOnly Order is rejected.")
    um.order(symbol=SYMBOL, side="BUY", type="MARKET", quantity="0.003")
    assert position_amount(um) == Decimal("0.003")
    body = um.order(
        symbol=SYMBOL,
        side="SELL",
        type="MARKET",
        quantity="0.010",
        reduceOnly="true",
        newOrderRespType="RESULT",
    )
    assert (body["status"], body["executedQty"]) == ("EXPIRED", "0.003")
    assert position_amount(um) == 0
    assert um.of_type("ORDER_TRADE_UPDATE", "EXPIRED")[-1]["o"]["er"] == "4"


async def test_resting_reduce_only_follows_the_position(um, venue):
    um.order(symbol=SYMBOL, side="BUY", type="MARKET", quantity="0.005")
    _, ask = best(venue, USDM, SYMBOL)
    resting = um.order(
        **limit(side="SELL", quantity="0.005", price=str(ask + 500), reduceOnly="true")
    )
    order = um.engine.orders[resting["orderId"]]
    um.order(symbol=SYMBOL, side="SELL", type="MARKET", quantity="0.002")
    assert market(venue, USDM, SYMBOL).resting(order) == Decimal("0.003")
    um.order(symbol=SYMBOL, side="SELL", type="MARKET", quantity="0.003", reduceOnly="true")
    assert order.status == "EXPIRED"
    assert order.expiry_reason == 4
    assert market(venue, USDM, SYMBOL).resting(order) is None


async def test_hedge_mode(um, venue):
    cm = Client(venue, COINM)
    assert um.call("GET", "positionSide/dual") == {"dualSidePosition": False}
    assert um.call("POST", "positionSide/dual", dualSidePosition="true") == {
        "code": 200,
        "msg": "success",
    }
    assert cm.call("GET", "positionSide/dual") == {"dualSidePosition": True}  # shared
    assert um.error("POST", "positionSide/dual", dualSidePosition="true").code == -4059
    assert um.error("POST", "order", **at_market(side="BUY", quantity="0.002")).code == -4061
    assert (
        um.error(
            "POST",
            "order",
            **at_market(side="SELL", quantity="0.002", positionSide="LONG", reduceOnly="true"),
        ).code
        == -1106
    )
    um.order(symbol=SYMBOL, side="BUY", type="MARKET", quantity="0.004", positionSide="LONG")
    um.order(symbol=SYMBOL, side="SELL", type="MARKET", quantity="0.003", positionSide="SHORT")
    assert position_amount(um, side="LONG") == Decimal("0.004")
    assert position_amount(um, side="SHORT") == Decimal("-0.003")
    error = um.error(
        "POST", "order", **at_market(side="SELL", quantity="0.005", positionSide="LONG")
    )
    assert error.code == -2022
    um.order(symbol=SYMBOL, side="SELL", type="MARKET", quantity="0.004", positionSide="LONG")
    assert position_amount(um, side="LONG") == 0
    # a position on either line blocks the switch, for both lines
    assert cm.error("POST", "positionSide/dual", dualSidePosition="false").code == -4068
    um.order(symbol=SYMBOL, side="BUY", type="MARKET", quantity="0.003", positionSide="SHORT")
    bid, _ = best(venue, USDM, SYMBOL)
    um.order(**limit(side="BUY", quantity="0.01", price=str(bid - 100), positionSide="LONG"))
    assert cm.error("POST", "positionSide/dual", dualSidePosition="false").code == -4067
    rows = um.call("GET", "/fapi/v2/positionRisk", symbol=SYMBOL)
    assert [row["positionSide"] for row in rows] == ["LONG", "SHORT"]


# --- self-trade prevention ---------------------------------------------------------------


async def test_stp_expire_maker_is_the_default(um, venue):
    _, ask = best(venue, USDM, SYMBOL)
    inside = ask - TICK
    maker = um.order(**limit(side="SELL", quantity="0.01", price=str(inside)))
    taker = um.order(
        **limit(side="BUY", quantity="0.01", price=str(inside), newOrderRespType="RESULT")
    )
    assert taker["selfTradePreventionMode"] == "EXPIRE_MAKER"
    maker_state = um.call("GET", "order", symbol=SYMBOL, orderId=maker["orderId"])
    assert maker_state["status"] == "EXPIRED"
    expired = [e["o"] for e in um.of_type("ORDER_TRADE_UPDATE", "EXPIRED")]
    assert expired[0]["i"] == maker["orderId"]
    assert expired[0]["er"] == "1"
    assert position_amount(um) == 0  # nothing traded with itself


async def test_stp_expire_taker(um, venue):
    _, ask = best(venue, USDM, SYMBOL)
    inside = ask - TICK
    um.order(**limit(side="SELL", quantity="0.01", price=str(inside)))
    taker = um.order(
        **limit(
            side="BUY",
            quantity="0.01",
            price=str(inside),
            timeInForce="IOC",
            selfTradePreventionMode="EXPIRE_TAKER",
            newOrderRespType="RESULT",
        )
    )
    assert taker["status"] == "EXPIRED"
    assert um.of_type("ORDER_TRADE_UPDATE", "EXPIRED")[-1]["o"]["er"] == "3"


async def test_two_accounts_trade_with_each_other(um, venue):
    other = Client(venue, USDM, KEY_B)
    _, ask = best(venue, USDM, SYMBOL)
    inside = ask - TICK
    maker = other.order(**limit(side="SELL", quantity="0.01", price=str(inside)))
    um.order(**limit(side="BUY", quantity="0.004", price=str(inside)))
    state = other.call("GET", "order", symbol=SYMBOL, orderId=maker["orderId"])
    assert (state["status"], state["executedQty"]) == ("PARTIALLY_FILLED", "0.004")
    maker_trade = next(trades_of(other))
    taker_trade = next(trades_of(um))
    assert maker_trade["m"] is True
    assert taker_trade["m"] is False
    assert maker_trade["t"] == taker_trade["t"]
    assert Decimal(maker_trade["n"]) == Decimal("0.004") * inside * Decimal("0.0002")
    assert position_amount(other) == Decimal("-0.004")


# --- modify ----------------------------------------------------------------------------


async def test_modify_rules_and_amendment_event(um, venue):
    bid, _ = best(venue, USDM, SYMBOL)
    body = um.order(**limit(side="BUY", quantity="0.01", price=str(bid - 100)))
    order_id = body["orderId"]
    assert um.error("PUT", "order", **amend(order_id, quantity="0.01")).code == -1102
    assert um.error("PUT", "order", **amend(order_id, price=str(bid - 100))).code == -1102
    error = um.error("PUT", "order", **amend(order_id, quantity="0.01", price=str(bid - 100)))
    assert (error.code, error.msg) == (-5027, "No need to modify the order.")
    modified = um.call("PUT", "order", **amend(order_id, quantity="0.02", price=str(bid - 90)))
    assert (modified["price"], modified["origQty"]) == (str(bid - 90), "0.020")
    amendment = um.of_type("ORDER_TRADE_UPDATE", "AMENDMENT")[-1]["o"]
    assert (amendment["X"], amendment["q"], amendment["p"]) == ("NEW", "0.020", str(bid - 90))
    history = um.call("GET", "orderAmendment", symbol=SYMBOL, orderId=order_id)
    assert history[0]["amendment"]["price"] == {"before": str(bid - 100), "after": str(bid - 90)}


async def test_modify_loses_priority(um, venue):
    other = Client(venue, USDM, KEY_B)
    bid, ask = best(venue, USDM, SYMBOL)
    inside = bid + TICK
    assert inside < ask
    first = um.order(**limit(side="BUY", quantity="0.002", price=str(inside)))
    second = um.order(**limit(side="BUY", quantity="0.002", price=str(inside)))
    um.call("PUT", "order", **amend(first["orderId"], quantity="0.003", price=str(inside)))
    other.order(symbol=SYMBOL, side="SELL", type="MARKET", quantity="0.002")
    assert um.call("GET", "order", symbol=SYMBOL, orderId=second["orderId"])["status"] == "FILLED"
    assert um.call("GET", "order", symbol=SYMBOL, orderId=first["orderId"])["status"] == "NEW"


async def test_modify_partially_filled_at_or_below_executed_cancels(um, venue):
    other = Client(venue, USDM, KEY_B)
    bid, _ = best(venue, USDM, SYMBOL)
    inside = bid + TICK
    body = um.order(**limit(side="BUY", quantity="0.005", price=str(inside)))
    other.order(symbol=SYMBOL, side="SELL", type="MARKET", quantity="0.002")
    result = um.call("PUT", "order", **amend(body["orderId"], quantity="0.002", price=str(inside)))
    assert result["status"] == "CANCELED"


async def test_modify_crossing_price_trades(um, venue):
    bid, ask = best(venue, USDM, SYMBOL)
    body = um.order(**limit(side="BUY", quantity="0.002", price=str(bid - 100)))
    result = um.call(
        "PUT", "order", **amend(body["orderId"], quantity="0.002", price=str(ask + 50))
    )
    assert result["status"] == "FILLED"


async def test_modify_unknown_order(um):
    error = um.error("PUT", "order", **amend(1, quantity="0.01", price="60000"))
    assert error.code == -2013


# --- cancels, batches, countdown ---------------------------------------------------------


async def test_cancel_and_cancel_all(um, venue):
    bid, _ = best(venue, USDM, SYMBOL)
    one = um.order(**limit(side="BUY", quantity="0.01", price=str(bid - 100)))
    canceled = um.call("DELETE", "order", symbol=SYMBOL, orderId=one["orderId"])
    assert canceled["status"] == "CANCELED"
    error = um.error("DELETE", "order", symbol=SYMBOL, orderId=one["orderId"])
    assert (error.code, error.msg) == (-2011, "Unknown order sent.")
    assert um.error("DELETE", "order", symbol=SYMBOL).code == -1102
    um.order(**limit(side="BUY", quantity="0.01", price=str(bid - 100)))
    um.order(**limit(side="BUY", quantity="0.01", price=str(bid - 110)))
    assert um.call("DELETE", "allOpenOrders", symbol=SYMBOL) == {
        "code": 200,
        "msg": "The operation of cancel all open order is done.",
    }
    assert um.call("GET", "openOrders") == []
    assert len(um.of_type("ORDER_TRADE_UPDATE", "CANCELED")) == 3


async def test_batch_orders(um, venue):
    import orjson

    bid, _ = best(venue, USDM, SYMBOL)
    good = {
        "symbol": SYMBOL,
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.01",
        "price": str(bid - 100),
    }
    bad = {**good, "price": "1"}
    results = um.call("POST", "batchOrders", batchOrders=orjson.dumps([good, bad]).decode())
    assert results[0]["status"] == "NEW"
    assert results[1] == {"code": -4013, "msg": "Price less than min price."}
    error = um.error("POST", "batchOrders", batchOrders=orjson.dumps([good] * 6).decode())
    assert error.code == -4082
    modified = um.call(
        "PUT",
        "batchOrders",
        batchOrders=orjson.dumps(
            [
                {
                    "symbol": SYMBOL,
                    "orderId": results[0]["orderId"],
                    "side": "BUY",
                    "quantity": "0.02",
                    "price": str(bid - 100),
                }
            ]
        ).decode(),
    )
    assert modified[0]["origQty"] == "0.020"
    canceled = um.call(
        "DELETE",
        "batchOrders",
        symbol=SYMBOL,
        orderIdList=orjson.dumps([results[0]["orderId"], 12345]).decode(),
    )
    assert canceled[0]["status"] == "CANCELED"
    assert canceled[1] == {"code": -2011, "msg": "Unknown order sent."}
    too_many = orjson.dumps(list(range(11))).decode()
    assert um.error("DELETE", "batchOrders", symbol=SYMBOL, orderIdList=too_many).code == -4032


async def test_countdown_cancel_all(um, venue):
    bid, _ = best(venue, USDM, SYMBOL)
    um.order(**limit(side="BUY", quantity="0.01", price=str(bid - 100)))
    reply = um.call("POST", "countdownCancelAll", symbol=SYMBOL, countdownTime=1000)
    assert reply == {"symbol": SYMBOL, "countdownTime": "1000"}
    venue.clock.advance(600)
    um.engine.on_time(venue.clock.now_ms())
    um.call("POST", "countdownCancelAll", symbol=SYMBOL, countdownTime=1000)  # heartbeat
    venue.clock.advance(600)
    um.engine.on_time(venue.clock.now_ms())
    assert len(um.call("GET", "openOrders", symbol=SYMBOL)) == 1
    venue.clock.advance(500)
    um.engine.on_time(venue.clock.now_ms())
    assert um.call("GET", "openOrders", symbol=SYMBOL) == []


async def test_max_open_orders_per_symbol(um, venue):
    bid, _ = best(venue, USDM, SYMBOL)
    engine = um.engine
    for index in range(200):
        um.order(**limit(side="BUY", quantity="0.001", price=str(bid - 1000 - index)))
    error = um.error("POST", "order", **limit(side="BUY", quantity="0.001", price=str(bid - 999)))
    assert (error.code, error.msg) == (-2025, "Reach max open order limit.")
    assert len(engine.open_orders) == 200


async def test_resting_order_filled_by_background_taker(um, venue):
    bid, _ = best(venue, USDM, SYMBOL)
    inside = bid + TICK
    body = um.order(**limit(side="BUY", quantity="0.003", price=str(inside)))
    book = market(venue, USDM, SYMBOL)
    events = book.take_liquidity(Side.SELL, Decimal("0.003"), venue.clock.now_ms())
    venue.on_market(USDM, SYMBOL, events)
    assert um.call("GET", "order", symbol=SYMBOL, orderId=body["orderId"])["status"] == "FILLED"
    assert position_amount(um) == Decimal("0.003")
    trade = next(trades_of(um))
    assert trade["m"] is True
    update = um.of_type("ACCOUNT_UPDATE")[-1]["a"]
    assert update["m"] == "ORDER"
    assert update["P"][0]["pa"] == "0.003"


async def test_add_liquidity_helpers_are_usable(venue):
    _, ask = best(venue, USDM, SYMBOL)
    add_ask(venue, USDM, SYMBOL, ask + 1000, Decimal("1"))
    add_bid(venue, USDM, SYMBOL, Decimal("50000.0"), Decimal("1"))


async def test_engine_book_changes_reach_the_feeds_in_order(um, venue):
    """A background fill that shrinks a resting reduce-only order: the shrink's depth update
    is fed after the background events, never before them."""
    fed: list[int] = []
    feeds_on_market = venue.feeds.on_market

    def record(product, symbol, events):
        fed.extend(event.update_id for event in events if hasattr(event, "update_id"))
        feeds_on_market(product, symbol, events)

    venue.feeds.on_market = record
    um.order(symbol=SYMBOL, side="BUY", type="MARKET", quantity="0.005")
    bid, ask = best(venue, USDM, SYMBOL)
    closing = um.order(
        **limit(side="SELL", quantity="0.005", price=str(ask + 300), reduceOnly="true")
    )
    um.order(**limit(side="SELL", quantity="0.003", price=str(ask - TICK)))
    book = market(venue, USDM, SYMBOL)
    events = book.take_liquidity(Side.BUY, Decimal("0.003"), venue.clock.now_ms())
    venue.on_market(USDM, SYMBOL, events)
    um.engine.on_time(venue.clock.now_ms())
    assert book.resting(um.engine.orders[closing["orderId"]]) == Decimal("0.002")
    assert fed == sorted(fed)
    assert len(fed) == len(set(fed))
    del bid


async def test_system_orders(um, venue):
    engine = um.engine
    um.order(symbol=SYMBOL, side="BUY", type="MARKET", quantity="0.004")
    order = engine.place_system_order(
        um.key, SYMBOL, "SELL", "BOTH", Decimal("0.010"), "autoclose-1", "LIQUIDATION"
    )
    assert (order.status, order.executed, order.system) == ("EXPIRED", Decimal("0.004"), True)
    assert position_amount(um) == 0
    um.order(symbol=SYMBOL, side="SELL", type="MARKET", quantity="0.002")
    adl = engine.place_system_order(
        um.key,
        SYMBOL,
        "BUY",
        "BOTH",
        Decimal("0.002"),
        "adl_autoclose",
        "MARKET",
        Decimal("61000.00"),
        off_book=True,
        execution_type="CALCULATED",
    )
    assert adl.status == "FILLED"
    calculated = um.of_type("ORDER_TRADE_UPDATE", "CALCULATED")[-1]["o"]
    assert (calculated["c"], calculated["L"]) == ("adl_autoclose", "61000.00")
    assert position_amount(um) == 0
    rows = um.call("GET", "userTrades", symbol=SYMBOL)
    assert rows[-1]["price"] == "61000.00"


# --- integer bounds, lookups by client id, per-account work, allOrders window ---------------

HUGE = "99999999999999999999"  # 20 digits: the pattern passes, 64 bits do not


async def test_integers_past_64_bits_are_refused_before_any_work(um, venue):
    invalid = (-1130, "Data sent for parameter 'orderId' is not valid.")
    error = um.error("GET", "order", symbol=SYMBOL, orderId=HUGE)
    assert (error.code, error.msg) == invalid
    assert um.error("GET", "order", symbol=SYMBOL, orderId=str(2**63)).code == -1130
    assert um.error("GET", "order", symbol=SYMBOL, orderId=str(2**63 - 1)).code == -2013
    assert um.error("DELETE", "order", symbol=SYMBOL, orderId=HUGE).code == -1130
    assert um.error("GET", "orderAmendment", symbol=SYMBOL, orderId=HUGE).code == -1130
    bid, _ = best(venue, USDM, SYMBOL)
    price = str(bid - 100)
    error = um.error("PUT", "order", **amend(HUGE, quantity="0.01", price=price))
    assert error.code == -1130
    error = um.error(
        "POST",
        "order",
        **limit(side="BUY", quantity="0.01", price=price, timeInForce="GTD", goodTillDate=HUGE),
    )
    assert (error.code, error.msg) == (
        -1130,
        "Data sent for parameter 'goodTillDate' is not valid.",
    )
    assert um.engine.orders == {}
    assert um.error("POST", "leverage", symbol=SYMBOL, leverage=HUGE).code == -1130
    too_big = "[18446744073709551615]"  # orjson reads it as an integer past int64
    error = um.error("DELETE", "batchOrders", symbol=SYMBOL, orderIdList=too_big)
    assert (error.code, error.msg) == (-1130, "Data sent for parameter 'orderIdList' is not valid.")


class _Unscannable(list):
    """An order history that must not be scanned (lookups go through the index)."""

    def __iter__(self):
        raise AssertionError("scanned the account's whole order history")


async def test_orig_client_order_id_lookups_use_the_index(um, venue):
    bid, _ = best(venue, USDM, SYMBOL)
    first = um.order(
        **limit(side="BUY", quantity="0.01", price=str(bid - 100), newClientOrderId="x")
    )
    for index in range(20):
        um.order(**limit(side="BUY", quantity="0.01", price=str(bid - 200 - index)))
    other = um.order(
        symbol="ETHUSDT", side="BUY", type="MARKET", quantity="0.05", newClientOrderId="y"
    )
    engine = um.engine
    engine.account_orders[um.key] = _Unscannable(engine.account_orders[um.key])
    assert (
        um.call("GET", "order", symbol=SYMBOL, origClientOrderId="x")["orderId"] == first["orderId"]
    )
    assert um.call("GET", "openOrder", symbol=SYMBOL, origClientOrderId="x")["status"] == "NEW"
    assert um.error("GET", "order", symbol=SYMBOL, origClientOrderId="y").code == -2013
    assert (
        um.call("GET", "order", symbol="ETHUSDT", origClientOrderId="y")["orderId"]
        == other["orderId"]
    )
    um.call("DELETE", "order", symbol=SYMBOL, origClientOrderId="x")
    # the id is free again; the open order wins over the cancelled one, then the latest
    second = um.order(
        **limit(side="BUY", quantity="0.01", price=str(bid - 90), newClientOrderId="x")
    )
    assert (
        um.call("GET", "order", symbol=SYMBOL, origClientOrderId="x")["orderId"]
        == second["orderId"]
    )
    um.call("DELETE", "order", symbol=SYMBOL, origClientOrderId="x")
    found = um.call("GET", "order", symbol=SYMBOL, origClientOrderId="x")
    assert (found["orderId"], found["status"]) == (second["orderId"], "CANCELED")
    assert um.error("DELETE", "order", symbol=SYMBOL, origClientOrderId="x").code == -2011


class _NoScanDict(dict):
    """A registry that may be read by key but must not be scanned."""

    def _scan(self, *args, **kwargs):
        raise AssertionError("scanned every open order / account")

    __iter__ = values = items = keys = _scan  # type: ignore[assignment]


async def test_placement_does_not_scan_other_accounts_orders_or_positions(venue):
    um = Client(venue, USDM)
    other = Client(venue, USDM, key=KEY_B)
    bid, _ = best(venue, USDM, SYMBOL)
    other.order(symbol="ETHUSDT", side="BUY", type="MARKET", quantity="0.05")  # B has a position
    for index in range(30):
        other.order(**limit(side="BUY", quantity="0.01", price=str(bid - 300 - index)))
    engine = um.engine
    engine.open_orders = _NoScanDict(engine.open_orders)
    engine.accounts.accounts = _NoScanDict(engine.accounts.accounts)
    assert engine.has_any_positions
    # place, see the events (b/a notionals), get filled by the market, cancel by client id
    inside = bid + TICK
    body = um.order(**limit(side="BUY", quantity="0.01", price=str(inside), newClientOrderId="m"))
    new = um.of_type("ORDER_TRADE_UPDATE", "NEW")[-1]["o"]
    assert new["i"] == body["orderId"]
    assert Decimal(new["b"]) == inside * Decimal("0.01")
    events = market(venue, USDM, SYMBOL).take_liquidity(
        Side.SELL, Decimal("0.004"), venue.clock.now_ms()
    )
    venue.on_market(USDM, SYMBOL, events)
    assert position_amount(um) == Decimal("0.004")
    assert um.call("GET", "openOrders", symbol=SYMBOL)[0]["executedQty"] == "0.004"
    canceled = um.call("DELETE", "order", symbol=SYMBOL, origClientOrderId="m")
    assert canceled["status"] == "CANCELED"
    assert engine.open_index.count(um.key) == 0
    assert engine.open_index.count(KEY_B) == 30
    assert list(engine.accounts.holders) == ["ETHUSDT", SYMBOL]
    um.order(symbol=SYMBOL, side="SELL", type="MARKET", quantity="0.004")
    assert list(engine.accounts.holders) == ["ETHUSDT"]
    assert engine.has_positions(KEY_B)
    assert not engine.has_positions(um.key)


async def test_all_orders_covers_seven_days(um, venue):
    bid, _ = best(venue, USDM, SYMBOL)
    old = um.order(**limit(side="BUY", quantity="0.01", price=str(bid - 100)))
    start = venue.clock.now_ms()
    venue.clock.advance(8 * 24 * 3_600_000)
    new = um.order(**limit(side="BUY", quantity="0.01", price=str(bid - 100)))
    ids = [row["orderId"] for row in um.call("GET", "allOrders", symbol=SYMBOL)]
    assert ids == [new["orderId"]]  # the last 7 days by default
    ids = [row["orderId"] for row in um.call("GET", "allOrders", symbol=SYMBOL, startTime=start)]
    assert ids == [old["orderId"]]  # 7 days from startTime
    ids = [
        row["orderId"] for row in um.call("GET", "allOrders", symbol=SYMBOL, orderId=old["orderId"])
    ]
    assert ids == [old["orderId"], new["orderId"]]  # from an orderId: no window
    error = um.error(
        "GET",
        "allOrders",
        symbol=SYMBOL,
        startTime=start,
        endTime=start + 7 * 24 * 3_600_000 + 1,
    )
    assert (error.code, error.msg) == (-1127, "More than 168 hours between startTime and endTime.")
    same = um.error(
        "GET", "userTrades", symbol=SYMBOL, startTime=start, endTime=start + 8 * 24 * 3_600_000
    )
    assert same.code == error.code
