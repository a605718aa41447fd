"""Spot orders on a quiet venue: validation, matching, balances, STP, stops and reports."""

from __future__ import annotations

from decimal import Decimal

import pytest

from scenarios.venue import spot_api
from scenarios.venue.market import BookSide, Side
from tests.venue.test_spot_support import KEYS, LIMIT_BUY, D, Desk

A, B = KEYS[0], KEYS[1]


def _ladder(desk: Desk, side: BookSide, levels: int = 3) -> list[tuple[Decimal, Decimal]]:
    bids, asks = desk.market().top(levels)
    return bids if side is BookSide.BID else asks


# --- validation ----------------------------------------------------------------------------

BAD_ORDERS = [
    (
        {"side": None},
        -1102,
        "Mandatory parameter 'side' was not sent, was empty/null, or malformed.",
    ),
    ({"side": "buy"}, -1117, "Invalid side."),
    ({"type": "STOP"}, -1116, "Invalid orderType."),
    ({"timeInForce": "GTX"}, -1115, "Invalid timeInForce."),
    (
        {"timeInForce": None},
        -1102,
        "Mandatory parameter 'timeInForce' was not sent, was empty/null, or malformed.",
    ),
    (
        {"quantity": "1e-3"},
        -1100,
        "Illegal characters found in parameter 'quantity'; legal range is "
        "'^([0-9]{1,20})(\\.[0-9]{1,20})?$'.",
    ),
    ({"quantity": "0.000000001"}, -1111, "Parameter 'quantity' has too much precision."),
    ({"price": "60000.001"}, -1013, "Filter failure: PRICE_FILTER"),
    ({"quantity": "0.000015"}, -1013, "Filter failure: LOT_SIZE"),
    ({"quantity": "0.00001"}, -1013, "Filter failure: NOTIONAL"),
    ({"price": "1000"}, -1013, "Filter failure: PERCENT_PRICE_BY_SIDE"),
    ({"stopPrice": "61000"}, -1106, "Parameter 'stopPrice' sent when not required."),
    ({"trailingDelta": "100"}, -1106, "Parameter 'trailingDelta' sent when not required."),
    ({"quoteOrderQty": "10"}, -1106, "Parameter 'quoteOrderQty' sent when not required."),
    ({"newOrderRespType": "ALL"}, -1136, "Invalid newOrderRespType."),
    (
        {"selfTradePreventionMode": "TRANSFER"},
        -1013,
        "This symbol does not allow the specified self-trade prevention mode.",
    ),
    (
        {"selfTradePreventionMode": "SOMETIMES"},
        -1130,
        "Data sent for parameter 'selfTradePreventionMode' is not valid.",
    ),
    ({"strategyType": "42"}, -1134, "strategyType was less than 1000000."),
    # LONG and INT parameters out of range: -1130 before anything is placed.
    (
        {"strategyId": "99999999999999999999"},
        -1130,
        "Data sent for parameter 'strategyId' is not valid.",
    ),
    (
        {"strategyId": "9223372036854775808"},
        -1130,
        "Data sent for parameter 'strategyId' is not valid.",
    ),
    (
        {"strategyType": "2147483648"},
        -1130,
        "Data sent for parameter 'strategyType' is not valid.",
    ),
    (
        {"strategyId": "-1"},
        -1100,
        "Illegal characters found in parameter 'strategyId'; legal range is '^[0-9]{1,20}$'.",
    ),
    (
        {"newClientOrderId": "has space"},
        -1100,
        "Illegal characters found in parameter 'newClientOrderId'; legal range is "
        "'^[\\.A-Z\\:/a-z0-9_-]{1,36}$'.",
    ),
    ({"icebergQty": "0.00002", "quantity": "0.01"}, -1013, "Filter failure: ICEBERG_PARTS"),
    ({"icebergQty": "0.01", "timeInForce": "IOC"}, -1014, "Unsupported order combination."),
    ({"quantity": "100"}, -2010, "Account has insufficient balance for requested action."),
]


@pytest.mark.parametrize(("change", "code", "message"), BAD_ORDERS)
async def test_a_bad_limit_order_gets_binances_error(change, code, message) -> None:
    desk = Desk()
    error = desk.refused(**{**LIMIT_BUY, "price": "60000.00", **change})
    assert (error.code, error.msg) == (code, message)
    assert desk.engine.orders == {}
    assert desk.balance("USDT") == (D(100000), D(0))


MARKET_ERRORS = [
    (
        {},
        -1102,
        "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!",
    ),
    ({"quantity": "1", "price": "1"}, -1106, "Parameter 'price' sent when not required."),
    (
        {"quantity": "1", "timeInForce": "GTC"},
        -1106,
        "Parameter 'timeInForce' sent when not required.",
    ),
    ({"quantity": "200"}, -1013, "Filter failure: MARKET_LOT_SIZE"),
    ({"quoteOrderQty": "1"}, -1013, "Filter failure: NOTIONAL"),
]


@pytest.mark.parametrize(("params", "code", "message"), MARKET_ERRORS)
async def test_a_bad_market_order_gets_binances_error(params, code, message) -> None:
    desk = Desk()
    error = desk.refused(side="SELL", type="MARKET", **params)
    assert (error.code, error.msg) == (code, message)


async def test_integer_parameters_at_their_limits() -> None:
    desk = Desk()
    body = desk.limit(
        "BUY", desk.best(BookSide.BID) - 10, strategyId=2**63 - 1, strategyType=2**31 - 1
    )
    assert (body["strategyId"], body["strategyType"]) == (2**63 - 1, 2**31 - 1)
    report = desk.reports(order_id=body["orderId"])[-1]
    assert (report["j"], report["J"]) == (2**63 - 1, 2**31 - 1)
    # A trailing delta beyond a LONG, and an order list leg's strategyId.
    error = desk.refused(
        side="SELL", type="STOP_LOSS", quantity="0.01", trailingDelta="99999999999999999999"
    )
    assert (error.code, error.msg) == (
        -1130,
        "Data sent for parameter 'trailingDelta' is not valid.",
    )
    params = desk.sell_oco_params(aboveStrategyId="18446744073709551616")
    error = desk.fails(spot_api.place_oco, **params)
    assert (error.code, error.msg) == (
        -1130,
        "Data sent for parameter 'aboveStrategyId' is not valid.",
    )
    assert len(desk.engine.orders) == 1
    assert desk.engine.order_lists == {}
    # Lookups go through the pipeline's LONG check too.
    error = desk.fails(spot_api.query_order, symbol="BTCUSDT", orderId="99999999999999999999")
    assert (error.code, error.msg) == (-1130, "Data sent for parameter 'orderId' is not valid.")
    error = desk.fails(spot_api.my_trades, symbol="BTCUSDT", fromId="99999999999999999999")
    assert (error.code, error.msg) == (-1130, "Data sent for parameter 'fromId' is not valid.")


async def test_the_percent_price_filter_is_named_as_the_symbol_publishes_it() -> None:
    desk = Desk()  # BNBUSDT publishes PERCENT_PRICE, not PERCENT_PRICE_BY_SIDE
    error = desk.refused(
        symbol="BNBUSDT", side="SELL", type="LIMIT", timeInForce="GTC", quantity="1", price="9000"
    )
    assert (error.code, error.msg) == (-1013, "Filter failure: PERCENT_PRICE")


async def test_stop_orders_that_would_trigger_at_once_are_refused() -> None:
    desk = Desk()
    last = desk.market().last_price
    for side, kind, stop in (
        ("SELL", "STOP_LOSS", last + 100),
        ("BUY", "STOP_LOSS", last - 100),
        ("SELL", "TAKE_PROFIT", last - 100),
        ("BUY", "TAKE_PROFIT", last + 100),
    ):
        error = desk.refused(side=side, type=kind, quantity="0.01", stopPrice=stop)
        assert (error.code, error.msg) == (-2010, "Order would trigger immediately.")
    error = desk.refused(side="SELL", type="STOP_LOSS", quantity="0.01")
    assert (
        error.msg == "Param 'stopPrice' or 'trailingDelta' must be sent, but both were empty/null!"
    )
    error = desk.refused(side="SELL", type="STOP_LOSS", quantity="0.01", trailingDelta="5")
    assert error.msg == "Filter failure: TRAILING_DELTA"


async def test_limit_maker_that_would_cross_is_refused() -> None:
    desk = Desk()
    ask = desk.best(BookSide.ASK)
    error = desk.refused(side="BUY", type="LIMIT_MAKER", quantity="0.01", price=ask)
    assert (error.code, error.msg) == (-2010, "Order would immediately match and take.")


async def test_duplicate_client_order_ids_among_open_orders_are_refused() -> None:
    desk = Desk()
    bid = desk.best(BookSide.BID)
    params = {**LIMIT_BUY, "price": bid - 50, "newClientOrderId": "mine-1"}
    desk.order(**params)
    error = desk.refused(**params)
    assert (error.code, error.msg) == (-2010, "Duplicate order sent.")
    desk.do(spot_api.cancel_order, symbol="BTCUSDT", origClientOrderId="mine-1")
    assert desk.order(**params)["clientOrderId"] == "mine-1"  # free again once closed


async def test_order_count_filters() -> None:
    desk = Desk(instruments=({"product": "spot", "symbol": "BTCUSDT", "max_num_orders": 2},))
    bid = desk.best(BookSide.BID)
    for offset in (50, 60):
        desk.limit("BUY", bid - offset)
    error = desk.refused(**LIMIT_BUY, price=bid - 70)
    assert error.msg == "Filter failure: MAX_NUM_ORDERS"
    desk = Desk()
    last = desk.market().last_price
    for offset in range(5):
        desk.stop_loss("SELL", stopPrice=last - 100 - offset)
    error = desk.refused(side="SELL", type="STOP_LOSS", quantity="0.01", stopPrice=last - 200)
    assert error.msg == "Filter failure: MAX_NUM_ALGO_ORDERS"


# --- matching and balances -----------------------------------------------------------------


async def test_a_market_buy_pays_quote_and_receives_base_less_commission() -> None:
    desk = Desk()
    asks = _ladder(desk, BookSide.ASK, 10)
    body = desk.order(side="BUY", type="MARKET", quantity="0.05")
    assert body["status"] == "FILLED"
    fills = body["fills"]
    cost = sum(D(fill["price"]) * D(fill["qty"]) for fill in fills)
    assert D(body["cummulativeQuoteQty"]) == cost
    assert [D(fill["price"]) for fill in fills] == sorted(D(f["price"]) for f in fills)
    assert D(fills[0]["price"]) == asks[0][0]
    commission = sum(D(fill["commission"]) for fill in fills)
    assert {fill["commissionAsset"] for fill in fills} == {"BTC"}
    assert desk.balance("BTC") == (D(10) + D("0.05") - commission, 0)
    assert desk.balance("USDT") == (D(100000) - cost, 0)
    desk.engine.check_invariants()


async def test_commission_is_in_the_received_asset_at_the_tier_and_rounds_up() -> None:
    desk = Desk()
    desk.engine.control_actions()["fee_tier"]({"account": A, "maker": "0.0002", "taker": "0.00075"})
    body = desk.order(side="SELL", type="MARKET", quantity="0.00013")
    for fill in body["fills"]:
        quote = D(fill["price"]) * D(fill["qty"])
        exact = quote * D("0.00075")
        charged = D(fill["commission"])
        assert fill["commissionAsset"] == "USDT"
        assert exact <= charged < exact + D("0.00000001")
    account = desk.do(spot_api.account_info)
    assert (account["makerCommission"], account["takerCommission"]) == (2, 7)
    assert account["commissionRates"]["taker"] == "0.00075000"


async def test_a_crossing_buy_keeps_only_remaining_times_price_locked() -> None:
    desk = Desk()
    asks = _ladder(desk, BookSide.ASK, 3)
    price = asks[1][0]
    quantity = asks[0][1] + asks[1][1] + D("0.01")
    body = desk.limit("BUY", price, quantity=quantity)
    assert body["status"] == "PARTIALLY_FILLED"
    assert [fill["price"] for fill in body["fills"]] == [f"{asks[0][0]:.8f}", f"{price:.8f}"]
    order = desk.engine.orders[body["orderId"]]
    # The first level filled below the limit price: that saving is not kept locked.
    assert order.remaining == D("0.01")
    assert order.locked == D("0.01") * price
    spent = sum(D(fill["price"]) * D(fill["qty"]) for fill in body["fills"])
    assert desk.balance("USDT") == (D(100000) - spent - D("0.01") * price, D("0.01") * price)
    last_position = desk.of_type("outboundAccountPosition")[-1]
    usdt = next(row for row in last_position["B"] if row["a"] == "USDT")
    assert D(usdt["l"]) == D("0.01") * price
    desk.engine.check_invariants()


async def test_a_resting_limit_locks_quote_and_a_cancel_releases_it() -> None:
    desk = Desk()
    price = desk.best(BookSide.BID) - 100
    body = desk.limit("BUY", price, quantity="0.02", newClientOrderId="c1")
    assert body["status"] == "NEW"
    assert body["fills"] == []
    assert desk.balance("USDT") == (D(100000) - price * D("0.02"), price * D("0.02"))
    assert desk.market().resting(desk.engine.orders[body["orderId"]]) == D("0.02")
    cancelled = desk.do(
        spot_api.cancel_order, symbol="BTCUSDT", orderId=body["orderId"], newClientOrderId="bye"
    )
    assert (cancelled["status"], cancelled["origClientOrderId"], cancelled["clientOrderId"]) == (
        "CANCELED",
        "c1",
        "bye",
    )
    assert desk.balance("USDT") == (D(100000), 0)
    report = desk.reports(order_id=body["orderId"])[-1]
    assert (report["x"], report["X"], report["c"], report["C"], report["w"]) == (
        "CANCELED",
        "CANCELED",
        "bye",
        "c1",
        False,
    )
    positions = desk.of_type("outboundAccountPosition")
    assert positions[-1]["B"] == [{"a": "USDT", "f": "100000.00000000", "l": "0.00000000"}]
    error = desk.fails(spot_api.cancel_order, symbol="BTCUSDT", orderId=body["orderId"])
    assert (error.code, error.msg) == (-2011, "Unknown order sent.")
    error = desk.fails(spot_api.query_order, symbol="BTCUSDT", orderId=999)
    assert (error.code, error.msg) == (-2013, "Order does not exist.")


async def test_response_types_default_as_binance_and_can_be_chosen() -> None:
    desk = Desk()
    bid = desk.best(BookSide.BID)
    limit = desk.limit("BUY", bid - 10)
    maker = desk.order(side="BUY", type="LIMIT_MAKER", quantity="0.01", price=str(bid - 11))
    stop = desk.stop_limit("SELL", stop=bid - 150, price=bid - 200)
    result = desk.limit("BUY", bid - 12, newOrderRespType="RESULT")
    assert "fills" in limit
    assert (
        set(maker)
        == set(stop)
        == {
            "symbol",
            "orderId",
            "orderListId",
            "clientOrderId",
            "transactTime",
        }
    )
    assert "fills" not in result
    assert result["status"] == "NEW"
    query = desk.do(spot_api.query_order, symbol="BTCUSDT", orderId=stop["orderId"])
    assert (query["isWorking"], query["workingTime"], query["stopPrice"]) == (
        False,
        -1,
        f"{bid - 150:.8f}",
    )


async def test_ioc_fok_and_quote_quantity_orders() -> None:
    desk = Desk()
    asks = _ladder(desk, BookSide.ASK, 2)
    first_price, first_size = asks[0]
    ioc = desk.limit("BUY", first_price, quantity=first_size * 3, timeInForce="IOC")
    assert (ioc["status"], D(ioc["executedQty"])) == ("EXPIRED", first_size)
    expired = desk.reports(order_id=ioc["orderId"])[-1]
    assert (expired["x"], expired["X"], expired["eR"]) == (
        "EXPIRED",
        "EXPIRED",
        "UNFILLED_IOC_QUANTITY_EXPIRED",
    )
    price = desk.best(BookSide.ASK)
    fok = desk.limit("BUY", price, quantity="1", timeInForce="FOK")
    assert (fok["status"], fok["fills"]) == ("EXPIRED", [])
    quote = desk.order(side="BUY", type="MARKET", quoteOrderQty="1000")
    assert quote["status"] == "FILLED"
    assert D(quote["cummulativeQuoteQty"]) <= D(1000)
    assert D(quote["origQuoteOrderQty"]) == D(1000)
    assert D(quote["origQty"]) == D(quote["executedQty"]) > 0
    assert D(1000) - D(quote["cummulativeQuoteQty"]) < desk.best(BookSide.ASK) * D("0.00001")
    desk.engine.check_invariants()


async def test_an_iceberg_shows_only_its_slice() -> None:
    desk = Desk()
    price = desk.clear(BookSide.ASK, 3) - D("0.01")
    body = desk.limit("SELL", price, quantity="0.5", icebergQty="0.1")
    _, asks = desk.market().top(1)
    assert asks == [(price, D("0.1"))]
    assert desk.balance("BTC")[1] == D("0.5")
    query = desk.do(spot_api.query_order, symbol="BTCUSDT", orderId=body["orderId"])
    assert query["icebergQty"] == "0.10000000"
    assert desk.reports(order_id=body["orderId"])[0]["F"] == "0.10000000"


async def test_background_takers_fill_resting_orders() -> None:
    desk = Desk()
    ask = desk.best(BookSide.ASK)
    body = desk.limit("SELL", ask)
    order = desk.engine.orders[body["orderId"]]
    desk.take(Side.BUY, ask)
    assert order.status == "FILLED"
    trade = desk.reports(order_id=order.order_id)[-1]
    assert (trade["x"], trade["X"], trade["m"], trade["w"], trade["N"]) == (
        "TRADE",
        "FILLED",
        True,
        False,
        "USDT",
    )
    fee = D(trade["n"])
    assert desk.balance("BTC") == (D(10) - D("0.01"), 0)
    assert desk.balance("USDT") == (D(100000) + ask * D("0.01") - fee, 0)
    rows = desk.do(spot_api.my_trades, symbol="BTCUSDT")
    assert [(row["id"], row["isMaker"], row["isBuyer"]) for row in rows] == [
        (trade["t"], True, False)
    ]


# --- self-trade prevention -------------------------------------------------------------------


async def test_expire_maker_is_the_default_and_reports_the_prevented_match() -> None:
    desk = Desk()
    ask = desk.clear(BookSide.ASK, 3)
    maker = desk.limit("SELL", ask - D("0.01"))
    taker = desk.limit("BUY", ask - D("0.01"))
    assert taker["preventedMatches"] == [
        {
            "preventedMatchId": 0,
            "makerOrderId": maker["orderId"],
            "price": f"{ask - D('0.01'):.8f}",
            "makerPreventedQuantity": "0.01000000",
        }
    ]
    assert taker["status"] == "NEW"  # it rests where the maker was
    query = desk.do(spot_api.query_order, symbol="BTCUSDT", orderId=maker["orderId"])
    assert (query["status"], query["preventedMatchId"], query["preventedQuantity"]) == (
        "EXPIRED_IN_MATCH",
        0,
        "0.01000000",
    )
    report = desk.reports(order_id=maker["orderId"])[-1]
    assert (report["x"], report["X"], report["v"], report["A"], report["B"], report["U"]) == (
        "TRADE_PREVENTION",
        "EXPIRED_IN_MATCH",
        0,
        "0.01000000",
        "0.01000000",
        taker["orderId"],
    )
    assert desk.balance("BTC")[1] == 0
    desk.engine.check_invariants()


@pytest.mark.parametrize(
    ("mode", "taker_status", "maker_status", "maker_left"),
    [
        ("EXPIRE_TAKER", "EXPIRED_IN_MATCH", "NEW", "0.03"),
        ("EXPIRE_BOTH", "EXPIRED_IN_MATCH", "EXPIRED_IN_MATCH", "0"),
        ("DECREMENT", "EXPIRED_IN_MATCH", "NEW", "0.02"),
    ],
)
async def test_stp_modes(mode, taker_status, maker_status, maker_left) -> None:
    desk = Desk()
    price = desk.clear(BookSide.ASK, 3) - D("0.01")
    maker = desk.limit("SELL", price, quantity="0.03")
    taker = desk.limit("BUY", price, selfTradePreventionMode=mode)
    assert taker["status"] == taker_status
    assert taker["preventedQuantity"] == "0.01000000"
    maker_order = desk.engine.orders[maker["orderId"]]
    assert maker_order.status == maker_status
    assert maker_order.remaining == D(maker_left)
    assert desk.market().resting(maker_order) == (D(maker_left) or None)
    # What prevention expired from the maker is no longer locked for it.
    assert maker_order.locked == maker_order.remaining
    assert desk.engine.fills == []
    # Prevention reports are not trades: l/L/Y zero; B this prevention, pl/pL/pY what
    # would have traded (the smaller of the two quantities, at the maker's price).
    zero, would = "0.00000000", "0.01000000"
    report = desk.reports(order_id=taker["orderId"])[-1]
    assert (report["x"], report["l"], report["L"], report["Y"]) == (
        "TRADE_PREVENTION",
        zero,
        zero,
        zero,
    )
    assert (report["B"], report["A"], report["U"], report["Cs"]) == (
        "0.01000000",
        "0.01000000",
        maker["orderId"],
        "BTCUSDT",
    )
    assert (report["pl"], report["pL"], report["pY"]) == (
        would,
        f"{price:.8f}",
        f"{price * D(would):.8f}",
    )
    maker_reports = desk.reports(order_id=maker["orderId"])
    if mode != "EXPIRE_TAKER":
        expired = D("0.03") - D(maker_left)
        last = maker_reports[-1]
        assert (last["x"], last["l"], last["B"], last["pl"], last["U"]) == (
            "TRADE_PREVENTION",
            zero,
            f"{expired:.8f}",
            would,
            taker["orderId"],
        )
    else:
        assert [r["x"] for r in maker_reports] == ["NEW"]
    desk.engine.check_invariants()


async def test_stp_none_trades_with_itself_and_both_sides_pay_commission() -> None:
    desk = Desk()
    price = desk.clear(BookSide.ASK, 3) - D("0.01")
    desk.limit("SELL", price)
    taker = desk.limit("BUY", price, selfTradePreventionMode="NONE")
    assert taker["status"] == "FILLED"
    rows = desk.do(spot_api.my_trades, symbol="BTCUSDT")
    assert len(rows) == 2
    assert rows[0]["id"] == rows[1]["id"]
    assert {row["isMaker"] for row in rows} == {True, False}
    fee_btc = sum(D(r["commission"]) for r in rows if r["commissionAsset"] == "BTC")
    fee_usdt = sum(D(r["commission"]) for r in rows if r["commissionAsset"] == "USDT")
    assert desk.balance("BTC") == (D(10) - fee_btc, 0)
    assert desk.balance("USDT") == (D(100000) - fee_usdt, 0)


async def test_other_accounts_trade_with_each_other() -> None:
    desk = Desk()
    price = desk.clear(BookSide.ASK, 3) - D("0.01")
    maker = desk.limit("SELL", price, account=B)
    taker = desk.order(A, side="BUY", type="MARKET", quantity="0.01")
    assert taker["fills"][0]["price"] == f"{price:.8f}"
    assert desk.engine.orders[maker["orderId"]].status == "FILLED"
    maker_trade = desk.reports(B, maker["orderId"])[-1]
    taker_trade = desk.reports(A, taker["orderId"])[-1]
    assert maker_trade["t"] == taker_trade["t"] == taker["fills"][0]["tradeId"]
    assert (maker_trade["m"], taker_trade["m"]) == (True, False)


# --- stops ----------------------------------------------------------------------------------


async def test_a_stop_limit_triggers_when_the_market_falls_to_it() -> None:
    desk = Desk()
    last = desk.market().last_price
    body = desk.stop_limit("SELL", stop=last - 20, price=last - 40, newOrderRespType="RESULT")
    assert (body["workingTime"], body["stopPrice"]) == (-1, f"{last - 20:.8f}")
    first = desk.reports(order_id=body["orderId"])[0]
    assert (first["x"], first["w"], "W" in first) == ("NEW", False, False)
    assert desk.balance("BTC")[1] == D("0.01")
    desk.move_to(last - 30)
    order = desk.engine.orders[body["orderId"]]
    assert order.triggered
    assert order.working_time_ms > 0
    query = desk.do(spot_api.query_order, symbol="BTCUSDT", orderId=body["orderId"])
    assert (query["type"], query["isWorking"]) == ("STOP_LOSS_LIMIT", True)
    assert query["status"] in ("NEW", "PARTIALLY_FILLED", "FILLED")
    triggered = desk.reports(order_id=body["orderId"])[1]
    assert (triggered["x"], triggered["o"], triggered["W"]) == (
        "NEW",
        "STOP_LOSS_LIMIT",
        order.working_time_ms,
    )
    desk.engine.check_invariants()


async def test_own_trades_trigger_stops_in_the_same_request() -> None:
    desk = Desk()
    bids = _ladder(desk, BookSide.BID, 5)
    stop_price = bids[2][0]
    stop = desk.stop_loss("SELL", quantity="0.001", account=B, stopPrice=stop_price)
    size = sum(level[1] for level in bids[:4])
    desk.order(A, side="SELL", type="MARKET", quantity=str(size))
    order = desk.engine.orders[stop["orderId"]]
    assert order.triggered
    assert order.status in ("FILLED", "EXPIRED")
    reports = desk.reports(B, stop["orderId"])
    assert [report["x"] for report in reports][:2] == ["NEW", "NEW"]


async def test_a_trailing_stop_follows_the_high_and_fires_on_the_pullback() -> None:
    desk = Desk()
    last = desk.market().last_price
    body = desk.stop_loss("SELL", trailingDelta="100", newOrderRespType="RESULT")
    assert body["trailingDelta"] == 100
    assert body["trailingTime"] > 0
    assert "stopPrice" not in body
    new = desk.reports(order_id=body["orderId"])[0]
    assert (new["x"], new["d"], new["D"]) == ("NEW", 100, body["trailingTime"])
    desk.move_to(last + 300)
    desk.move_to(last + 600)
    order = desk.engine.orders[body["orderId"]]
    assert not order.triggered
    assert order.trailing_extreme >= last + 599
    desk.move_to(last + 300)  # 0.5% off the high: not yet
    assert not order.triggered
    desk.move_to((last + 600) * D("0.985"))
    assert order.triggered
    report = desk.reports(order_id=order.order_id)[1]
    assert (report["d"], report["x"]) == (100, "NEW")


async def test_a_trailing_stop_with_a_stop_price_starts_trailing_there() -> None:
    desk = Desk()
    last = desk.market().last_price
    body = desk.stop_loss(
        "BUY", trailingDelta="200", stopPrice=last + 100, newOrderRespType="RESULT"
    )
    assert body["trailingTime"] == -1
    order = desk.engine.orders[body["orderId"]]
    desk.move_to(last - 500)
    assert order.trailing_extreme is None
    desk.move_to(last + 150)
    assert order.trailing_extreme is not None
    assert not order.triggered
    desk.move_to(last + 50)
    desk.move_to(order.trailing_extreme * D("1.03"))
    assert order.triggered


# --- account and commission endpoints -------------------------------------------------------


async def test_account_commission_test_order_and_rate_limits() -> None:
    desk = Desk()
    account = desk.do(spot_api.account_info, omitZeroBalances="true")
    assert [row["asset"] for row in account["balances"]] == ["USDT", "BTC"]
    everything = desk.do(spot_api.account_info)
    assert {"ETH", "BNB"} <= {row["asset"] for row in everything["balances"]}
    commission = desk.do(spot_api.account_commission, symbol="BTCUSDT")
    assert commission["standardCommission"]["maker"] == "0.00100000"
    assert (
        desk.do(spot_api.order_test, symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.01")
        == {}
    )
    rates = desk.do(
        spot_api.order_test,
        symbol="BTCUSDT",
        side="BUY",
        type="MARKET",
        quantity="0.01",
        computeCommissionRates="true",
    )
    assert rates["standardCommissionForOrder"] == {"maker": "0.00100000", "taker": "0.00100000"}
    error = desk.fails(
        spot_api.order_test, symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.000001"
    )
    assert error.msg == "Filter failure: LOT_SIZE"
    assert desk.engine.orders == {}
    limits = desk.do(spot_api.rate_limit_orders)
    assert [(row["interval"], row["intervalNum"], row["limit"]) for row in limits] == [
        ("SECOND", 10, 50),
        ("DAY", 1, 160000),
    ]
    assert all(row["rateLimitType"] == "ORDERS" and "count" in row for row in limits)


async def test_queries_all_orders_and_my_trades_windows() -> None:
    desk = Desk()
    for _ in range(3):
        desk.order(side="BUY", type="MARKET", quantity="0.001")
    orders = desk.do(spot_api.all_orders, symbol="BTCUSDT")
    assert [row["orderId"] for row in orders] == [1, 2, 3]
    assert [
        row["orderId"] for row in desk.do(spot_api.all_orders, symbol="BTCUSDT", orderId=2)
    ] == [2, 3]
    assert len(desk.do(spot_api.all_orders, symbol="BTCUSDT", limit=1)) == 1
    trades = desk.do(spot_api.my_trades, symbol="BTCUSDT")
    assert [row["orderId"] for row in desk.do(spot_api.my_trades, symbol="BTCUSDT", orderId=2)] == [
        row["orderId"] for row in trades if row["orderId"] == 2
    ]
    error = desk.fails(spot_api.my_trades, symbol="BTCUSDT", fromId=1, startTime=1)
    assert error.code == -1128
    error = desk.fails(spot_api.all_orders, symbol="BTCUSDT", startTime=0, endTime=90_000_000)
    assert (error.code, error.msg) == (-1127, "More than 24 hours between startTime and endTime.")


# --- control actions ---------------------------------------------------------------------------


async def test_control_actions_fund_and_show_the_truth() -> None:
    desk = Desk()
    actions = desk.engine.control_actions()
    result = actions["fund"]({"account": B, "asset": "eth", "delta": "2.5"})
    assert result == {"account": B, "asset": "ETH", "free": "2.50000000", "locked": "0.00000000"}
    update, position = desk.events[B][-2:]
    assert (update["e"], update["a"], update["d"]) == ("balanceUpdate", "ETH", "2.50000000")
    assert position["e"] == "outboundAccountPosition"
    assert position["B"][0]["a"] == "ETH"
    with pytest.raises(ValueError, match="cannot withdraw"):
        actions["fund"]({"account": B, "asset": "ETH", "delta": "-3"})
    with pytest.raises(ValueError, match="registered"):
        actions["fund"]({"account": "nobody", "asset": "ETH", "delta": "1"})
    desk.order(side="BUY", type="MARKET", quantity="0.001")
    assert actions["balances"]({})["BTC"]["free"] != "10.00000000"
    orders = actions["orders"]({"symbol": "BTCUSDT"})
    assert [(row["account"], row["status"]) for row in orders] == [(A, "FILLED")]
    fills = actions["fills"]({"account": A})
    assert fills
    assert all(row["account"] == A for row in fills)
    assert actions["fills"]({"account": B}) == []
