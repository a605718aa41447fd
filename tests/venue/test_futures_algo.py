"""Conditional (algo) orders: validation, triggers on last and mark price, trailing stops,
closePosition, cancels, queries and the ALGO_UPDATE sequence; COIN-M legacy conditional
orders on ``/dapi/v1/order``."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest

from scenarios.venue.errors import VenueError
from tests.venue.test_futures_helpers import (
    COINM,
    USDM,
    Client,
    cm_fixture,  # noqa: F401  (fixture)
    market,
    um_fixture,  # noqa: F401  (fixture)
    venue_fixture,  # noqa: F401  (fixture)
    walk_to,
)

SYMBOL = "BTCUSDT"


def algo(**params):
    return {"algoType": "CONDITIONAL", "symbol": SYMBOL, **params}


def place_algo(client: Client, **params):
    """``POST /algoOrder``: a conditional order on ``SYMBOL``."""
    return client.algo_order(symbol=SYMBOL, **params)


def algo_error(client: Client, **params) -> VenueError:
    """The error ``POST /algoOrder`` answers a conditional order on ``SYMBOL`` with."""
    return client.error("POST", "algoOrder", **algo(**params))


def last(venue) -> Decimal:
    return market(venue, USDM, SYMBOL).last_price


def statuses(client: Client, algo_id: int) -> list[str]:
    return [
        event["o"]["X"] for event in client.of_type("ALGO_UPDATE") if event["o"]["aid"] == algo_id
    ]


async def test_stop_market_triggers_into_a_new_order(um, venue):
    trigger = (last(venue) + 200).quantize(Decimal("0.1"))
    body = place_algo(
        um,
        side="BUY",
        type="STOP_MARKET",
        quantity="0.005",
        triggerPrice=str(trigger),
        clientAlgoId="stop-1",
    )
    assert body["algoStatus"] == "NEW"
    assert body["clientAlgoId"] == "stop-1"
    assert body["selfTradePreventionMode"] == "NONE"
    assert body["icebergQuantity"] is None
    algo_id = body["algoId"]
    assert [row["algoId"] for row in um.call("GET", "openAlgoOrders")] == [algo_id]
    walk_to(venue, USDM, SYMBOL, trigger + 50)
    assert statuses(um, algo_id) == ["NEW", "TRIGGERING", "TRIGGERED", "FINISHED"]
    query = um.call("GET", "algoOrder", algoId=algo_id)
    assert query["algoStatus"] == "FINISHED"
    actual_id = int(query["actualOrderId"])
    order = um.call("GET", "order", symbol=SYMBOL, orderId=actual_id)
    assert (order["type"], order["origType"], order["status"]) == (
        "MARKET",
        "STOP_MARKET",
        "FILLED",
    )
    assert order["clientOrderId"] == "stop-1"
    assert Decimal(order["stopPrice"]) == trigger
    triggered = next(e["o"] for e in um.of_type("ALGO_UPDATE") if e["o"]["X"] == "TRIGGERED")
    assert triggered["ai"] == str(actual_id)
    assert triggered["act"] == "MARKET"
    triggering = next(e["o"] for e in um.of_type("ALGO_UPDATE") if e["o"]["X"] == "TRIGGERING")
    assert "ap" not in triggering
    new_events = [e["o"] for e in um.of_type("ORDER_TRADE_UPDATE", "NEW")]
    assert new_events[-1]["i"] == actual_id
    assert new_events[-1]["ot"] == "STOP_MARKET"
    assert um.call("GET", "openAlgoOrders") == []
    account = um.engine.accounts.account(um.key)
    assert account.position(SYMBOL, "BOTH").amount == Decimal("0.005")


async def test_immediate_trigger(um, venue):
    below = str((last(venue) - 100).quantize(Decimal("0.1")))
    error = algo_error(um, side="BUY", type="STOP_MARKET", quantity="0.01", triggerPrice=below)
    assert (error.code, error.msg) == (-2021, "Order would immediately trigger.")


#: Stand-ins for a trigger price 100 below / above the last price.
BELOW, ABOVE = "<below>", "<above>"


@pytest.mark.parametrize(
    ("params", "code"),
    [
        pytest.param(
            {"side": "BUY", "type": "LIMIT", "quantity": "0.01", "triggerPrice": BELOW},
            -1116,
            id="not-a-conditional-type",
        ),
        pytest.param(
            {
                "algoType": None,
                "side": "BUY",
                "type": "STOP_MARKET",
                "quantity": "0.01",
                "triggerPrice": BELOW,
            },
            -1102,
            id="no-algoType",
        ),
        pytest.param(
            {
                "side": "SELL",
                "type": "STOP_MARKET",
                "quantity": "0.01",
                "triggerPrice": BELOW,
                "closePosition": "true",
            },
            -4137,
            id="closePosition-with-quantity",
        ),
        pytest.param(
            {
                "side": "SELL",
                "type": "STOP_MARKET",
                "triggerPrice": BELOW,
                "closePosition": "true",
                "reduceOnly": "true",
            },
            -4138,
            id="closePosition-with-reduceOnly",
        ),
        pytest.param(
            {"side": "BUY", "type": "STOP", "quantity": "0.01", "triggerPrice": ABOVE},
            -1102,
            id="STOP-needs-a-price",
        ),
        pytest.param(
            {
                "side": "BUY",
                "type": "STOP_MARKET",
                "quantity": "0.01",
                "triggerPrice": ABOVE,
                "priceMatch": "OPPONENT",
            },
            -5038,
            id="priceMatch-on-STOP_MARKET",
        ),
        pytest.param(
            {
                "side": "SELL",
                "type": "TRAILING_STOP_MARKET",
                "quantity": "0.01",
                "callbackRate": "11",
            },
            -1130,
            id="callbackRate-above-10",
        ),
    ],
)
async def test_parameter_rules(um, venue, params, code):
    """``params`` (None: left out) of ``POST /algoOrder`` are refused with ``code``."""
    prices = {
        BELOW: str((last(venue) - 100).quantize(Decimal("0.1"))),
        ABOVE: str((last(venue) + 100).quantize(Decimal("0.1"))),
    }
    sent = {
        name: prices.get(value, value)
        for name, value in algo(**params).items()
        if value is not None
    }
    assert um.error("POST", "algoOrder", **sent).code == code


async def test_take_profit_limit_triggers_on_mark_price_and_rests(um, venue):
    price = last(venue)
    trigger = (price - 300).quantize(Decimal("0.1"))
    limit_price = (trigger - 500).quantize(Decimal("0.1"))
    body = place_algo(
        um,
        side="BUY",
        type="TAKE_PROFIT",
        quantity="0.01",
        triggerPrice=str(trigger),
        price=str(limit_price),
        workingType="MARK_PRICE",
        timeInForce="GTC",
    )
    walk_to(venue, USDM, SYMBOL, trigger - 100)
    um.engine.on_time(venue.clock.now_ms())
    query = um.call("GET", "algoOrder", algoId=body["algoId"])
    assert query["algoStatus"] == "TRIGGERED"
    order = um.call("GET", "order", symbol=SYMBOL, orderId=int(query["actualOrderId"]))
    assert (order["type"], order["origType"], order["status"]) == ("LIMIT", "TAKE_PROFIT", "NEW")
    assert Decimal(order["price"]) == limit_price
    um.call("DELETE", "order", symbol=SYMBOL, orderId=int(query["actualOrderId"]))
    assert um.call("GET", "algoOrder", algoId=body["algoId"])["algoStatus"] == "FINISHED"


async def test_trailing_stop_sell(um, venue):
    um.order(symbol=SYMBOL, side="BUY", type="MARKET", quantity="0.01")
    price = last(venue)
    body = place_algo(
        um,
        side="SELL",
        type="TRAILING_STOP_MARKET",
        quantity="0.01",
        callbackRate="1",
        reduceOnly="true",
    )
    high = (price * Decimal("1.02")).quantize(Decimal("0.1"))
    walk_to(venue, USDM, SYMBOL, high)
    assert um.call("GET", "algoOrder", algoId=body["algoId"])["algoStatus"] == "NEW"
    walk_to(venue, USDM, SYMBOL, (high * Decimal("0.995")).quantize(Decimal("0.1")))
    assert um.call("GET", "algoOrder", algoId=body["algoId"])["algoStatus"] == "NEW"
    walk_to(venue, USDM, SYMBOL, (high * Decimal("0.985")).quantize(Decimal("0.1")))
    query = um.call("GET", "algoOrder", algoId=body["algoId"])
    assert query["algoStatus"] == "FINISHED"
    account = um.engine.accounts.account(um.key)
    assert account.position(SYMBOL, "BOTH").amount == 0
    update = next(e["o"] for e in um.of_type("ALGO_UPDATE"))
    assert (update["cr"], update["ia"]) == ("1.0", True)


async def test_close_position_stop_expires_with_the_position(um, venue):
    um.order(symbol=SYMBOL, side="BUY", type="MARKET", quantity="0.004")
    below = str((last(venue) - 2000).quantize(Decimal("0.1")))
    body = place_algo(um, side="SELL", type="STOP_MARKET", triggerPrice=below, closePosition="true")
    assert body["closePosition"] is True
    assert body["timeInForce"] == "GTE_GTC"
    um.order(symbol=SYMBOL, side="SELL", type="MARKET", quantity="0.004")
    assert um.call("GET", "algoOrder", algoId=body["algoId"])["algoStatus"] == "EXPIRED"


async def test_close_position_stop_closes_the_whole_position(um, venue):
    um.order(symbol=SYMBOL, side="BUY", type="MARKET", quantity="0.004")
    trigger = (last(venue) - 150).quantize(Decimal("0.1"))
    place_algo(um, side="SELL", type="STOP_MARKET", triggerPrice=str(trigger), closePosition="true")
    um.order(symbol=SYMBOL, side="BUY", type="MARKET", quantity="0.002")
    walk_to(venue, USDM, SYMBOL, trigger - 100)
    account = um.engine.accounts.account(um.key)
    assert account.position(SYMBOL, "BOTH").amount == 0


async def test_cancel_and_queries(um, venue):
    above = str((last(venue) + 1000).quantize(Decimal("0.1")))
    first = place_algo(um, side="BUY", type="STOP_MARKET", quantity="0.01", triggerPrice=above)
    second = place_algo(
        um, side="BUY", type="STOP_MARKET", quantity="0.01", triggerPrice=above, clientAlgoId="two"
    )
    assert (
        algo_error(
            um,
            side="BUY",
            type="STOP_MARKET",
            quantity="0.01",
            triggerPrice=above,
            clientAlgoId="two",
        ).code
        == -4116
    )
    reply = um.call("DELETE", "algoOrder", algoId=first["algoId"])
    assert reply == {
        "algoId": first["algoId"],
        "clientAlgoId": first["clientAlgoId"],
        "code": "200",
        "msg": "success",
    }
    assert um.error("DELETE", "algoOrder", algoId=first["algoId"]).code == -2011
    assert statuses(um, first["algoId"]) == ["NEW", "CANCELED"]
    assert um.call("DELETE", "algoOpenOrders", symbol=SYMBOL) == {
        "code": 200,
        "msg": "The operation of cancel all open order is done.",
    }
    assert um.call("GET", "algoOrder", clientAlgoId="two")["algoStatus"] == "CANCELED"
    rows = um.call("GET", "allAlgoOrders", symbol=SYMBOL)
    assert [row["algoId"] for row in rows] == [first["algoId"], second["algoId"]]
    assert um.error("GET", "algoOrder", algoId=1).code == -2013


async def test_open_algo_order_limit(um, venue):
    engine = um.engine
    for symbol, count in (("BTCUSDT", 100), ("ETHUSDT", 100)):
        price = market(venue, USDM, symbol).last_price
        trigger = str((price * 2).quantize(Decimal("0.1")))
        for _ in range(count):
            um.algo_order(
                symbol=symbol, side="BUY", type="STOP_MARKET", quantity="0.01", triggerPrice=trigger
            )
    assert len(engine.open_algos) == 200
    quarterly = next(s for s in engine.instruments if s.startswith("BTCUSDT_"))
    price = market(venue, USDM, quarterly).last_price
    error = um.error(
        "POST",
        "algoOrder",
        algoType="CONDITIONAL",
        symbol=quarterly,
        side="BUY",
        type="STOP_MARKET",
        quantity="0.01",
        triggerPrice=str((price * 2).quantize(Decimal("0.1"))),
    )
    assert (error.code, error.msg) == (-4045, "Reach max stop order limit.")


async def test_rejected_at_trigger_time(um, venue):
    # a reduce-only stop with no position is refused when it triggers
    trigger = (last(venue) + 100).quantize(Decimal("0.1"))
    body = place_algo(
        um,
        side="BUY",
        type="STOP_MARKET",
        quantity="0.01",
        triggerPrice=str(trigger),
        reduceOnly="true",
    )
    walk_to(venue, USDM, SYMBOL, trigger + 100)
    query = um.call("GET", "algoOrder", algoId=body["algoId"])
    assert query["algoStatus"] == "REJECTED"
    rejected = next(e["o"] for e in um.of_type("ALGO_UPDATE") if e["o"]["X"] == "REJECTED")
    assert rejected["rm"] == "ReduceOnly Order is rejected."


# --- COIN-M legacy conditional orders on /dapi/v1/order -------------------------------------

PERP = "BTCUSD_PERP"


def cm_last(venue) -> Decimal:
    return market(venue, COINM, PERP).last_price


def order_events(client: Client, order_id: int) -> list[tuple[str, str, str, str, str]]:
    """``(x, X, o, ot, er)`` of one order's ORDER_TRADE_UPDATE events."""
    return [
        (e["o"]["x"], e["o"]["X"], e["o"]["o"], e["o"]["ot"], e["o"]["er"])
        for e in client.of_type("ORDER_TRADE_UPDATE")
        if e["o"]["i"] == order_id
    ]


async def test_coinm_legacy_stop_market_keeps_its_order_id(cm, venue):
    trigger = (cm_last(venue) - 200).quantize(Decimal("0.1"))
    body = cm.order(
        symbol=PERP,
        side="SELL",
        type="STOP_MARKET",
        quantity="3",
        stopPrice=str(trigger),
        newClientOrderId="legacy-1",
    )
    order_id = body["orderId"]
    assert (body["type"], body["origType"], body["status"]) == ("STOP_MARKET", "STOP_MARKET", "NEW")
    assert Decimal(body["stopPrice"]) == trigger
    assert (body["clientOrderId"], body["pair"], body["timeInForce"]) == (
        "legacy-1",
        "BTCUSD",
        "GTC",
    )
    assert [row["orderId"] for row in cm.call("GET", "openOrders", symbol=PERP)] == [order_id]
    assert cm.call("GET", "openAlgoOrders") == []
    assert order_events(cm, order_id) == [("NEW", "NEW", "STOP_MARKET", "STOP_MARKET", "0")]
    # not on the book and no open-order margin before it fires
    assert market(venue, COINM, PERP).resting(cm.engine.orders[order_id]) is None
    account = cm.call("GET", "account")
    assert all(row["openOrderInitialMargin"] == "0.00000000" for row in account["positions"])

    walk_to(venue, COINM, PERP, trigger - 50)
    events = order_events(cm, order_id)
    assert events[:3] == [
        ("NEW", "NEW", "STOP_MARKET", "STOP_MARKET", "0"),
        ("EXPIRED", "EXPIRED", "STOP_MARKET", "STOP_MARKET", "8"),
        ("NEW", "NEW", "MARKET", "STOP_MARKET", "0"),
    ]
    assert events[-1][:3] == ("TRADE", "FILLED", "MARKET")
    query = cm.call("GET", "order", symbol=PERP, origClientOrderId="legacy-1")
    assert (query["orderId"], query["type"], query["origType"], query["status"]) == (
        order_id,
        "STOP_MARKET",
        "STOP_MARKET",
        "FILLED",
    )
    assert Decimal(query["stopPrice"]) == trigger
    assert cm.of_type("ALGO_UPDATE") == []
    assert cm.engine.accounts.account(cm.key).position(PERP, "BOTH").amount == -3
    assert cm.call("GET", "openOrders", symbol=PERP) == []


async def test_coinm_legacy_stop_limit_rests_after_the_trigger(cm, venue):
    trigger = (cm_last(venue) + 150).quantize(Decimal("0.1"))
    limit_price = (trigger - 600).quantize(Decimal("0.1"))
    body = cm.order(
        symbol=PERP,
        side="BUY",
        type="STOP",
        quantity="2",
        price=str(limit_price),
        stopPrice=str(trigger),
        workingType="CONTRACT_PRICE",
        priceProtect="true",
    )
    assert (body["type"], body["priceProtect"], body["workingType"]) == (
        "STOP",
        True,
        "CONTRACT_PRICE",
    )
    walk_to(venue, COINM, PERP, trigger + 50)
    order = cm.engine.orders[body["orderId"]]
    query = cm.call("GET", "order", symbol=PERP, orderId=body["orderId"])
    assert (query["type"], query["status"], query["price"]) == ("STOP", "NEW", str(limit_price))
    assert market(venue, COINM, PERP).resting(order) == 2
    assert order_events(cm, body["orderId"])[-1] == ("NEW", "NEW", "LIMIT", "STOP", "0")
    # now it is a resting limit order with open-order margin, cancelled as usual
    canceled = cm.call("DELETE", "order", symbol=PERP, orderId=body["orderId"])
    assert (canceled["status"], canceled["type"]) == ("CANCELED", "STOP")
    assert market(venue, COINM, PERP).resting(order) is None


async def test_coinm_legacy_cancel_before_trigger_and_rules(cm, venue):
    price = cm_last(venue)
    trigger = (price + 100).quantize(Decimal("0.1"))
    body = cm.order(
        symbol=PERP,
        side="BUY",
        type="TAKE_PROFIT_MARKET",
        quantity="1",
        stopPrice=str((price - 100).quantize(Decimal("0.1"))),
    )
    canceled = cm.call("DELETE", "order", symbol=PERP, orderId=body["orderId"])
    assert canceled["status"] == "CANCELED"
    walk_to(venue, COINM, PERP, price - 300)
    assert cm.call("GET", "order", symbol=PERP, orderId=body["orderId"])["status"] == "CANCELED"
    assert cm.engine.waiting == {}
    error = cm.error("POST", "order", symbol=PERP, side="BUY", type="STOP_MARKET", quantity="1")
    assert (error.code, error.msg) == (
        -1102,
        "Mandatory parameter 'stopPrice' was not sent, was empty/null, or malformed.",
    )
    below = str((cm_last(venue) - 100).quantize(Decimal("0.1")))
    error = cm.error(
        "POST", "order", symbol=PERP, side="BUY", type="STOP_MARKET", quantity="1", stopPrice=below
    )
    assert error.code == -2021
    error = cm.error(
        "POST",
        "order",
        symbol=PERP,
        side="BUY",
        type="STOP_MARKET",
        quantity="1",
        stopPrice=str(trigger),
        triggerPrice=str(trigger),
        price="60000",
    )
    assert error.code == -1106  # price is not for STOP_MARKET
    tested = cm.call(
        "POST",
        "order/test",
        symbol=PERP,
        side="BUY",
        type="STOP_MARKET",
        quantity="1",
        stopPrice=str(trigger),
    )
    assert (tested["orderId"], tested["type"]) == (0, "STOP_MARKET")
    assert cm.call("GET", "openOrders", symbol=PERP) == []
    # after Binance's announced date: -4120 as on USD-M
    cm.engine.accepts_legacy_conditional = False
    error = cm.error(
        "POST", "order", symbol=PERP, side="BUY", type="STOP_MARKET", quantity="1", stopPrice="1"
    )
    assert error.code == -4120


async def test_coinm_legacy_trailing_stop_and_batch(cm, venue):
    cm.order(symbol=PERP, side="BUY", type="MARKET", quantity="4")
    price = cm_last(venue)
    activation = (price * Decimal("1.01")).quantize(Decimal("0.1"))
    item = {
        "symbol": PERP,
        "side": "SELL",
        "type": "TRAILING_STOP_MARKET",
        "quantity": "4",
        "callbackRate": "1",
        "activationPrice": str(activation),
        "reduceOnly": "true",
    }
    batch = orjson.dumps([item]).decode()
    [body] = cm.call("POST", "batchOrders", batchOrders=batch)
    assert (body["type"], body["activatePrice"], body["priceRate"]) == (
        "TRAILING_STOP_MARKET",
        str(activation),
        "1.0",
    )
    high = (price * Decimal("1.03")).quantize(Decimal("0.1"))
    walk_to(venue, COINM, PERP, high)
    query = cm.call("GET", "order", symbol=PERP, orderId=body["orderId"])
    assert query["status"] == "NEW"
    assert Decimal(query["stopPrice"]) == (high * Decimal("0.99")).quantize(
        Decimal("0.1"), "ROUND_FLOOR"
    )
    walk_to(venue, COINM, PERP, (high * Decimal("0.985")).quantize(Decimal("0.1")))
    query = cm.call("GET", "order", symbol=PERP, orderId=body["orderId"])
    assert (query["status"], query["type"]) == ("FILLED", "TRAILING_STOP_MARKET")
    assert cm.engine.accounts.account(cm.key).position(PERP, "BOTH").amount == 0


async def test_coinm_legacy_close_position_and_reduce_only_expire(cm, venue):
    cm.order(symbol=PERP, side="BUY", type="MARKET", quantity="2")
    below = (cm_last(venue) - 2000).quantize(Decimal("0.1"))
    body = cm.order(
        symbol=PERP, side="SELL", type="STOP_MARKET", stopPrice=str(below), closePosition="true"
    )
    assert (body["closePosition"], body["timeInForce"], body["origQty"]) == (True, "GTE_GTC", "0")
    cm.order(symbol=PERP, side="SELL", type="MARKET", quantity="2")
    assert order_events(cm, body["orderId"])[-1] == (
        "EXPIRED",
        "EXPIRED",
        "STOP_MARKET",
        "STOP_MARKET",
        "6",
    )
    assert cm.engine.waiting == {}
    # a reduce-only stop with nothing to reduce expires when it fires
    trigger = (cm_last(venue) + 100).quantize(Decimal("0.1"))
    body = cm.order(
        symbol=PERP,
        side="BUY",
        type="STOP_MARKET",
        quantity="1",
        stopPrice=str(trigger),
        reduceOnly="true",
    )
    walk_to(venue, COINM, PERP, trigger + 100)
    assert order_events(cm, body["orderId"])[-1] == (
        "EXPIRED",
        "EXPIRED",
        "STOP_MARKET",
        "STOP_MARKET",
        "4",
    )
    assert cm.call("GET", "order", symbol=PERP, orderId=body["orderId"])["status"] == "EXPIRED"


async def test_coinm_algo_orders_still_work_next_to_legacy_ones(cm, venue):
    trigger = str((cm_last(venue) + 300).quantize(Decimal("0.1")))
    legacy = cm.order(symbol=PERP, side="BUY", type="STOP_MARKET", quantity="1", stopPrice=trigger)
    placed = cm.algo_order(
        symbol=PERP, side="BUY", type="STOP_MARKET", quantity="1", triggerPrice=trigger
    )
    assert [row["algoId"] for row in cm.call("GET", "openAlgoOrders")] == [placed["algoId"]]
    cm.call("DELETE", "algoOpenOrders", symbol=PERP)  # leaves the legacy order alone
    assert [row["orderId"] for row in cm.call("GET", "openOrders")] == [legacy["orderId"]]
    cm.call("DELETE", "allOpenOrders", symbol=PERP)
    assert cm.call("GET", "openOrders") == []
    assert cm.engine.waiting == {}
