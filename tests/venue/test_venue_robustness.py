"""The venue under its own bugs and under clients that misbehave: it answers, keeps serving
and keeps its streams right."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from scenarios.venue.instruments import Product
from scenarios.venue.market import BookSide
from scenarios.venue.trading import WsMethod
from tests.venue.test_server import eventually
from tests.venue.test_spot_e2e import _send, rest, venue  # noqa: F401  (fixtures)
from tests.venue.test_userdata import signed


async def read_forever(ws: Any) -> None:
    while True:
        await ws.get_message()


def limit_order(venue: Any) -> dict[str, str]:  # noqa: F811
    price = venue.markets[(Product.SPOT, "BTCUSDT")].best(BookSide.BID) - 100
    return {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.01",
        "price": str(price),
    }


async def test_successful_orders_cost_no_weight_failed_ones_do(venue, rest) -> None:  # noqa: F811
    def used(response) -> int:
        return int(response.headers["x-mbx-used-weight-1m"])

    first = await _send(rest, venue, "POST", "/api/v3/order", **limit_order(venue))
    second = await _send(rest, venue, "POST", "/api/v3/order", **limit_order(venue))
    assert first.status_code == second.status_code == 200
    assert used(second) == used(first)
    refused = await _send(
        rest, venue, "POST", "/api/v3/order", **{**limit_order(venue), "price": "1"}
    )
    assert refused.status_code == 400
    assert used(refused) == used(second) + 1


async def test_an_executed_fault_waits_for_a_request_that_does_its_work(venue, rest) -> None:  # noqa: F811
    await rest.post(
        "/_venue/faults/endpoint",
        json={"path": "/api/v3/order", "http_status": 503, "executed": True, "count": 1},
    )
    refused = await _send(
        rest, venue, "POST", "/api/v3/order", **{**limit_order(venue), "price": "1"}
    )
    assert refused.status_code == 400, "a refused order does not use the fault up"
    placed = await _send(
        rest, venue, "POST", "/api/v3/order", **limit_order(venue), newClientOrderId="kept"
    )
    assert placed.status_code == 503
    truth = (await rest.post("/_venue/spot/orders", json={})).json()
    assert [order["clientOrderId"] for order in truth] == ["kept"]
    bad = await rest.post(
        "/_venue/faults/endpoint?executed=maybe", json={"path": "/api/v3/order", "count": 1}
    )
    assert bad.status_code == 400


async def test_a_ws_api_handler_bug_is_a_500_that_names_the_request(venue) -> None:  # noqa: F811
    engine = venue.engines[Product.SPOT]
    methods = dict(engine.ws_api_methods())

    def broken(call: Any) -> Any:
        raise RuntimeError("boom")

    methods["order.status"] = WsMethod(broken, methods["order.status"].security, 1)
    engine.ws_api_methods = lambda: methods
    key = venue.first_key
    async with open_websocket_url(venue.urls["ws_api"]["spot"]) as ws:
        params = signed(
            {
                "apiKey": key.api_key,
                "symbol": "BTCUSDT",
                "orderId": 1,
                "timestamp": venue.clock.now_ms(),
            },
            key.secret,
        )
        await ws.send_message(
            orjson.dumps({"id": "q7", "method": "order.status", "params": params}).decode()
        )
        reply = orjson.loads(await ws.get_message())
        assert reply["id"] == "q7"
        assert reply["status"] == 500
        assert reply["error"]["code"] == -1000
        await ws.send_message(orjson.dumps({"id": 8, "method": "ping"}).decode())
        assert orjson.loads(await ws.get_message())["status"] == 200


async def test_order_replies_on_the_ws_api_report_the_accounts_order_counts(venue) -> None:  # noqa: F811
    key = venue.first_key
    async with open_websocket_url(venue.urls["ws_api"]["spot"]) as ws:
        params = signed(
            {"apiKey": key.api_key, **limit_order(venue), "timestamp": venue.clock.now_ms()},
            key.secret,
        )
        await ws.send_message(
            orjson.dumps({"id": 1, "method": "order.place", "params": params}).decode()
        )
        reply = orjson.loads(await ws.get_message())
        assert reply["status"] == 200, reply
        kinds = {(entry["rateLimitType"], entry["interval"]) for entry in reply["rateLimits"]}
        assert ("ORDERS", "SECOND") in kinds
        assert ("REQUEST_WEIGHT", "MINUTE") in kinds


async def test_a_ws_api_client_that_stops_reading_is_disconnected(venue) -> None:  # noqa: F811
    venue.send_buffer = 4
    venue.slow_client_s = 0.5
    key = venue.first_key
    async with open_websocket_url(
        venue.urls["ws_api"]["spot"], message_queue_size=1, max_message_size=2**20
    ) as ws:
        params = signed({"apiKey": key.api_key, "timestamp": venue.clock.now_ms()}, key.secret)
        await ws.send_message(
            orjson.dumps(
                {"id": 1, "method": "userDataStream.subscribe.signature", "params": params}
            ).decode()
        )
        assert orjson.loads(await ws.get_message())["status"] == 200
        assert venue.user_data.listening(Product.SPOT, key.api_key)
        big = {"e": "balanceUpdate", "pad": "x" * 200_000}
        with trio.fail_after(15):
            while venue.user_data.listening(Product.SPOT, key.api_key):
                venue.user_data.publish(Product.SPOT, key.api_key, big)
                await trio.sleep(0.01)
        with trio.fail_after(15), pytest.raises(ConnectionClosed):
            await read_forever(ws)


async def test_background_work_survives_an_engine_bug_and_feeds_still_get_the_book(
    venue,  # noqa: F811
    rest,  # noqa: F811
) -> None:
    venue.paused = False
    engine = venue.engines[Product.USDM]
    fed: list[int] = []
    feeds_on_market = venue.feeds.on_market

    def spy(product: Product, symbol: str, events: list) -> None:
        fed.append(len(events))
        feeds_on_market(product, symbol, events)

    def broken(*args: Any) -> None:
        raise RuntimeError("engine bug")

    venue.feeds.on_market = spy
    engine.on_time = broken
    engine.on_market = broken
    await eventually(lambda: any("usdm engine tick" in error for error in venue.errors))
    await eventually(lambda: any("BTCUSDT step" in error for error in venue.errors))
    assert fed, "the feeds got the market's events although the engine failed on them"
    assert (await rest.get("/api/v3/ping")).status_code == 200
    state = (await rest.get("/_venue/state")).json()
    assert any("engine bug" in error for error in state["errors"])


async def test_a_listen_key_named_twice_is_followed_once(venue, rest) -> None:  # noqa: F811
    headers = {"X-MBX-APIKEY": venue.first_key.api_key}
    key = (await rest.post("/fapi/v1/listenKey", headers=headers)).json()["listenKey"]
    url = f"{venue.urls['ws']['usdm']}/private/ws?listenKey={key}&listenKey={key}"
    async with open_websocket_url(url):
        assert len(venue.user_data.subscribers(Product.USDM, venue.first_key.api_key)) == 1
