"""Conditional (algo) orders: validation, triggers on last and mark price, trailing stops,
closePosition, cancels, queries and the ALGO_UPDATE sequence."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.venue.test_futures_helpers import (
    USDM,
    Client,
    make_venue,
    market,
    walk_to,
)

SYMBOL = "BTCUSDT"


@pytest.fixture
async def venue():
    return make_venue()


@pytest.fixture
async def um(venue):
    return Client(venue, USDM)


def algo(**params):
    return {"algoType": "CONDITIONAL", "symbol": SYMBOL, **params}


def last(venue) -> Decimal:
    return market(venue, USDM, SYMBOL).last_price


def statuses(client: Client, algo_id: int) -> list[str]:
    return [
        event["o"]["X"] for event in client.of_type("ALGO_UPDATE") if event["o"]["aid"] == algo_id
    ]


async def test_stop_market_triggers_into_a_new_order(um, venue):
    trigger = (last(venue) + 200).quantize(Decimal("0.1"))
    body = um.call(
        "POST",
        "algoOrder",
        **algo(
            side="BUY",
            type="STOP_MARKET",
            quantity="0.005",
            triggerPrice=str(trigger),
            clientAlgoId="stop-1",
        ),
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


async def test_immediate_trigger_and_parameter_rules(um, venue):
    price = last(venue)
    below = str((price - 100).quantize(Decimal("0.1")))
    error = um.error(
        "POST",
        "algoOrder",
        **algo(side="BUY", type="STOP_MARKET", quantity="0.01", triggerPrice=below),
    )
    assert (error.code, error.msg) == (-2021, "Order would immediately trigger.")
    assert (
        um.error(
            "POST",
            "algoOrder",
            **algo(side="BUY", type="LIMIT", quantity="0.01", triggerPrice=below),
        ).code
        == -1116
    )
    assert (
        um.error(
            "POST",
            "algoOrder",
            symbol=SYMBOL,
            side="BUY",
            type="STOP_MARKET",
            quantity="0.01",
            triggerPrice=below,
        ).code
        == -1102
    )
    above = str((price + 100).quantize(Decimal("0.1")))
    error = um.error(
        "POST",
        "algoOrder",
        **algo(
            side="SELL",
            type="STOP_MARKET",
            quantity="0.01",
            triggerPrice=below,
            closePosition="true",
        ),
    )
    assert error.code == -4137
    error = um.error(
        "POST",
        "algoOrder",
        **algo(
            side="SELL",
            type="STOP_MARKET",
            triggerPrice=below,
            closePosition="true",
            reduceOnly="true",
        ),
    )
    assert error.code == -4138
    assert (
        um.error(
            "POST",
            "algoOrder",
            **algo(side="BUY", type="STOP", quantity="0.01", triggerPrice=above),
        ).code
        == -1102
    )  # STOP needs a price
    assert (
        um.error(
            "POST",
            "algoOrder",
            **algo(
                side="BUY",
                type="STOP_MARKET",
                quantity="0.01",
                triggerPrice=above,
                priceMatch="OPPONENT",
            ),
        ).code
        == -5038
    )
    assert (
        um.error(
            "POST",
            "algoOrder",
            **algo(side="SELL", type="TRAILING_STOP_MARKET", quantity="0.01", callbackRate="11"),
        ).code
        == -1130
    )


async def test_take_profit_limit_triggers_on_mark_price_and_rests(um, venue):
    price = last(venue)
    trigger = (price - 300).quantize(Decimal("0.1"))
    limit_price = (trigger - 500).quantize(Decimal("0.1"))
    body = um.call(
        "POST",
        "algoOrder",
        **algo(
            side="BUY",
            type="TAKE_PROFIT",
            quantity="0.01",
            triggerPrice=str(trigger),
            price=str(limit_price),
            workingType="MARK_PRICE",
            timeInForce="GTC",
        ),
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
    body = um.call(
        "POST",
        "algoOrder",
        **algo(
            side="SELL",
            type="TRAILING_STOP_MARKET",
            quantity="0.01",
            callbackRate="1",
            reduceOnly="true",
        ),
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
    body = um.call(
        "POST",
        "algoOrder",
        **algo(side="SELL", type="STOP_MARKET", triggerPrice=below, closePosition="true"),
    )
    assert body["closePosition"] is True
    assert body["timeInForce"] == "GTE_GTC"
    um.order(symbol=SYMBOL, side="SELL", type="MARKET", quantity="0.004")
    assert um.call("GET", "algoOrder", algoId=body["algoId"])["algoStatus"] == "EXPIRED"


async def test_close_position_stop_closes_the_whole_position(um, venue):
    um.order(symbol=SYMBOL, side="BUY", type="MARKET", quantity="0.004")
    trigger = (last(venue) - 150).quantize(Decimal("0.1"))
    um.call(
        "POST",
        "algoOrder",
        **algo(side="SELL", type="STOP_MARKET", triggerPrice=str(trigger), closePosition="true"),
    )
    um.order(symbol=SYMBOL, side="BUY", type="MARKET", quantity="0.002")
    walk_to(venue, USDM, SYMBOL, trigger - 100)
    account = um.engine.accounts.account(um.key)
    assert account.position(SYMBOL, "BOTH").amount == 0


async def test_cancel_and_queries(um, venue):
    above = str((last(venue) + 1000).quantize(Decimal("0.1")))
    first = um.call(
        "POST",
        "algoOrder",
        **algo(side="BUY", type="STOP_MARKET", quantity="0.01", triggerPrice=above),
    )
    second = um.call(
        "POST",
        "algoOrder",
        **algo(
            side="BUY", type="STOP_MARKET", quantity="0.01", triggerPrice=above, clientAlgoId="two"
        ),
    )
    assert (
        um.error(
            "POST",
            "algoOrder",
            **algo(
                side="BUY",
                type="STOP_MARKET",
                quantity="0.01",
                triggerPrice=above,
                clientAlgoId="two",
            ),
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
            um.call(
                "POST",
                "algoOrder",
                algoType="CONDITIONAL",
                symbol=symbol,
                side="BUY",
                type="STOP_MARKET",
                quantity="0.01",
                triggerPrice=trigger,
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
    body = um.call(
        "POST",
        "algoOrder",
        **algo(
            side="BUY",
            type="STOP_MARKET",
            quantity="0.01",
            triggerPrice=str(trigger),
            reduceOnly="true",
        ),
    )
    walk_to(venue, USDM, SYMBOL, trigger + 100)
    query = um.call("GET", "algoOrder", algoId=body["algoId"])
    assert query["algoStatus"] == "REJECTED"
    rejected = next(e["o"] for e in um.of_type("ALGO_UPDATE") if e["o"]["X"] == "REJECTED")
    assert rejected["rm"] == "ReduceOnly Order is rejected."
