"""Spot trading payloads against Binance's recorded ones: the same keys, the same JSON types.

Each test builds the situation a fixture shows (a filled market order, a resting limit order,
an OCO with iceberg legs cancelled together...) and compares the venue's body with the
fixture key for key, recursing into objects and list elements. Where the fixture is an older
or partial payload (``http_spot_wallet_account``, the python ``executionReport`` captures that
predate ``W``/``V``), the fixture's keys must all be there and anything extra must be one of
the fields Binance documents as conditional.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from scenarios.venue import spot_api
from scenarios.venue.market import BookSide, Side
from tests.venue.test_spot_support import KEYS, D, Desk

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "binance"
HTTP = FIXTURES / "rust_test_data/spot/http_json"
USER = FIXTURES / "rust_test_data/spot/user_data_json"
WS = FIXTURES / "python_tests/ws_messages"
#: executionReport fields Binance sends only in some situations (binance-protocol.md 9.1).
REPORT_CONDITIONAL = {
    "W",
    "V",
    "eR",
    "v",
    "A",
    "B",
    "U",
    "u",
    "Cs",
    "pl",
    "pL",
    "pY",
    "d",
    "D",
    "j",
    "J",
    "I",
    "F",
    "g",
    "M",
    "Y",
    "Q",
}


def load(path: Path) -> Any:
    data = json.loads(path.read_text())
    if isinstance(data, dict) and "subscriptionId" in data:
        return data["event"]
    if isinstance(data, dict) and "stream" in data and "data" in data:
        return data["data"]
    return data


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "bool",
        int: "number",
        float: "number",
        str: "string",
        list: "array",
        dict: "object",
    }[type(value)]


def same_shape(ours: Any, theirs: Any, where: str = "$", *, exact: bool = True) -> None:
    """Assert ``ours`` has ``theirs``'s keys (exactly, unless ``exact`` is False) and types."""
    assert json_type(ours) == json_type(theirs), (
        f"{where}: {json_type(ours)} != {json_type(theirs)}"
    )
    if isinstance(theirs, dict):
        missing = set(theirs) - set(ours)
        assert not missing, f"{where}: missing {sorted(missing)}"
        if exact:
            extra = set(ours) - set(theirs)
            assert not extra, f"{where}: unexpected {sorted(extra)}"
        for key, value in theirs.items():
            if value is not None and ours[key] is not None:
                same_shape(ours[key], value, f"{where}.{key}", exact=exact)
    elif isinstance(theirs, list) and theirs and ours:
        for index, item in enumerate(ours):
            same_shape(item, theirs[min(index, len(theirs) - 1)], f"{where}[{index}]", exact=exact)


async def test_a_full_market_order_response() -> None:
    desk = Desk()
    body = desk.order(side="SELL", type="MARKET", quantity="0.05", selfTradePreventionMode="NONE")
    assert len(body["fills"]) > 1
    same_shape(body, load(HTTP / "new_order_full_response.json"))


async def test_query_open_all_orders_and_cancel_responses() -> None:
    desk = Desk()
    bid = desk.best(BookSide.BID)
    placed = desk.limit(
        "BUY", bid - 10, newClientOrderId="myOrder1", selfTradePreventionMode="NONE"
    )
    query = desk.do(spot_api.query_order, symbol="BTCUSDT", origClientOrderId="myOrder1")
    same_shape(query, load(HTTP / "order_response.json"))
    same_shape(
        desk.do(spot_api.open_orders, symbol="BTCUSDT"), load(HTTP / "open_orders_response.json")
    )
    same_shape(
        desk.do(spot_api.all_orders, symbol="BTCUSDT"), load(HTTP / "all_orders_response.json")
    )
    cancelled = desk.do(
        spot_api.cancel_order,
        symbol="BTCUSDT",
        orderId=placed["orderId"],
        newClientOrderId="cancelMyOrder1",
    )
    same_shape(cancelled, load(HTTP / "cancel_order_response.json"))


async def test_cancel_open_orders_with_an_oco_of_iceberg_legs() -> None:
    desk = Desk()
    bid = desk.best(BookSide.BID)
    last = desk.market().last_price
    for offset in (100, 110):
        desk.limit("BUY", bid - offset, selfTradePreventionMode="NONE")
    desk.do(
        spot_api.place_oco,
        symbol="BTCUSDT",
        side="BUY",
        quantity="0.05",
        aboveType="STOP_LOSS_LIMIT",
        aboveStopPrice=str(last + 100),
        abovePrice=str(last + 120),
        aboveTimeInForce="GTC",
        aboveIcebergQty="0.01",
        belowType="LIMIT_MAKER",
        belowPrice=str(last - 100),
        belowIcebergQty="0.01",
        selfTradePreventionMode="NONE",
    )
    cancelled = desk.do(spot_api.cancel_open_orders, symbol="BTCUSDT")
    same_shape(cancelled, load(HTTP / "cancel_open_orders_response.json"))


async def test_account_and_trades() -> None:
    desk = Desk()
    desk.order(side="BUY", type="MARKET", quantity="0.001")
    account = desk.do(spot_api.account_info, omitZeroBalances="true")
    same_shape(account, load(HTTP / "account_response.json"))
    same_shape(
        account,
        load(FIXTURES / "python_tests/http_responses/http_spot_wallet_account.json"),
        exact=False,
    )
    same_shape(
        desk.do(spot_api.my_trades, symbol="BTCUSDT"), load(HTTP / "account_trades_response.json")
    )


def _report_like(ours: dict, fixture: Path) -> None:
    theirs = load(fixture)
    same_shape(ours, theirs, exact=False)
    extra = set(ours) - set(theirs)
    assert extra <= REPORT_CONDITIONAL, (
        f"{fixture.name}: unexpected {sorted(extra - REPORT_CONDITIONAL)}"
    )


async def test_execution_reports_of_an_order_life() -> None:
    desk = Desk()
    ask = desk.clear(BookSide.ASK, 3)
    price = ask - D("0.01")
    placed = desk.limit("SELL", price, quantity="0.02")
    desk.take(Side.BUY, price, D("0.01"))
    desk.do(spot_api.cancel_order, symbol="BTCUSDT", orderId=placed["orderId"])
    new, trade, cancelled = desk.reports(order_id=placed["orderId"])
    assert [new["x"], trade["x"], trade["X"], cancelled["x"]] == [
        "NEW",
        "TRADE",
        "PARTIALLY_FILLED",
        "CANCELED",
    ]
    _report_like(new, WS / "ws_spot_execution_report_new.json")
    _report_like(new, USER / "execution_report_new.json")
    _report_like(new, USER / "execution_report_wrapped.json")
    _report_like(trade, WS / "ws_spot_execution_report_trade.json")
    _report_like(trade, USER / "execution_report_trade.json")
    _report_like(cancelled, WS / "ws_spot_execution_report_canceled.json")
    _report_like(cancelled, USER / "execution_report_canceled.json")
    expired = desk.limit("BUY", desk.best(BookSide.BID) - 5, timeInForce="IOC")
    _report_like(
        desk.reports(order_id=expired["orderId"])[-1], USER / "execution_report_expired.json"
    )
    last = desk.market().last_price
    stop = desk.stop_limit("SELL", stop=last - 50, price=last - 60)
    _report_like(
        desk.reports(order_id=stop["orderId"])[0], USER / "execution_report_stop_loss.json"
    )
    positions = desk.of_type("outboundAccountPosition")
    same_shape(positions[-1], load(USER / "account_position.json"))
    same_shape(positions[-1], load(USER / "account_position_wrapped.json"))


async def test_trade_prevention_list_status_and_balance_update_events() -> None:
    desk = Desk()
    ask = desk.clear(BookSide.ASK, 3)
    price = ask - D("0.01")
    maker = desk.limit("SELL", price)
    taker = desk.limit("BUY", price, timeInForce="IOC")
    prevention = desk.reports(order_id=maker["orderId"])[-1]
    assert prevention["x"] == "TRADE_PREVENTION"
    _report_like(prevention, WS / "ws_spot_execution_report_trade_prevention.json")
    # Not a trade (Binance, 2023-12): l, L, Y stay zero; the prevented execution is in
    # pl/pL/pY, the expired quantity in B (this prevention) and A (the order's total). The
    # account is in no trade group, so there is no u.
    zero = "0.00000000"
    assert (prevention["l"], prevention["L"], prevention["Y"], prevention["t"]) == (
        zero,
        zero,
        zero,
        -1,
    )
    assert {key: prevention[key] for key in ("B", "A", "U", "Cs", "pl", "pL", "pY")} == {
        "B": "0.01000000",
        "A": "0.01000000",
        "U": taker["orderId"],
        "Cs": "BTCUSDT",
        "pl": "0.01000000",
        "pL": f"{price:.8f}",
        "pY": f"{price * D('0.01'):.8f}",
    }
    assert "u" not in prevention
    desk.do(spot_api.place_oco, **desk.sell_oco_params())
    same_shape(desk.of_type("listStatus")[-1], load(USER / "list_status_wrapped.json"))
    desk.engine.control_actions()["fund"]({"account": KEYS[0], "asset": "BTC", "delta": "0.001"})
    update = desk.of_type("balanceUpdate")[-1]
    same_shape(update, load(USER / "balance_update.json"))
    same_shape(update, load(USER / "balance_update_wrapped.json"))
