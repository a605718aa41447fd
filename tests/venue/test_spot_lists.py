"""Spot order lists, cancel-replace, amend keepPriority and cancel restrictions."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from scenarios.venue import spot_api
from scenarios.venue.market import BookSide, Side
from tests.venue.test_spot_support import KEYS, D, Desk

A = KEYS[0]


def _sell_oco_params(desk: Desk, **extra: Any) -> dict[str, Any]:
    """A SELL OCO: a LIMIT_MAKER 200 above the last price, a STOP_LOSS_LIMIT 100 below it."""
    last = desk.market().last_price
    stop_limit_leg = {
        "belowType": "STOP_LOSS_LIMIT",
        "belowStopPrice": last - 100,
        "belowPrice": last - 150,
        "belowTimeInForce": "GTC",
    }
    return desk.sell_oco_params(**{"abovePrice": last + 200, **stop_limit_leg, **extra})


def _sell_oco(desk: Desk, **extra: Any) -> dict:
    return desk.do(spot_api.place_oco, **_sell_oco_params(desk, **extra))


def _working_buy(price: Decimal) -> dict[str, Any]:
    """The working order of an OTO or OTOCO: a GTC limit BUY of 0.01 BTCUSDT at ``price``."""
    return {
        "symbol": "BTCUSDT",
        "workingType": "LIMIT",
        "workingSide": "BUY",
        "workingTimeInForce": "GTC",
        "workingQuantity": "0.01",
        "workingPrice": price,
    }


def _buy_then_sell(
    desk: Desk, working_price: Decimal, pending_price: Decimal, **extra: Any
) -> dict:
    """An OTO: a GTC limit BUY at ``working_price``, then a GTC limit SELL at ``pending_price``."""
    pending = {
        "pendingType": "LIMIT",
        "pendingSide": "SELL",
        "pendingTimeInForce": "GTC",
        "pendingQuantity": "0.01",
        "pendingPrice": pending_price,
    }
    return desk.do(spot_api.place_oto, **{**_working_buy(working_price), **pending, **extra})


def _buy_then_oco(
    desk: Desk, working_price: Decimal, above: Decimal, below_stop: Decimal, **extra: Any
) -> dict:
    """An OTOCO: a GTC limit BUY of 0.01 at ``working_price``, then a SELL OCO of its 0.01 with
    a LIMIT_MAKER at ``above`` and a STOP_LOSS at ``below_stop``."""
    pending = {
        "pendingSide": "SELL",
        "pendingQuantity": "0.01",
        "pendingAboveType": "LIMIT_MAKER",
        "pendingAbovePrice": above,
        "pendingBelowType": "STOP_LOSS",
        "pendingBelowStopPrice": below_stop,
    }
    return desk.do(spot_api.place_otoco, **{**_working_buy(working_price), **pending, **extra})


async def test_a_sell_oco_locks_once_and_the_stop_leg_expires_the_limit_leg() -> None:
    desk = Desk()
    body = _sell_oco(desk, listClientOrderId="my-oco")
    assert (body["contingencyType"], body["listStatusType"], body["listOrderStatus"]) == (
        "OCO",
        "EXEC_STARTED",
        "EXECUTING",
    )
    assert body["listClientOrderId"] == "my-oco"
    assert [report["type"] for report in body["orderReports"]] == ["STOP_LOSS_LIMIT", "LIMIT_MAKER"]
    assert [o["orderId"] for o in body["orders"]] == [r["orderId"] for r in body["orderReports"]]
    assert desk.balance("BTC") == (D(10) - D("0.01"), D("0.01"))  # one lock for both legs
    statuses = desk.of_type("listStatus")
    assert [(s["l"], s["L"], s["c"]) for s in statuses] == [("EXEC_STARTED", "EXECUTING", "OCO")]
    stop_id, limit_id = (report["orderId"] for report in body["orderReports"])
    desk.engine.check_invariants()
    desk.move_to(desk.market().last_price - 120)
    stop, limit = desk.engine.orders[stop_id], desk.engine.orders[limit_id]
    assert stop.triggered
    assert (limit.status, limit.expiry_reason) == ("EXPIRED", "OCO_TRIGGER")
    assert desk.market().resting(limit) is None
    done = desk.of_type("listStatus")[-1]
    assert (done["l"], done["L"]) == ("ALL_DONE", "ALL_DONE")
    listed = desk.do(spot_api.query_order_list, orderListId=body["orderListId"])
    assert listed["listOrderStatus"] == "ALL_DONE"
    assert "orderReports" not in listed
    desk.engine.check_invariants()


async def test_a_fill_of_the_limit_leg_expires_the_stop_leg() -> None:
    desk = Desk()
    body = _sell_oco(desk)
    stop_id, limit_id = (report["orderId"] for report in body["orderReports"])
    limit = desk.engine.orders[limit_id]
    desk.take(Side.BUY, limit.price)
    assert limit.status == "FILLED"
    assert desk.engine.orders[stop_id].status == "EXPIRED"
    assert desk.balance("BTC") == (D(10) - D("0.01"), 0)
    desk.engine.check_invariants()


async def test_oco_refusals() -> None:
    desk = Desk()
    last = desk.market().last_price
    for changes, code, message in (
        (
            {
                "abovePrice": last + 10,
                "belowType": "LIMIT_MAKER",
                "belowPrice": last - 10,
                "belowStopPrice": None,
            },
            -1168,
            "At least one OCO order must be contingent.",
        ),
        (
            {"side": "BUY", "abovePrice": last + 10, "belowStopPrice": last - 10},
            -1165,
            "A limit order in a buy OCO must be below.",
        ),
        (
            {"aboveType": "MARKET", "abovePrice": None, "belowStopPrice": None},
            -1158,
            "Order type not supported in OCO.",
        ),
    ):
        error = desk.fails(spot_api.place_oco, **desk.sell_oco_params(**changes))
        assert (error.code, error.msg) == (code, message)
    error = desk.fails(spot_api.place_oco, **_sell_oco_params(desk, abovePrice=last - 50))
    assert (error.code, error.msg) == (
        -2010,
        "The relationship of the prices for the orders is not correct.",
    )
    assert desk.engine.orders == {}


async def test_an_oto_places_its_pending_order_once_the_working_order_fills() -> None:
    desk = Desk()
    ask = desk.best(BookSide.ASK)
    bid = desk.best(BookSide.BID)
    body = _buy_then_sell(desk, bid, ask + 500)
    working_id, pending_id = (report["orderId"] for report in body["orderReports"])
    assert [report["status"] for report in body["orderReports"]] == ["NEW", "PENDING_NEW"]
    assert body["contingencyType"] == "OTO"
    pending = desk.engine.orders[pending_id]
    assert pending.working_time_ms == -1
    assert [row["orderId"] for row in desk.do(spot_api.open_orders, symbol="BTCUSDT")] == [
        working_id,
        pending_id,
    ]
    desk.take(Side.SELL, bid)
    assert desk.engine.orders[working_id].status == "FILLED"
    assert pending.status == "NEW"
    assert desk.market().resting(pending) == D("0.01")
    new_report = desk.reports(order_id=pending_id)[-1]
    assert (new_report["x"], new_report["X"], new_report["g"]) == (
        "NEW",
        "NEW",
        body["orderListId"],
    )
    cancelled = desk.do(spot_api.cancel_order, symbol="BTCUSDT", orderId=pending_id)
    assert cancelled["orderListId"] == body["orderListId"]
    assert cancelled["listStatusType"] == "ALL_DONE"
    desk.engine.check_invariants()


async def test_an_otoco_and_cancelling_every_open_order_of_the_symbol() -> None:
    desk = Desk()
    bid = desk.best(BookSide.BID)
    desk.limit("BUY", bid - 300)
    body = _buy_then_oco(desk, bid - 100, bid + 500, bid - 400, newOrderRespType="FULL")
    assert len(body["orderReports"]) == 3
    assert [r["status"] for r in body["orderReports"]] == ["NEW", "PENDING_NEW", "PENDING_NEW"]
    cancelled = desk.do(spot_api.cancel_open_orders, symbol="BTCUSDT")
    assert len(cancelled) == 2
    single, listed = cancelled
    assert single["status"] == "CANCELED"
    assert "orderReports" in listed
    assert {report["status"] for report in listed["orderReports"]} == {"CANCELED"}
    assert desk.do(spot_api.open_orders, symbol="BTCUSDT") == []
    assert desk.balance("USDT") == (D(100000), 0)
    error = desk.fails(spot_api.cancel_open_orders, symbol="BTCUSDT")
    assert (error.code, error.msg) == (-2011, "Unknown order sent.")
    desk.engine.check_invariants()


async def test_cancel_order_list_by_client_id() -> None:
    desk = Desk()
    body = _sell_oco(desk, listClientOrderId="pair-7")
    result = desk.do(spot_api.cancel_order_list, symbol="BTCUSDT", listClientOrderId="pair-7")
    assert (result["listStatusType"], result["listOrderStatus"]) == ("ALL_DONE", "ALL_DONE")
    assert all(r["status"] == "CANCELED" for r in result["orderReports"])
    assert desk.balance("BTC") == (D(10), 0)
    error = desk.fails(
        spot_api.cancel_order_list, symbol="BTCUSDT", orderListId=body["orderListId"]
    )
    assert error.code == -2011


# --- cancel restrictions, cancel-replace, amend ---------------------------------------------------


async def test_cancel_restrictions() -> None:
    desk = Desk()
    bid = desk.best(BookSide.BID)
    order = desk.limit("BUY", bid - 50)
    error = desk.fails(
        spot_api.cancel_order,
        symbol="BTCUSDT",
        orderId=order["orderId"],
        cancelRestrictions="ONLY_PARTIALLY_FILLED",
    )
    assert (error.code, error.msg) == (-2011, "Order was not canceled due to cancel restrictions.")
    error = desk.fails(
        spot_api.cancel_order,
        symbol="BTCUSDT",
        orderId=order["orderId"],
        cancelRestrictions="ALWAYS",
    )
    assert error.code == -1145
    desk.do(
        spot_api.cancel_order,
        symbol="BTCUSDT",
        orderId=order["orderId"],
        cancelRestrictions="ONLY_NEW",
    )


def _replace(desk: Desk, **params: str) -> dict:
    bid = desk.best(BookSide.BID)
    base = {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.02",
        "price": str(bid - 60),
        "cancelReplaceMode": "STOP_ON_FAILURE",
    }
    return {**base, **params}


async def test_cancel_replace_success() -> None:
    desk = Desk()
    bid = desk.best(BookSide.BID)
    old = desk.limit("BUY", bid - 50)
    body = desk.do(spot_api.cancel_replace, **_replace(desk, cancelOrderId=str(old["orderId"])))
    assert (body["cancelResult"], body["newOrderResult"]) == ("SUCCESS", "SUCCESS")
    assert body["cancelResponse"]["status"] == "CANCELED"
    assert body["newOrderResponse"]["status"] == "NEW"
    assert desk.balance("USDT")[1] == (bid - 60) * D("0.02")


async def test_cancel_replace_failures_carry_binances_data() -> None:
    desk = Desk()
    error = desk.fails(spot_api.cancel_replace, **_replace(desk, cancelOrderId="12345"))
    assert (error.code, error.msg, error.http_status) == (
        -2022,
        "Order cancel-replace failed.",
        400,
    )
    assert error.body()["data"] == {
        "cancelResult": "FAILURE",
        "newOrderResult": "NOT_ATTEMPTED",
        "cancelResponse": {"code": -2011, "msg": "Unknown order sent."},
        "newOrderResponse": None,
    }
    error = desk.fails(
        spot_api.cancel_replace,
        **_replace(desk, cancelOrderId="12345", cancelReplaceMode="ALLOW_FAILURE"),
    )
    assert (error.code, error.http_status) == (-2021, 409)
    data = error.body()["data"]
    assert (data["cancelResult"], data["newOrderResult"]) == ("FAILURE", "SUCCESS")
    assert data["newOrderResponse"]["status"] == "NEW"
    bid = desk.best(BookSide.BID)
    old = desk.limit("BUY", bid - 50)
    ask = desk.best(BookSide.ASK)
    error = desk.fails(
        spot_api.cancel_replace,
        **_replace(
            desk,
            cancelOrderId=str(old["orderId"]),
            type="LIMIT_MAKER",
            timeInForce=None,
            price=str(ask),
        ),
    )
    assert (error.code, error.http_status) == (-2021, 409)
    data = error.body()["data"]
    assert data["newOrderResponse"] == {
        "code": -2010,
        "msg": "Order would immediately match and take.",
    }
    assert data["cancelResponse"]["status"] == "CANCELED"
    rejected = desk.reports()[-1]
    assert (rejected["x"], rejected["X"], rejected["r"]) == (
        "REJECTED",
        "REJECTED",
        "WOULD_MATCH_IMMEDIATELY",
    )
    error = desk.fails(
        spot_api.cancel_replace,
        **_replace(
            desk,
            cancelOrderId=str(old["orderId"]),
            cancelReplaceMode="ALLOW_FAILURE",
            quantity="100",
        ),
    )
    assert (error.code, error.body()["data"]["newOrderResult"]) == (-2022, "FAILURE")
    desk.engine.check_invariants()


async def test_amend_keep_priority_lowers_quantity_in_place() -> None:
    desk = Desk()
    ask = desk.clear(BookSide.ASK, 3)
    first = desk.limit("SELL", ask - D("0.01"), quantity="0.05")
    second = desk.limit("SELL", ask - D("0.01"), account=KEYS[1])
    body = desk.do(
        spot_api.amend_keep_priority,
        symbol="BTCUSDT",
        orderId=first["orderId"],
        newQty="0.02",
        newClientOrderId="amended",
    )
    amended = body["amendedOrder"]
    assert (amended["qty"], amended["clientOrderId"], amended["origClientOrderId"]) == (
        "0.02000000",
        "amended",
        first["clientOrderId"],
    )
    assert desk.balance("BTC") == (D(10) - D("0.02"), D("0.02"))
    report = desk.reports(order_id=first["orderId"])[-1]
    assert (report["x"], report["q"], report["c"]) == ("REPLACED", "0.02000000", "amended")
    taker = desk.order(KEYS[2], side="BUY", type="MARKET", quantity="0.02")
    assert desk.engine.orders[first["orderId"]].status == "FILLED"  # still first in the queue
    assert desk.engine.orders[second["orderId"]].status == "NEW"
    assert taker["status"] == "FILLED"
    error = desk.fails(
        spot_api.amend_keep_priority, symbol="BTCUSDT", orderId=second["orderId"], newQty="0.02"
    )
    assert error.code == -2013  # another account's order
    error = desk.fails(
        spot_api.amend_keep_priority,
        KEYS[1],
        symbol="BTCUSDT",
        orderId=second["orderId"],
        newQty="0.02",
    )
    assert (error.code, error.msg) == (-2038, "Order amend (quantity increase) is not supported.")
    desk.engine.check_invariants()


async def test_amending_an_oco_leg_amends_both() -> None:
    desk = Desk()
    body = _sell_oco(desk)
    stop_id, limit_id = (report["orderId"] for report in body["orderReports"])
    result = desk.do(
        spot_api.amend_keep_priority, symbol="BTCUSDT", orderId=limit_id, newQty="0.004"
    )
    assert result["listStatus"]["orderListId"] == body["orderListId"]
    assert desk.engine.orders[stop_id].quantity == D("0.004")
    assert desk.balance("BTC") == (D(10) - D("0.004"), D("0.004"))
    assert desk.of_type("listStatus")[-1]["l"] == "UPDATED"
    desk.engine.check_invariants()


async def test_an_otoco_pair_is_placed_once_the_working_order_fills() -> None:
    desk = Desk()
    bid = desk.best(BookSide.BID)
    body = _buy_then_oco(desk, bid, bid + 300, bid - 200)
    working_id, stop_id, limit_id = (report["orderId"] for report in body["orderReports"])
    assert [r["type"] for r in body["orderReports"]] == ["LIMIT", "STOP_LOSS", "LIMIT_MAKER"]
    desk.take(Side.SELL, bid)
    stop, limit = desk.engine.orders[stop_id], desk.engine.orders[limit_id]
    assert desk.engine.orders[working_id].status == "FILLED"
    assert (stop.status, limit.status) == ("NEW", "NEW")
    assert desk.market().resting(limit) == D("0.01")
    bought = D("0.01") - D(desk.reports(order_id=working_id)[-1]["n"])
    assert desk.balance("BTC") == (D(10) + bought - D("0.01"), D("0.01"))  # one lock, two legs
    desk.engine.check_invariants()
    desk.move_to(bid - 250)
    assert stop.triggered
    assert (limit.status, limit.expiry_reason) == ("EXPIRED", "OCO_TRIGGER")
    assert desk.of_type("listStatus")[-1]["L"] == "ALL_DONE"
    desk.engine.check_invariants()


async def test_a_trailing_oco_leg_reports_its_trailing_time_when_new() -> None:
    desk = Desk()
    params = desk.sell_oco_params(belowStopPrice=None, belowTrailingDelta="100")
    body = desk.do(spot_api.place_oco, **params)
    stop_id = next(
        report["orderId"] for report in body["orderReports"] if report["type"] == "STOP_LOSS"
    )
    new = desk.reports(order_id=stop_id)[0]
    assert (new["x"], new["d"], new["D"]) == ("NEW", 100, new["T"])


class _NoScan(dict):
    """The engine's list of every order list, refusing to be scanned (lookups go by index)."""

    def values(self):  # type: ignore[override]
        raise AssertionError("scanned every order list")

    def items(self):  # type: ignore[override]
        raise AssertionError("scanned every order list")

    def __iter__(self):
        raise AssertionError("scanned every order list")


async def test_list_lookups_and_full_responses_use_indexes_not_history() -> None:
    desk = Desk()
    for number in range(3):  # history: finished lists and fills
        _sell_oco(desk, listClientOrderId=f"old-{number}")
        desk.do(spot_api.cancel_order_list, symbol="BTCUSDT", listClientOrderId=f"old-{number}")
        desk.order(side="BUY", type="MARKET", quantity="0.001")
    _sell_oco(desk, listClientOrderId="old-0")  # a listClientOrderId used again: latest wins
    engine = desk.engine
    engine.order_lists = _NoScan(engine.order_lists)

    def no_account_scan(api_key: str) -> list:
        raise AssertionError("scanned every fill of the account")

    engine.fills_of = no_account_scan  # type: ignore[method-assign]
    ask = desk.best(BookSide.ASK)
    body = _buy_then_sell(
        desk,
        ask,
        ask + 500,
        listClientOrderId="mine",
        workingQuantity="0.001",
        pendingQuantity="0.001",
        newOrderRespType="FULL",
    )
    working = body["orderReports"][0]
    assert working["status"] == "FILLED"
    trades = desk.do(spot_api.my_trades, symbol="BTCUSDT", orderId=working["orderId"])
    assert [fill["tradeId"] for fill in working["fills"]] == [row["id"] for row in trades]
    assert [fill["qty"] for fill in working["fills"]] == [row["qty"] for row in trades]
    assert body["orderReports"][1]["fills"] == []
    found = desk.do(spot_api.query_order_list, origClientOrderId="mine")
    assert found["orderListId"] == body["orderListId"]
    again = desk.do(spot_api.query_order_list, origClientOrderId="old-0")
    assert again["listOrderStatus"] == "EXECUTING"
    opened = desk.do(spot_api.open_order_lists)
    assert [row["listClientOrderId"] for row in opened] == ["old-0", "mine"]
    every = desk.do(spot_api.all_order_lists)
    assert [row["listClientOrderId"] for row in every] == [
        "old-0",
        "old-1",
        "old-2",
        "old-0",
        "mine",
    ]
    later = desk.do(spot_api.all_order_lists, fromId=every[3]["orderListId"], limit=1)
    assert [row["listClientOrderId"] for row in later] == ["old-0"]
    assert desk.do(spot_api.open_order_lists, KEYS[1]) == []
    error = desk.fails(spot_api.query_order_list, KEYS[1], origClientOrderId="mine")
    assert error.code == -2013
    desk.do(spot_api.cancel_order_list, symbol="BTCUSDT", listClientOrderId="mine")
    opened = desk.do(spot_api.open_order_lists)
    assert [row["listClientOrderId"] for row in opened] == ["old-0"]
    assert engine.count_open_lists(KEYS[0], "BTCUSDT") == 1
    assert engine.count_open_lists(KEYS[0], "ETHUSDT") == 0
