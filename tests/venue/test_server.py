"""The venue end to end on a loopback port: REST, streams, WS-API, control and faults.

These tests use real sockets, so they run on trio's real clock with a deadline each.
"""

from __future__ import annotations

import base64
import time
from decimal import Decimal

import httpx
import orjson
import pytest
import trio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from trio_websocket import ConnectionClosed, open_websocket_url

from scenarios.venue.config import KeySpec, VenueConfig
from scenarios.venue.server import open_venue

DEADLINE = 30


@pytest.fixture
async def venue():
    with trio.fail_after(DEADLINE):
        async with open_venue(VenueConfig(seed=11, tick_ms=20)) as running:
            yield running


@pytest.fixture
async def rest(venue):
    async with httpx.AsyncClient(base_url=venue.urls["rest"], timeout=10) as client:
        yield client


MARKET_PATHS = {
    "spot": (
        "/api/v3",
        "BTCUSDT",
        [
            "ping",
            "time",
            "exchangeInfo",
            "depth",
            "trades",
            "historicalTrades",
            "aggTrades",
            "klines",
            "uiKlines",
            "avgPrice",
            "ticker/24hr",
            "ticker/price",
            "ticker/bookTicker",
        ],
    ),
    "usdm": (
        "/fapi/v1",
        "BTCUSDT",
        [
            "ping",
            "time",
            "exchangeInfo",
            "depth",
            "trades",
            "historicalTrades",
            "aggTrades",
            "klines",
            "ticker/24hr",
            "ticker/price",
            "ticker/bookTicker",
            "premiumIndex",
            "fundingRate",
            "fundingInfo",
            "openInterest",
        ],
    ),
    "coinm": (
        "/dapi/v1",
        "BTCUSD_PERP",
        [
            "ping",
            "time",
            "exchangeInfo",
            "depth",
            "trades",
            "historicalTrades",
            "aggTrades",
            "klines",
            "ticker/24hr",
            "ticker/price",
            "ticker/bookTicker",
            "premiumIndex",
            "fundingRate",
            "openInterest",
        ],
    ),
}


@pytest.mark.parametrize("product", sorted(MARKET_PATHS))
async def test_every_market_endpoint_answers(venue, rest, product) -> None:
    prefix, symbol, names = MARKET_PATHS[product]
    for name in names:
        params = (
            {"symbol": symbol}
            if name not in ("ping", "time", "exchangeInfo", "fundingInfo")
            else {}
        )
        if name == "klines" or name == "uiKlines":
            params["interval"] = "1m"
        headers = {}
        if name == "historicalTrades" and product != "spot":
            # MARKET_DATA on futures: the key, no signature.
            anonymous = await rest.get(f"{prefix}/{name}", params=params)
            assert anonymous.json()["code"] == -2014
            headers["X-MBX-APIKEY"] = venue.first_key.api_key
        response = await rest.get(f"{prefix}/{name}", params=params, headers=headers)
        assert response.status_code == 200, (name, response.text)
        assert response.headers["content-type"].startswith("application/json")
        assert int(response.headers["x-mbx-used-weight-1m"]) > 0
        orjson.loads(response.content)


async def test_binance_errors(rest) -> None:
    response = await rest.get("/api/v3/depth", params={"symbol": "NOPE"})
    assert (response.status_code, response.json()) == (
        400,
        {"code": -1121, "msg": "Invalid symbol."},
    )
    response = await rest.get("/api/v3/depth")
    assert response.json()["code"] == -1102
    assert "'symbol'" in response.json()["msg"]
    response = await rest.get("/api/v3/klines", params={"symbol": "BTCUSDT", "interval": "7m"})
    assert response.json() == {"code": -1120, "msg": "Invalid interval."}
    response = await rest.get("/api/v3/depth", params={"symbol": "BTCUSDT", "limit": "ten"})
    assert response.json()["code"] == -1100
    response = await rest.get("/api/v3/nothing")
    assert response.status_code == 404
    huge = "99999999999999999999"
    for path, params in (
        ("/api/v3/historicalTrades", {"symbol": "BTCUSDT", "fromId": huge}),
        ("/api/v3/aggTrades", {"symbol": "BTCUSDT", "fromId": huge}),
        ("/api/v3/klines", {"symbol": "BTCUSDT", "interval": "1M", "startTime": huge}),
        ("/api/v3/klines", {"symbol": "BTCUSDT", "interval": "1M", "endTime": huge}),
    ):
        response = await rest.get(path, params=params)
        assert response.status_code == 400, (path, response.text)
        assert response.json()["code"] == -1130
    mini = (
        await rest.get("/api/v3/ticker/24hr", params={"symbol": "BTCUSDT", "type": "MINI"})
    ).json()
    assert "bidPrice" not in mini
    assert mini["symbol"] == "BTCUSDT"
    assert set(mini) >= {"openPrice", "lastPrice", "volume", "count"}
    wrong = await rest.get("/api/v3/ticker/24hr", params={"symbol": "BTCUSDT", "type": "TINY"})
    assert wrong.json() == {"code": -1139, "msg": "Invalid ticker type."}
    response = await rest.get("/api/v3/depth?symbol=BTCUSDT&symbol=ETHUSDT")
    assert response.json() == {"code": -1101, "msg": "Duplicate values for a parameter detected."}
    # Unknown harmless parameters are tolerated; parameter order does not matter.
    response = await rest.get("/api/v3/depth?limit=5&whatever=1&symbol=BTCUSDT")
    assert response.status_code == 200
    assert len(response.json()["bids"]) == 5


async def test_weights_and_rate_limit_faults(rest) -> None:
    first = await rest.get("/api/v3/depth", params={"symbol": "BTCUSDT", "limit": 5000})
    second = await rest.get("/api/v3/ping")
    assert (
        int(second.headers["x-mbx-used-weight-1m"]) - int(first.headers["x-mbx-used-weight-1m"])
        == 1
    )
    await rest.post("/_venue/faults/rate-limit", json={"product": "spot", "count": 2})
    limited = await rest.get("/api/v3/ping")
    assert limited.status_code == 429
    assert limited.json()["code"] == -1003
    assert int(limited.headers["retry-after"]) >= 0
    await rest.get("/api/v3/ping")
    assert (await rest.get("/api/v3/ping")).status_code == 200
    # Futures pools are separate from Spot.
    await rest.post("/_venue/faults/ban", json={"seconds": 60})
    banned = await rest.get("/fapi/v1/ping")
    assert banned.status_code == 418
    assert "IP banned until" in banned.json()["msg"]


async def test_endpoint_faults(rest) -> None:
    await rest.post(
        "/_venue/faults/endpoint",
        json={
            "path": "/api/v3/time",
            "http_status": 503,
            "code": -1001,
            "msg": "Internal error; unable to process your request. Please try again.",
            "count": 1,
        },
    )
    failed = await rest.get("/api/v3/time")
    assert failed.status_code == 503
    assert failed.json()["code"] == -1001
    assert (await rest.get("/api/v3/time")).status_code == 200, "the fault was for one request"
    await rest.post(
        "/_venue/faults/endpoint", json={"path": "/api/v3/ping", "delay_s": 0.3, "count": 1}
    )
    started = time.monotonic()
    assert (await rest.get("/api/v3/ping")).status_code == 200
    assert time.monotonic() - started >= 0.3
    skewed = await rest.post("/_venue/faults/clock", json={"skew_ms": -60_000})
    assert skewed.json()["skew_ms"] == -60_000
    server_time = (await rest.get("/api/v3/time")).json()["serverTime"]
    assert server_time < time.time() * 1000 - 50_000
    await rest.delete("/_venue/faults")
    assert (await rest.get("/_venue/state")).json()["skew_ms"] == 0


def apply(book: dict[str, dict[Decimal, Decimal]], event: dict) -> None:
    for side, key in (("bids", "b"), ("asks", "a")):
        for price, quantity in event[key]:
            if Decimal(quantity) == 0:
                book[side].pop(Decimal(price), None)
            else:
                book[side][Decimal(price)] = Decimal(quantity)


async def follow_book(venue, rest, product: str, stream_url: str, depth_path: str, symbol: str):
    """Keep a local book the way Binance's documentation says; return it with its id once
    the venue is paused and quiet, plus how many events were applied."""
    async with open_websocket_url(stream_url) as ws:
        buffered = [orjson.loads(await ws.get_message())]
        snapshot = (await rest.get(depth_path, params={"symbol": symbol, "limit": 1000})).json()
        last_id = snapshot["lastUpdateId"]
        book = {
            "bids": {Decimal(p): Decimal(q) for p, q in snapshot["bids"]},
            "asks": {Decimal(p): Decimal(q) for p, q in snapshot["asks"]},
        }
        applied = 0
        previous_u = None
        with trio.move_on_after(1.0):
            while True:
                buffered.append(orjson.loads(await ws.get_message()))
        await rest.post("/_venue/activity", json={"paused": True})
        with trio.move_on_after(1.5):
            while True:
                buffered.append(orjson.loads(await ws.get_message()))
        for event in buffered:
            if previous_u is None:
                if event["u"] < last_id or (product == "spot" and event["u"] <= last_id):
                    continue
                if product == "spot":
                    assert event["U"] <= last_id + 1 <= event["u"]
                else:
                    assert event["U"] <= last_id <= event["u"] or event["pu"] == last_id
            elif product == "spot":
                assert event["U"] == previous_u + 1
            else:
                assert event["pu"] == previous_u
            apply(book, event)
            previous_u = event["u"]
            applied += 1
        return book, previous_u, applied


@pytest.mark.parametrize(
    ("product", "stream", "depth_path", "symbol"),
    [
        ("spot", "/ws/btcusdt@depth@100ms", "/api/v3/depth", "BTCUSDT"),
        ("usdm", "/public/ws/btcusdt@depth@100ms", "/fapi/v1/depth", "BTCUSDT"),
        ("usdm", "/public/ws/btcusdt@depth@0ms", "/fapi/v1/depth", "BTCUSDT"),
        ("coinm", "/ws/btcusd_perp@depth", "/dapi/v1/depth", "BTCUSD_PERP"),
    ],
)
async def test_a_book_kept_by_binance_rules_matches_the_venue(
    venue, rest, product, stream, depth_path, symbol
) -> None:
    url = venue.urls["ws"][product] + stream
    book, book_id, applied = await follow_book(venue, rest, product, url, depth_path, symbol)
    assert applied > 3
    truth = (
        await rest.get("/_venue/book", params={"product": product, "symbol": symbol, "depth": 20})
    ).json()
    assert truth["lastUpdateId"] == book_id
    top_bids = sorted(book["bids"].items(), reverse=True)[:20]
    top_asks = sorted(book["asks"].items())[:20]
    assert top_bids == [(Decimal(p), Decimal(q)) for p, q in truth["bids"]]
    assert top_asks == [(Decimal(p), Decimal(q)) for p, q in truth["asks"]]


async def test_depth_faults_break_the_chain_as_asked(venue, rest) -> None:
    url = venue.urls["ws"]["usdm"] + "/public/ws/btcusdt@depth@100ms"
    async with open_websocket_url(url) as ws:
        events = [orjson.loads(await ws.get_message()) for _ in range(3)]
        await rest.post(
            "/_venue/faults/depth", json={"product": "usdm", "symbol": "BTCUSDT", "skip": 1}
        )
        events += [orjson.loads(await ws.get_message()) for _ in range(3)]
    breaks = [i for i in range(1, len(events)) if events[i]["pu"] != events[i - 1]["u"]]
    assert len(breaks) == 1


async def test_subscriptions_and_routes(venue) -> None:
    async with open_websocket_url(venue.urls["ws"]["spot"] + "/ws") as ws:
        await ws.send_message(
            orjson.dumps(
                {"method": "SUBSCRIBE", "params": ["btcusdt@trade", "ethusdt@depth@100ms"], "id": 1}
            ).decode()
        )
        assert orjson.loads(await ws.get_message()) == {"result": None, "id": 1}
        await ws.send_message(orjson.dumps({"method": "LIST_SUBSCRIPTIONS", "id": "a7"}).decode())
        reply = None
        while reply is None or "id" not in reply:
            reply = orjson.loads(await ws.get_message())
        assert reply == {"result": ["btcusdt@trade", "ethusdt@depth@100ms"], "id": "a7"}
        await ws.send_message(
            orjson.dumps({"method": "SET_PROPERTY", "params": ["combined", True], "id": 2}).decode()
        )
        message = None
        while message is None or "stream" not in message:
            message = orjson.loads(await ws.get_message())
        assert set(message) == {"stream", "data"}
    # An unrouted USD-M connection gets public data only: markPrice pushes nothing there.
    async with open_websocket_url(venue.urls["ws"]["usdm"] + "/ws/btcusdt@markPrice@1s") as ws:
        with trio.move_on_after(1.5) as quiet:
            await ws.get_message()
        assert quiet.cancelled_caught
    async with open_websocket_url(
        venue.urls["ws"]["usdm"] + "/market/ws/btcusdt@markPrice@1s"
    ) as ws:
        event = orjson.loads(await ws.get_message())
        assert event["e"] == "markPriceUpdate"


async def drain_until_closed(ws, messages: int = 200) -> None:
    for _ in range(messages):
        await ws.get_message()


async def test_too_many_messages_close_the_connection(venue) -> None:
    async with open_websocket_url(venue.urls["ws"]["spot"] + "/ws") as ws:
        for index in range(50):
            try:
                await ws.send_message(
                    orjson.dumps({"method": "LIST_SUBSCRIPTIONS", "id": index}).decode()
                )
            except ConnectionClosed:
                break
        with pytest.raises(ConnectionClosed):
            await drain_until_closed(ws)
        assert ws.closed.code == 1008


async def test_server_initiated_close(venue, rest) -> None:
    async with open_websocket_url(venue.urls["ws"]["spot"] + "/ws/btcusdt@depth@100ms") as ws:
        await ws.get_message()
        await rest.post("/_venue/faults/close", json={"code": 1001})
        with pytest.raises(ConnectionClosed):
            await drain_until_closed(ws)
        assert ws.closed.code == 1001


async def test_ws_api_methods_and_ed25519_logon(tmp_path) -> None:
    private = Ed25519PrivateKey.generate()
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    config = VenueConfig(seed=2, keys=(KeySpec(api_key="ed-key", public_key_pem=pem),))
    with trio.fail_after(DEADLINE):
        async with (
            open_venue(config) as venue,
            open_websocket_url(venue.urls["ws_api"]["spot"]) as ws,
        ):

            async def call(method: str, params: dict | None = None, request_id: object = 1) -> dict:
                body = {"id": request_id, "method": method}
                if params is not None:
                    body["params"] = params
                await ws.send_message(orjson.dumps(body).decode())
                return orjson.loads(await ws.get_message())

            pong = await call("ping", request_id="x1")
            assert pong["id"] == "x1"
            assert pong["status"] == 200
            assert pong["result"] == {}
            assert pong["rateLimits"][0]["rateLimitType"] == "REQUEST_WEIGHT"
            book = await call("depth", {"symbol": "BTCUSDT", "limit": 5})
            assert len(book["result"]["bids"]) == 5
            bad = await call("depth", {"symbol": "NOPE"})
            assert bad["status"] == 400
            assert bad["error"]["code"] == -1121
            timestamp = venue.clock.now_ms()
            payload = f"apiKey=ed-key&timestamp={timestamp}".encode()
            signature = base64.b64encode(private.sign(payload)).decode()
            logon = await call(
                "session.logon",
                {"apiKey": "ed-key", "timestamp": timestamp, "signature": signature},
            )
            assert logon["status"] == 200, logon
            assert logon["result"]["apiKey"] == "ed-key"
            forged = await call(
                "session.logon",
                {"apiKey": "ed-key", "timestamp": timestamp, "signature": signature[:-4] + "AAA="},
            )
            assert forged["error"]["code"] == -1022


async def test_an_injected_liquidation_reaches_force_order_streams(venue, rest) -> None:
    url = venue.urls["ws"]["usdm"] + "/market/stream?streams=btcusdt@forceOrder/!forceOrder@arr"
    async with open_websocket_url(url) as ws:
        await trio.sleep(0.2)
        response = await rest.post(
            "/_venue/force-order",
            json={"product": "usdm", "symbol": "BTCUSDT", "side": "SELL", "quantity": "0.5"},
        )
        assert response.status_code == 200
        streams = set()
        for _ in range(2):
            message = orjson.loads(await ws.get_message())
            streams.add(message["stream"])
            order = message["data"]["o"]
            assert (order["s"], order["S"], order["X"]) == ("BTCUSDT", "SELL", "FILLED")
        assert streams == {"btcusdt@forceOrder", "!forceOrder@arr"}
    refused = await rest.post(
        "/_venue/force-order", json={"product": "spot", "symbol": "BTCUSDT", "quantity": "1"}
    )
    assert refused.status_code == 400


def test_parameters_merge_query_and_body_with_the_query_winning() -> None:
    from scenarios.venue.http import parse_params

    params = parse_params(
        b"symbol=BTCUSDT&limit=5", b"limit=50&side=BUY", "application/x-www-form-urlencoded"
    )
    assert params == {"symbol": "BTCUSDT", "limit": "5", "side": "BUY"}
    assert parse_params(b"", b"a=%E2%82%AC", "") == {"a": "€"}


async def test_ws_api_survives_malformed_requests(venue) -> None:
    async with open_websocket_url(venue.urls["ws_api"]["usdm"]) as ws:
        for body in (
            {"id": 6, "method": "depth", "params": []},
            {"id": 7, "method": "depth", "params": None},
            {"id": {"a": 1}, "method": "ping"},
            "not json at all",
        ):
            await ws.send_message(body if isinstance(body, str) else orjson.dumps(body).decode())
            reply = orjson.loads(await ws.get_message())
            assert reply["status"] == 400
            assert reply["error"]["code"] in (-1102, -1130)
        await ws.send_message(orjson.dumps({"id": 8, "method": "v1/ping"}).decode())
        assert orjson.loads(await ws.get_message())["status"] == 200
        await ws.send_message(
            orjson.dumps(
                {"id": 9, "method": "depth", "params": {"symbol": "BTCUSDT", "limit": 1000}}
            ).decode()
        )
        heavy = orjson.loads(await ws.get_message())
        assert [limit["rateLimitType"] for limit in heavy["rateLimits"]] == ["REQUEST_WEIGHT"]


async def test_stream_property_errors_use_binance_codes(venue) -> None:
    async with open_websocket_url(venue.urls["ws"]["spot"] + "/ws") as ws:
        await ws.send_message(
            orjson.dumps(
                {"method": "SET_PROPERTY", "params": ["combined", "yes"], "id": 1}
            ).decode()
        )
        assert orjson.loads(await ws.get_message())["error"] == {
            "code": 1,
            "msg": "Invalid value type: expected Boolean",
        }
        await ws.send_message(
            orjson.dumps({"method": "GET_PROPERTY", "params": ["colour"], "id": 2}).decode()
        )
        assert orjson.loads(await ws.get_message())["error"] == {
            "code": 0,
            "msg": "Unknown property",
        }


async def test_handshakes_are_refused_with_http_statuses(venue, rest) -> None:
    from trio_websocket import ConnectionRejected

    with pytest.raises(ConnectionRejected) as unknown:
        async with open_websocket_url(venue.urls["ws"]["spot"] + "/nowhere"):
            pass
    assert unknown.value.status_code == 404
    # Names in the URL are not checked, as on Binance (ccxt opens "/ws/<its own counter>").
    async with open_websocket_url(venue.urls["ws"]["spot"] + "/ws/0"):
        pass
    await rest.post("/_venue/faults/refuse", json={"refuse": True})
    with pytest.raises(ConnectionRejected) as refused:
        async with open_websocket_url(venue.urls["ws"]["spot"] + "/ws"):
            pass
    assert refused.value.status_code == 503
    await rest.delete("/_venue/faults")
    async with open_websocket_url(venue.urls["ws"]["spot"] + "/ws") as ws:
        await ws.send_message(
            orjson.dumps(
                {"method": "SUBSCRIBE", "params": ["btcusdt@continuousKline_1m"], "id": 3}
            ).decode()
        )
        assert orjson.loads(await ws.get_message())["error"]["code"] == 2


async def test_all_market_mini_tickers_arrive_as_arrays(venue) -> None:
    async with open_websocket_url(venue.urls["ws"]["usdm"] + "/market/ws/!miniTicker@arr") as ws:
        batch = orjson.loads(await ws.get_message())
        assert isinstance(batch, list)
        assert {event["s"] for event in batch} >= {"BTCUSDT", "ETHUSDT"}
        assert all(event["e"] == "24hrMiniTicker" for event in batch)


async def test_a_client_that_stops_reading_is_dropped(venue) -> None:
    import wsproto
    from wsproto.events import Request

    venue.send_buffer = 300
    host, port = venue.urls["rest"].removeprefix("http://").rsplit(":", 1)
    streams = "/".join(
        f"{s}@depth@100ms/{s}@trade/{s}@bookTicker" for s in ("btcusdt", "ethusdt", "bnbusdt")
    )
    stream = await trio.open_tcp_stream(host, int(port))
    client = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
    await stream.send_all(client.send(Request(host=host, target=f"/stream?streams={streams}")))
    await stream.receive_some(4096)  # the 101 answer; from now on this client reads nothing
    await eventually(lambda: venue.hub.connections)
    (connection,) = venue.hub.connections
    await eventually(lambda: connection.closed_reason is not None)
    assert connection.closed_reason == (1008, "client too slow")
    assert not venue.hub.connections, "a closed connection leaves the hub"
    assert not venue.hub.streams(), "and takes its subscriptions with it"
    sent = venue.hub.messages_sent
    await trio.sleep(0.5)
    assert venue.hub.messages_sent == sent, "nothing more is queued for it"
    await stream.aclose()


async def eventually(condition, seconds: float = 25) -> None:
    """Poll venue state that no event announces, until it holds or the time is up."""
    for _ in range(int(seconds * 10)):
        if condition():
            return
        await trio.sleep(0.1)
    raise AssertionError("the condition never held")


async def test_stream_connections_expire_like_binances(venue) -> None:
    venue.max_connection_s = 0.5
    async with open_websocket_url(venue.urls["ws"]["spot"] + "/ws/btcusdt@depth@100ms") as ws:
        with pytest.raises(ConnectionClosed):
            await drain_until_closed(ws)
        assert ws.closed.code == 1000
        assert ws.closed.reason == "connection lifetime expired"


async def test_bad_control_requests_are_answered_not_crashed(venue, rest) -> None:
    crossing = await rest.post(
        "/_venue/liquidity",
        json={
            "product": "spot",
            "symbol": "BTCUSDT",
            "side": "BID",
            "price": "99999",
            "quantity": "1",
        },
    )
    assert crossing.status_code == 400
    assert "error" in crossing.json()
    bad_status = await rest.post(
        "/_venue/faults/endpoint", json={"path": "/api/v3/ping", "http_status": "x"}
    )
    assert bad_status.status_code == 400
    assert (await rest.get("/api/v3/ping")).status_code == 200


async def test_a_handler_bug_is_a_binance_500_and_the_venue_keeps_serving(venue, rest) -> None:
    from scenarios.venue.auth import Security
    from scenarios.venue.instruments import Product
    from scenarios.venue.rest import Route

    def broken(call) -> None:
        raise KeyError("a venue bug")

    venue.rest.routes[("GET", "/api/v3/broken")] = Route(Product.SPOT, Security.NONE, broken)
    response = await rest.get("/api/v3/broken")
    assert response.status_code == 500
    assert response.json() == {
        "code": -1000,
        "msg": "An unknown error occurred while processing the request.",
    }
    assert response.headers["x-venue-error"] == "KeyError"
    assert (await rest.get("/api/v3/ping")).status_code == 200


async def test_kline_stream_agrees_with_rest_klines(venue, rest) -> None:
    async with open_websocket_url(venue.urls["ws"]["usdm"] + "/market/ws/btcusdt@kline_1m") as ws:
        event = orjson.loads(await ws.get_message())
    rows = (
        await rest.get(
            "/fapi/v1/klines", params={"symbol": "BTCUSDT", "interval": "1m", "limit": 2}
        )
    ).json()
    candle = event["k"]
    assert (event["e"], candle["i"], candle["s"]) == ("kline", "1m", "BTCUSDT")
    assert candle["t"] in {row[0] for row in rows}
    assert candle["T"] == candle["t"] + 60_000 - 1
    assert Decimal(candle["l"]) <= Decimal(candle["c"]) <= Decimal(candle["h"])


async def test_session_logon_needs_an_ed25519_key(venue) -> None:
    import hashlib
    import hmac

    key = venue.first_key
    timestamp = venue.clock.now_ms()
    payload = f"apiKey={key.api_key}&timestamp={timestamp}".encode()
    signature = hmac.new(key.secret.encode(), payload, hashlib.sha256).hexdigest()
    request = {
        "id": 1,
        "method": "session.logon",
        "params": {"apiKey": key.api_key, "timestamp": timestamp, "signature": signature},
    }
    async with open_websocket_url(venue.urls["ws_api"]["usdm"]) as ws:
        await ws.send_message(orjson.dumps(request).decode())
        reply = orjson.loads(await ws.get_message())
    assert reply["error"] == {"code": -4056, "msg": "HMAC_SHA256 API key is not supported."}
