"""User-data delivery: futures listen keys and their streams, Spot WS-API subscriptions."""

from __future__ import annotations

import hashlib
import hmac
import urllib.parse

import httpx
import orjson
import pytest
import trio
from trio_websocket import ConnectionClosed, ConnectionRejected, open_websocket_url

from scenarios.venue.config import VenueConfig
from scenarios.venue.instruments import Product
from scenarios.venue.server import open_venue
from scenarios.venue.userdata import LISTEN_KEY_VALIDITY_MS, Subscriber

DEADLINE = 30


@pytest.fixture
async def venue():
    with trio.fail_after(DEADLINE):
        async with open_venue(VenueConfig(seed=5, tick_ms=20)) as running:
            yield running


@pytest.fixture
async def rest(venue):
    headers = {"X-MBX-APIKEY": venue.first_key.api_key}
    async with httpx.AsyncClient(base_url=venue.urls["rest"], headers=headers) as client:
        yield client


async def test_listen_key_lifecycle(venue, rest) -> None:
    created = await rest.post("/fapi/v1/listenKey")
    assert created.status_code == 200
    key = created.json()["listenKey"]
    assert len(key) == 64
    # While it lives, POST answers the same key and PUT extends it.
    assert (await rest.post("/fapi/v1/listenKey")).json() == {"listenKey": key}
    assert (await rest.put("/fapi/v1/listenKey")).json() == {"listenKey": key}
    coinm = (await rest.post("/dapi/v1/listenKey")).json()["listenKey"]
    assert coinm != key
    assert (await rest.delete("/fapi/v1/listenKey")).json() == {}
    gone = await rest.put("/fapi/v1/listenKey")
    assert gone.status_code == 400
    assert gone.json()["code"] == -1125
    # Spot's listenKey endpoints were discontinued: unknown path.
    assert (await rest.post("/api/v3/userDataStream")).status_code == 404
    # Without a key: Binance's -2014.
    async with httpx.AsyncClient(base_url=venue.urls["rest"]) as anonymous:
        assert (await anonymous.post("/fapi/v1/listenKey")).json()["code"] == -2014


async def test_listen_key_streams_deliver_filter_and_expire(venue, rest) -> None:
    key = (await rest.post("/fapi/v1/listenKey")).json()["listenKey"]
    account = venue.first_key.api_key
    base = venue.urls["ws"]["usdm"]
    async with (
        open_websocket_url(f"{base}/private/ws?listenKey={key}") as everything,
        open_websocket_url(
            f"{base}/private/stream?listenKey={key}&events=ACCOUNT_UPDATE"
        ) as filtered,
        open_websocket_url(f"{base}/ws/{key}") as legacy,
    ):
        venue.user_data.publish(Product.USDM, account, {"e": "ORDER_TRADE_UPDATE", "E": 1})
        venue.user_data.publish(Product.USDM, account, {"e": "ACCOUNT_UPDATE", "E": 2})
        venue.user_data.publish(Product.USDM, "someone-else", {"e": "ACCOUNT_UPDATE", "E": 3})
        assert orjson.loads(await everything.get_message())["e"] == "ORDER_TRADE_UPDATE"
        assert orjson.loads(await everything.get_message())["E"] == 2
        assert orjson.loads(await filtered.get_message()) == {
            "stream": key,
            "data": {"e": "ACCOUNT_UPDATE", "E": 2},
        }
        now = venue.clock.now_ms() + LISTEN_KEY_VALIDITY_MS
        venue.user_data.on_time(now)
        expired = orjson.loads(await everything.get_message())
        assert expired == {"e": "listenKeyExpired", "E": now, "listenKey": key}
        venue.user_data.publish(Product.USDM, account, {"e": "ACCOUNT_UPDATE", "E": 4})
        with trio.move_on_after(0.3) as quiet:
            await everything.get_message()
        assert quiet.cancelled_caught, "nothing arrives after listenKeyExpired"
        with trio.move_on_after(0.2) as silent:
            await legacy.get_message()
        assert silent.cancelled_caught, "the retired /ws/<listenKey> delivers nothing"
    with pytest.raises(ConnectionRejected) as rejected:
        async with open_websocket_url(f"{base}/private/ws?listenKey={key}"):
            pass
    assert rejected.value.status_code == 400


async def test_coinm_streams_and_control_expiry_and_terminate(venue, rest) -> None:
    key = (await rest.post("/dapi/v1/listenKey")).json()["listenKey"]
    account = venue.first_key.api_key
    async with open_websocket_url(f"{venue.urls['ws']['coinm']}/ws/{key}") as ws:
        venue.user_data.publish(Product.COINM, account, {"e": "ACCOUNT_UPDATE", "E": 9})
        assert orjson.loads(await ws.get_message())["E"] == 9
        listed = (await rest.get("/_venue/listen-keys")).json()["listenKeys"]
        assert [entry["listenKey"] for entry in listed] == [key]
        expired = await rest.post("/_venue/listen-key/expire", json={"listenKey": key})
        assert expired.json() == {"expired": key}
        assert orjson.loads(await ws.get_message())["e"] == "listenKeyExpired"
    key = (await rest.post("/dapi/v1/listenKey")).json()["listenKey"]
    async with open_websocket_url(f"{venue.urls['ws']['coinm']}/ws/{key}") as ws:
        ended = await rest.post(
            "/_venue/user-stream/terminate", json={"product": "coinm", "account": account}
        )
        assert ended.json() == {"terminated": 1}
        with trio.fail_after(5):
            with pytest.raises(ConnectionClosed):
                await ws.get_message()
    bad = await rest.post("/_venue/listen-key/expire", json={"listenKey": "nope"})
    assert bad.status_code == 400


def signed(params: dict, secret: str) -> dict:
    query = urllib.parse.urlencode(sorted(params.items()))
    signature = hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()
    return {**params, "signature": signature}


async def test_spot_ws_api_subscription_by_signature(venue) -> None:
    key = venue.first_key
    async with open_websocket_url(venue.urls["ws_api"]["spot"]) as ws:
        ids = iter(range(1, 100))

        async def call(method: str, params: dict | None = None) -> dict:
            body = {"id": next(ids), "method": method, "params": params or {}}
            await ws.send_message(orjson.dumps(body).decode())
            while True:
                message = orjson.loads(await ws.get_message())
                if "id" in message:
                    return message

        params = signed({"apiKey": key.api_key, "timestamp": venue.clock.now_ms()}, key.secret)
        subscribed = await call("userDataStream.subscribe.signature", params)
        assert subscribed["status"] == 200, subscribed
        assert subscribed["result"] == {"subscriptionId": 0}
        again = await call(
            "userDataStream.subscribe.signature",
            signed({"apiKey": key.api_key, "timestamp": venue.clock.now_ms()}, key.secret),
        )
        assert again["error"]["code"] == -2035
        assert (await call("session.status"))["result"]["userDataStream"] is True
        assert (await call("session.subscriptions"))["result"] == [{"subscriptionId": 0}]
        venue.user_data.publish(Product.SPOT, key.api_key, {"e": "balanceUpdate", "E": 5})
        assert orjson.loads(await ws.get_message()) == {
            "subscriptionId": 0,
            "event": {"e": "balanceUpdate", "E": 5},
        }
        # Logging in first is needed for the plain subscribe.
        plain = await call("userDataStream.subscribe")
        assert plain["error"]["code"] == -1002
        done = await call("userDataStream.unsubscribe", {"subscriptionId": 0})
        assert done["status"] == 200
        terminated = orjson.loads(await ws.get_message())
        assert terminated["subscriptionId"] == 0
        assert terminated["event"]["e"] == "eventStreamTerminated"
        assert (await call("userDataStream.unsubscribe"))["error"]["code"] == -2036
        forged = dict(params, signature="0" * 64)
        assert (await call("userDataStream.subscribe.signature", forged))["error"]["code"] == (
            -1022
        )
        futures_only = await call("userDataStream.start", {"apiKey": key.api_key})
        assert futures_only["status"] == 400


async def test_futures_ws_api_listen_key_methods(venue) -> None:
    key = venue.first_key
    async with open_websocket_url(venue.urls["ws_api"]["usdm"]) as ws:
        await ws.send_message(
            orjson.dumps(
                {"id": 1, "method": "userDataStream.start", "params": {"apiKey": key.api_key}}
            ).decode()
        )
        started = orjson.loads(await ws.get_message())
        assert started["status"] == 200, started
        listen_key = started["result"]["listenKey"]
        assert venue.user_data.valid_key(Product.USDM, listen_key) is not None
        await ws.send_message(
            orjson.dumps(
                {"id": 2, "method": "userDataStream.stop", "params": {"apiKey": key.api_key}}
            ).decode()
        )
        assert orjson.loads(await ws.get_message())["result"] == {}
        assert venue.user_data.valid_key(Product.USDM, listen_key) is None


async def test_an_executed_fault_does_the_work_then_fails(venue, rest) -> None:
    """The "unknown outcome" case: the request is carried out, the client sees an error."""
    await rest.post(
        "/_venue/faults/endpoint",
        json={
            "path": "/fapi/v1/listenKey",
            "http_status": 408,
            "code": -1007,
            "msg": "Timeout waiting for response from backend server.",
            "executed": True,
            "count": 1,
        },
    )
    timed_out = await rest.post("/fapi/v1/listenKey")
    assert timed_out.status_code == 408
    assert timed_out.json()["code"] == -1007
    assert len(venue.user_data.listen_keys) == 1, "the work was done"
    await rest.post(
        "/_venue/faults/endpoint",
        json={"path": "/dapi/v1/listenKey", "http_status": 503, "count": 1},
    )
    assert (await rest.post("/dapi/v1/listenKey")).status_code == 503
    assert len(venue.user_data.listen_keys) == 1, "a plain fault does no work"


async def test_listen_keys_follow_the_seed_and_a_bad_event_does_not_stop_delivery() -> None:
    keys = []
    received: list = []

    def collect(event: dict) -> bool:
        received.append(event)
        return True

    for _ in range(2):
        async with open_venue(VenueConfig(seed=21)) as venue:
            keys.append(venue.user_data.start(Product.USDM, "acct", venue.clock.now_ms()))
            received.clear()
            venue.user_data.add(Subscriber(Product.USDM, "acct", collect))
            venue.user_data.add(Subscriber(Product.USDM, "acct", lambda e: bool(orjson.dumps(e))))
            venue.user_data.publish(Product.USDM, "acct", {"e": "X", "n": 2**70})
            venue.user_data.publish(Product.USDM, "acct", {"e": "Y"})
            assert [event["e"] for event in received] == ["X", "Y"]
            assert len(venue.user_data.delivery_errors) == 1
            assert "X: TypeError" in venue.user_data.delivery_errors[0]
    assert keys[0] == keys[1]
    assert keys[0].isalnum()
    assert len(keys[0]) == 64
