"""Spot trading end to end on a real venue: signed REST, the WS-API and the control API."""

from __future__ import annotations

import hashlib
import hmac
import urllib.parse
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest
import trio
from trio_websocket import open_websocket_url

from scenarios.venue.config import VenueConfig
from scenarios.venue.instruments import Product
from scenarios.venue.market import BookSide
from scenarios.venue.server import open_venue
from tests.venue.test_spot_support import LIMIT_BUY

DEADLINE = 20


@pytest.fixture
async def venue():
    with trio.fail_after(DEADLINE):
        async with open_venue(VenueConfig(seed=5, tick_ms=50)) as running:
            running.paused = True  # a still market: prices in the tests stay where they are
            yield running


@pytest.fixture
async def rest(venue):
    async with httpx.AsyncClient(base_url=venue.urls["rest"], timeout=10) as client:
        yield client


def _signed_body(venue: Any, params: dict[str, Any]) -> bytes:
    key = venue.first_key
    query = urllib.parse.urlencode({**params, "timestamp": venue.clock.now_ms()})
    signature = hmac.new(key.secret.encode(), query.encode(), hashlib.sha256).hexdigest()
    return f"{query}&signature={signature}".encode()


async def _send(
    rest: httpx.AsyncClient, venue: Any, method: str, path: str, **params: Any
) -> httpx.Response:
    body = _signed_body(venue, params)
    headers = {"X-MBX-APIKEY": venue.first_key.api_key}
    if method == "GET":
        return await rest.get(f"{path}?{body.decode()}", headers=headers)
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    return await rest.request(method, path, content=body, headers=headers)


async def _place(rest: httpx.AsyncClient, venue: Any, **params: Any) -> httpx.Response:
    """``POST /api/v3/order``, signed."""
    return await _send(rest, venue, "POST", "/api/v3/order", **params)


def _refusal(response: httpx.Response) -> tuple[int, int, str]:
    """(HTTP status, code, msg) of an error response, which holds nothing else."""
    body = response.json()
    assert set(body) == {"code", "msg"}, body
    return response.status_code, body["code"], body["msg"]


def _best_bid(venue: Any) -> Decimal:
    return venue.markets[(Product.SPOT, "BTCUSDT")].best(BookSide.BID)


async def test_place_query_cancel_and_account_through_rest(venue, rest) -> None:
    price = _best_bid(venue) - 100
    placed = await _place(rest, venue, **LIMIT_BUY, price=str(price), newClientOrderId="e2e-1")
    assert placed.status_code == 200, placed.text
    body = placed.json()
    assert (body["status"], body["clientOrderId"], body["fills"]) == ("NEW", "e2e-1", [])
    assert "X-MBX-ORDER-COUNT-10S" in placed.headers
    query = (
        await _send(rest, venue, "GET", "/api/v3/order", symbol="BTCUSDT", orderId=body["orderId"])
    ).json()
    assert (query["status"], query["price"]) == ("NEW", f"{price:.8f}")
    opened = (await _send(rest, venue, "GET", "/api/v3/openOrders", symbol="BTCUSDT")).json()
    assert [row["orderId"] for row in opened] == [body["orderId"]]
    account = (await _send(rest, venue, "GET", "/api/v3/account", omitZeroBalances="true")).json()
    usdt = next(row for row in account["balances"] if row["asset"] == "USDT")
    assert Decimal(usdt["locked"]) == price * Decimal("0.01")
    cancelled = await _send(
        rest, venue, "DELETE", "/api/v3/order", symbol="BTCUSDT", origClientOrderId="e2e-1"
    )
    assert cancelled.status_code == 200
    assert (cancelled.json()["status"], cancelled.json()["origClientOrderId"]) == (
        "CANCELED",
        "e2e-1",
    )
    again = await _send(
        rest, venue, "DELETE", "/api/v3/order", symbol="BTCUSDT", orderId=body["orderId"]
    )
    assert _refusal(again) == (400, -2011, "Unknown order sent.")
    market_order = (
        await _place(rest, venue, symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.002")
    ).json()
    assert market_order["status"] == "FILLED"
    trades = (await _send(rest, venue, "GET", "/api/v3/myTrades", symbol="BTCUSDT")).json()
    assert [row["id"] for row in trades] == [fill["tradeId"] for fill in market_order["fills"]]
    every = (await _send(rest, venue, "GET", "/api/v3/allOrders", symbol="BTCUSDT")).json()
    assert [row["status"] for row in every] == ["CANCELED", "FILLED"]
    refused = await _place(rest, venue, **LIMIT_BUY, price=str(price + Decimal("0.001")))
    assert _refusal(refused) == (400, -1013, "Filter failure: PRICE_FILTER")
    refused = await _place(
        rest, venue, **{**LIMIT_BUY, "quantity": "0.010000001"}, price=str(price)
    )
    assert _refusal(refused) == (400, -1111, "Parameter 'quantity' has too much precision.")


async def test_an_out_of_range_strategy_id_is_refused_before_placing(venue, rest) -> None:
    order = {**LIMIT_BUY, "price": str(_best_bid(venue) - 100)}
    refused = await _place(rest, venue, **order, strategyId="99999999999999999999")
    assert _refusal(refused) == (400, -1130, "Data sent for parameter 'strategyId' is not valid.")
    opened = await _send(rest, venue, "GET", "/api/v3/openOrders", symbol="BTCUSDT")
    assert opened.json() == []
    placed = await _place(rest, venue, **order, strategyId=str(2**63 - 1))
    assert (placed.status_code, placed.json()["strategyId"]) == (200, 2**63 - 1)


async def test_cancel_replace_partial_failure_is_http_409_with_data(venue, rest) -> None:
    reply = await _send(
        rest,
        venue,
        "POST",
        "/api/v3/order/cancelReplace",
        **LIMIT_BUY,
        price=str(_best_bid(venue) - 50),
        cancelReplaceMode="ALLOW_FAILURE",
        cancelOrderId="424242",
    )
    assert reply.status_code == 409
    body = reply.json()
    assert (body["code"], body["msg"]) == (-2021, "Order cancel-replace partially failed.")
    assert body["data"]["cancelResponse"] == {"code": -2011, "msg": "Unknown order sent."}
    assert body["data"]["newOrderResponse"]["status"] == "NEW"


async def test_ws_api_orders_and_the_user_data_stream(venue) -> None:
    key = venue.first_key

    def signed(params: dict[str, Any]) -> dict[str, Any]:
        params = {**params, "apiKey": key.api_key, "timestamp": venue.clock.now_ms()}
        payload = "&".join(f"{name}={params[name]}" for name in sorted(params))
        params["signature"] = hmac.new(
            key.secret.encode(), payload.encode(), hashlib.sha256
        ).hexdigest()
        return params

    async with open_websocket_url(venue.urls["ws_api"]["spot"]) as ws:

        async def ask(request_id: int, method: str, params: dict[str, Any]) -> dict[str, Any]:
            await ws.send_message(
                orjson.dumps({"id": request_id, "method": method, "params": params}).decode()
            )
            while True:
                message = orjson.loads(await ws.get_message())
                if message.get("id") == request_id:
                    return message
                events.append(message)

        events: list[dict[str, Any]] = []
        subscribed = await ask(1, "userDataStream.subscribe.signature", signed({}))
        assert subscribed["status"] == 200, subscribed
        price = _best_bid(venue) - 20
        placed = await ask(2, "order.place", signed({**LIMIT_BUY, "price": str(price)}))
        assert placed["status"] == 200, placed
        order_id = placed["result"]["orderId"]
        assert placed["result"]["fills"] == []
        status = await ask(3, "order.status", signed({"symbol": "BTCUSDT", "orderId": order_id}))
        assert status["result"]["status"] == "NEW"
        cancelled = await ask(4, "order.cancel", signed({"symbol": "BTCUSDT", "orderId": order_id}))
        assert cancelled["result"]["status"] == "CANCELED"
        refused = await ask(
            5, "order.place", signed({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET"})
        )
        assert refused["status"] == 400
        assert refused["error"]["code"] == -1102
        with trio.fail_after(5):
            while sum(1 for m in events if m.get("event", {}).get("e") == "executionReport") < 2:
                events.append(orjson.loads(await ws.get_message()))
    reports = [m["event"] for m in events if m.get("event", {}).get("e") == "executionReport"]
    assert [(r["i"], r["x"]) for r in reports] == [(order_id, "NEW"), (order_id, "CANCELED")]
    assert all("subscriptionId" in m for m in events)


async def test_control_actions_over_http(venue, rest) -> None:
    funded = await rest.post("/_venue/spot/fund", json={"asset": "ETH", "delta": "3"})
    assert funded.status_code == 200, funded.text
    assert funded.json()["free"] == "3.00000000"
    balances = (await rest.post("/_venue/spot/balances", json={})).json()
    assert balances["ETH"] == {"free": "3.00000000", "locked": "0.00000000"}
    bad = await rest.post("/_venue/spot/fund", json={"asset": "ETH", "delta": "-10"})
    assert bad.status_code == 400


async def test_the_ws_api_methods_and_their_weights(venue) -> None:
    methods = venue.engines[Product.SPOT].ws_api_methods()
    expected = {
        "order.place": (1, 1),
        "order.test": (1, 0),
        "order.cancel": (1, 0),
        "order.status": (4, 0),
        "order.cancelReplace": (1, 1),
        "order.amend.keepPriority": (4, 0),
        "openOrders.status": (6, 0),
        "openOrders.cancelAll": (1, 0),
        "orderList.place.oco": (1, 2),
        "orderList.place.oto": (1, 2),
        "orderList.place.otoco": (1, 3),
        "orderList.cancel": (1, 0),
        "orderList.status": (4, 0),
        "allOrders": (20, 0),
        "myTrades": (20, 0),
        "account.status": (20, 0),
        "account.commission": (20, 0),
        "account.rateLimits.orders": (40, 0),
    }
    for name, (weight, orders) in expected.items():
        assert (methods[name].weight, methods[name].orders) == (weight, orders), name
