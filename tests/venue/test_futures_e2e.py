"""The futures engines end to end on a real venue: signed REST, the user-data stream, the
WS-API and the control actions, over loopback sockets."""

from __future__ import annotations

import hashlib
import hmac
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest
import trio
from trio_websocket import open_websocket_url

from scenarios.venue.config import VenueConfig
from scenarios.venue.server import open_venue
from tests.venue.test_futures_helpers import Signed

DEADLINE = 30


@pytest.fixture
async def venue():
    with trio.fail_after(DEADLINE):
        async with open_venue(VenueConfig(seed=13, tick_ms=20)) as running:
            yield running


def ws_params(venue: Any, **params: Any) -> dict[str, Any]:
    """WS-API parameters signed as a Binance client signs them: ``apiKey`` and
    ``timestamp`` added, then the HMAC of them all, sorted by name, as ``signature``."""
    key = venue.first_key
    signed = {"apiKey": key.api_key, **params, "timestamp": venue.clock.now_ms()}
    payload = "&".join(f"{name}={signed[name]}" for name in sorted(signed)).encode()
    signed["signature"] = hmac.new(key.secret.encode(), payload, hashlib.sha256).hexdigest()
    return signed


async def ws_request(ws: Any, request_id: Any, method: str, params: dict[str, Any]) -> Any:
    """Send one WS-API request and return the reply."""
    await ws.send_message(
        orjson.dumps({"id": request_id, "method": method, "params": params}).decode()
    )
    return orjson.loads(await ws.get_message())


async def next_event(ws: Any, kind: str, execution: str | None = None) -> dict[str, Any]:
    while True:
        event = orjson.loads(await ws.get_message())
        if event.get("e") == kind and (execution is None or event["o"]["x"] == execution):
            return event


async def test_usdm_order_account_and_user_stream(venue):
    async with httpx.AsyncClient(base_url=venue.urls["rest"], timeout=10) as client:
        signed = Signed(venue, client)
        listen = await client.post(
            "/fapi/v1/listenKey", headers={"X-MBX-APIKEY": signed.key.api_key}
        )
        listen_key = listen.json()["listenKey"]
        url = f"{venue.urls['ws']['usdm']}/private/ws?listenKey={listen_key}"
        async with open_websocket_url(url) as ws:
            placed = await signed(
                "POST",
                "/fapi/v1/order",
                symbol="BTCUSDT",
                side="BUY",
                type="MARKET",
                quantity="0.003",
                newClientOrderId="e2e-1",
            )
            assert placed.status_code == 200, placed.text
            body = placed.json()
            assert (body["clientOrderId"], body["status"]) == ("e2e-1", "NEW")
            assert "X-MBX-ORDER-COUNT-1M" in placed.headers
            new = await next_event(ws, "ORDER_TRADE_UPDATE", "NEW")
            assert new["o"]["c"] == "e2e-1"
            lite = await next_event(ws, "TRADE_LITE")
            assert lite["i"] == body["orderId"]
            update = await next_event(ws, "ACCOUNT_UPDATE")
            assert update["a"]["m"] == "ORDER"
            assert update["a"]["P"][0]["pa"] == "0.003"

        risk = (await signed("GET", "/fapi/v2/positionRisk", symbol="BTCUSDT")).json()
        assert risk[0]["positionAmt"] == "0.003"
        account = (await signed("GET", "/fapi/v3/account")).json()
        assert account["positions"][0]["symbol"] == "BTCUSDT"
        balance = (await signed("GET", "/fapi/v2/balance")).json()
        trades = (await signed("GET", "/fapi/v1/userTrades", symbol="BTCUSDT")).json()
        commission = sum(Decimal(row["commission"]) for row in trades)
        assert Decimal(balance[0]["balance"]) == Decimal(100000) - commission

        refused = await signed(
            "POST",
            "/fapi/v1/order",
            symbol="BTCUSDT",
            side="BUY",
            type="STOP",
            quantity="1",
        )
        assert refused.status_code == 400
        assert refused.json()["code"] == -4120
        far = await signed(
            "POST",
            "/fapi/v1/order",
            symbol="BTCUSDT",
            side="BUY",
            type="LIMIT",
            timeInForce="GTC",
            quantity="0.01",
            price="50000",
        )
        order_id = far.json()["orderId"]
        canceled = await signed("DELETE", "/fapi/v1/order", symbol="BTCUSDT", orderId=order_id)
        assert canceled.json()["status"] == "CANCELED"
        missing = await signed("GET", "/fapi/v1/order", symbol="BTCUSDT", orderId=1)
        assert missing.json() == {"code": -2013, "msg": "Order does not exist."}

        funded = await client.post(
            "/_venue/usdm/fund", content=orjson.dumps({"asset": "USDT", "delta": "5"})
        )
        assert funded.status_code == 200, funded.text
        bad = await client.post("/_venue/usdm/fee_tier", content=orjson.dumps({"tier": 99}))
        assert bad.status_code == 400


async def test_coinm_rest(venue):
    async with httpx.AsyncClient(base_url=venue.urls["rest"], timeout=10) as client:
        signed = Signed(venue, client)
        placed = await signed(
            "POST",
            "/dapi/v1/order",
            symbol="BTCUSD_PERP",
            side="SELL",
            type="MARKET",
            quantity="5",
            newOrderRespType="RESULT",
        )
        assert placed.json()["status"] == "FILLED", placed.text
        account = (await signed("GET", "/dapi/v1/account")).json()
        position = next(row for row in account["positions"] if row["symbol"] == "BTCUSD_PERP")
        assert position["positionAmt"] == "-5"
        assert account["assets"][0]["asset"] == "BTC"
        dual = await signed("POST", "/dapi/v1/positionSide/dual", dualSidePosition="true")
        assert dual.json() == {
            "code": -4068,
            "msg": "Position side cannot be changed if there exists position.",
        }


async def test_ws_api_order_place(venue):
    params = ws_params(
        venue,
        symbol="BTCUSDT",
        side="BUY",
        type="MARKET",
        quantity="0.002",
        newOrderRespType="RESULT",
    )
    async with open_websocket_url(venue.urls["ws_api"]["usdm"]) as ws:
        reply = await ws_request(ws, "p1", "order.place", params)
        assert reply["status"] == 200, reply
        assert reply["result"]["status"] == "FILLED"
        reply = await ws_request(ws, 2, "v2/account.position", ws_params(venue))
        rows = [row for row in reply["result"] if row["symbol"] == "BTCUSDT"]
        assert rows[0]["positionAmt"] == "0.002"


async def test_huge_integers_are_a_400_not_a_500(venue):
    async with httpx.AsyncClient(base_url=venue.urls["rest"], timeout=10) as client:
        signed = Signed(venue, client)
        for path in ("/fapi/v1/order", "/dapi/v1/order"):
            symbol = "BTCUSDT" if path.startswith("/fapi") else "BTCUSD_PERP"
            reply = await signed("GET", path, symbol=symbol, orderId="99999999999999999999")
            assert reply.status_code == 400, reply.text
            assert reply.json() == {
                "code": -1130,
                "msg": "Data sent for parameter 'orderId' is not valid.",
            }


async def test_coinm_legacy_stop_over_rest_and_ws_dapi(venue):
    async with httpx.AsyncClient(base_url=venue.urls["rest"], timeout=10) as client:
        signed = Signed(venue, client)
        ticker = (
            await client.get("/dapi/v1/ticker/price", params={"symbol": "BTCUSD_PERP"})
        ).json()
        last = Decimal(ticker[0]["price"] if isinstance(ticker, list) else ticker["price"])
        stop = str((last * Decimal("0.8")).quantize(Decimal("0.1")))
        placed = await signed(
            "POST",
            "/dapi/v1/order",
            symbol="BTCUSD_PERP",
            side="SELL",
            type="STOP_MARKET",
            quantity="1",
            stopPrice=stop,
        )
        assert placed.status_code == 200, placed.text
        body = placed.json()
        assert (body["type"], body["status"], body["stopPrice"]) == ("STOP_MARKET", "NEW", stop)
        opened = (await signed("GET", "/dapi/v1/openOrders", symbol="BTCUSD_PERP")).json()
        assert [row["orderId"] for row in opened] == [body["orderId"]]
        canceled = await signed(
            "DELETE", "/dapi/v1/order", symbol="BTCUSD_PERP", orderId=body["orderId"]
        )
        assert canceled.json()["status"] == "CANCELED"
    params = ws_params(
        venue, symbol="BTCUSD_PERP", side="SELL", type="STOP_MARKET", quantity="1", stopPrice=stop
    )
    async with open_websocket_url(venue.urls["ws_api"]["coinm"]) as ws:
        reply = await ws_request(ws, "s1", "order.place", params)
        assert reply["status"] == 200, reply
        assert (reply["result"]["type"], reply["result"]["status"]) == ("STOP_MARKET", "NEW")
