"""Throughput of the local venue on loopback: stream fan-out and REST requests per second.

The venue runs as its own process (``tern venue``) with a busy market (one activity step
every 10 ms); the load comes from this process, so the two share the machine's two cores the
way a client and the venue would. Rate limits are raised for the run (a benchmark is not a
client Binance would tolerate).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

import h11
import trio
from trio_websocket import open_websocket_url

ROOT = Path(__file__).resolve().parent.parent

VENUE_CONFIG = """
seed = 9
tick_ms = 10
[limits]
spot_weight_1m = 100000000
spot_orders_10s = 100000000
spot_orders_1d = 100000000
futures_weight_1m = 100000000
[balances.spot]
USDT = "1000000000"
BTC = "1000"
"""

SPOT_STREAMS = [
    f"{symbol}@{kind}"
    for symbol in ("btcusdt", "ethusdt", "bnbusdt")
    for kind in ("depth@100ms", "depth", "trade", "aggTrade", "bookTicker", "depth5@100ms")
]
USDM_STREAMS = [
    f"{symbol}@{kind}"
    for symbol in ("btcusdt", "ethusdt")
    for kind in ("depth@0ms", "depth@100ms", "depth@500ms", "bookTicker")
]


class VenueProcess:
    def __init__(self, config: str = VENUE_CONFIG) -> None:
        self.config = config

    def __enter__(self) -> dict:
        self.directory = tempfile.TemporaryDirectory(prefix="tern-bench-venue-")
        config = Path(self.directory.name) / "venue.toml"
        config.write_text(self.config)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "actors.cli", "venue", "--config", str(config)],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert self.process.stdout is not None
        return json.loads(self.process.stdout.readline())

    def __exit__(self, *exc_info: object) -> None:
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=30)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.directory.cleanup()


def stream_fan_out(seconds: float = 5.0, connections: int = 20) -> float:
    """Messages per second received by ``connections`` clients, each subscribed to every
    Spot and USD-M stream above."""
    with VenueProcess() as info:

        async def main() -> float:
            counts = [0] * connections
            ready = trio.Event()
            opened = [0]

            async def client(index: int) -> None:
                if index % 2:
                    url = info["ws"]["usdm"] + "/public/stream?streams=" + "/".join(USDM_STREAMS)
                else:
                    url = info["ws"]["spot"] + "/stream?streams=" + "/".join(SPOT_STREAMS)
                async with open_websocket_url(url, message_queue_size=10_000) as ws:
                    opened[0] += 1
                    if opened[0] == connections:
                        ready.set()
                    await ready.wait()
                    while True:
                        await ws.get_message()
                        counts[index] += 1

            async with trio.open_nursery() as nursery:
                for index in range(connections):
                    nursery.start_soon(client, index)
                await ready.wait()
                await trio.sleep(1.0)  # warm up
                before = sum(counts)
                started = time.perf_counter()
                await trio.sleep(seconds)
                delivered = sum(counts) - before
                elapsed = time.perf_counter() - started
                nursery.cancel_scope.cancel()
            return delivered / elapsed

        return trio.run(main)


def rest_requests(seconds: float = 5.0, concurrency: int = 16) -> float:
    """Completed REST requests per second, a mix of ping, depth and ticker calls, sent over
    ``concurrency`` keep-alive connections. The load generator speaks HTTP through h11 on
    raw trio sockets: httpx's own per-request cost would otherwise cap the measurement
    below what the venue serves."""
    paths = [
        "/api/v3/ping",
        "/api/v3/depth?symbol=BTCUSDT&limit=10",
        "/fapi/v1/depth?symbol=BTCUSDT&limit=10",
        "/api/v3/ticker/bookTicker?symbol=ETHUSDT",
    ]
    with VenueProcess() as info:
        host, port = info["rest"].removeprefix("http://").rsplit(":", 1)

        async def main() -> float:
            done = [0]
            deadline = trio.current_time() + seconds

            async def worker(index: int) -> None:
                position = index
                while trio.current_time() < deadline:
                    position = await session(position)

            async def session(position: int) -> int:
                """One keep-alive connection, until the server asks to close it."""
                stream = await trio.open_tcp_stream(host, int(port))
                connection = h11.Connection(h11.CLIENT)
                async with stream:
                    while trio.current_time() < deadline:
                        target = paths[position % len(paths)]
                        position += 1
                        request = h11.Request(method="GET", target=target, headers=[("Host", host)])
                        status, _ = await _exchange(stream, connection, request, b"")
                        if status != 200:
                            raise AssertionError(f"{target} answered {status}")
                        done[0] += 1
                        if connection.our_state is h11.MUST_CLOSE:
                            break
                        connection.start_next_cycle()
                return position

            started = time.perf_counter()
            async with trio.open_nursery() as nursery:
                for index in range(concurrency):
                    nursery.start_soon(worker, index)
            return done[0] / (time.perf_counter() - started)

        return trio.run(main)


async def _exchange(
    stream: trio.SocketStream, connection: h11.Connection, request: h11.Request, body: bytes
) -> tuple[int, bytes]:
    """One request/response on a keep-alive h11 connection."""
    data = connection.send(request)
    if body:
        data += connection.send(h11.Data(data=body))
    await stream.send_all(data + connection.send(h11.EndOfMessage()))
    status, chunks = 0, []
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            connection.receive_data(await stream.receive_some(65536))
        elif isinstance(event, h11.Response):
            status = event.status_code
        elif isinstance(event, h11.Data):
            chunks.append(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage):
            return status, b"".join(chunks)


def order_round_trips(seconds: float = 5.0, concurrency: int = 16) -> float:
    """Spot order placements plus cancels per second through signed REST: each worker
    places a LIMIT GTC buy below the market (it rests on the book) and cancels it by
    ``origClientOrderId``, over its own keep-alive connection, HMAC-signing every request
    as a client must. The market runs at the venue's default pace (one activity step per
    symbol every 100 ms), as under ``tern venue``."""
    with VenueProcess(VENUE_CONFIG.replace("tick_ms = 10", "tick_ms = 100")) as info:
        host, port = info["rest"].removeprefix("http://").rsplit(":", 1)
        api_key, secret = info["api_key"], info["api_secret"].encode()

        def signed(params: dict[str, str]) -> bytes:
            query = urllib.parse.urlencode(params)
            signature = hmac.new(secret, query.encode(), hashlib.sha256).hexdigest()
            return f"{query}&signature={signature}".encode()

        async def main() -> float:
            done = [0]
            stream = await trio.open_tcp_stream(host, int(port))
            async with stream:
                _status, body = await _exchange(
                    stream,
                    h11.Connection(h11.CLIENT),
                    h11.Request(
                        method="GET",
                        target="/api/v3/ticker/bookTicker?symbol=BTCUSDT",
                        headers=[("Host", host)],
                    ),
                    b"",
                )
            bid = float(json.loads(body)["bidPrice"])
            price = f"{round(bid * 0.99, 2):.2f}"
            deadline = trio.current_time() + seconds

            async def worker(index: int) -> None:
                stream = await trio.open_tcp_stream(host, int(port))
                connection = h11.Connection(h11.CLIENT)
                number = 0
                async with stream:
                    while trio.current_time() < deadline:
                        number += 1
                        client_id = f"bench-{index}-{number}"
                        now = str(int(time.time() * 1000))
                        for method, params in (
                            (
                                "POST",
                                {
                                    "symbol": "BTCUSDT",
                                    "side": "BUY",
                                    "type": "LIMIT",
                                    "timeInForce": "GTC",
                                    "quantity": "0.001",
                                    "price": price,
                                    "newClientOrderId": client_id,
                                    "newOrderRespType": "ACK",
                                    "recvWindow": "60000",
                                    "timestamp": now,
                                },
                            ),
                            (
                                "DELETE",
                                {
                                    "symbol": "BTCUSDT",
                                    "origClientOrderId": client_id,
                                    "recvWindow": "60000",
                                    "timestamp": now,
                                },
                            ),
                        ):
                            body = signed(params)
                            status, answer = await _exchange(
                                stream,
                                connection,
                                h11.Request(
                                    method=method,
                                    target="/api/v3/order",
                                    headers=[
                                        ("Host", host),
                                        ("X-MBX-APIKEY", api_key),
                                        ("Content-Type", "application/x-www-form-urlencoded"),
                                        ("Content-Length", str(len(body))),
                                    ],
                                ),
                                body,
                            )
                            if status != 200:
                                raise AssertionError(f"{method} /api/v3/order: {status} {answer!r}")
                            done[0] += 1
                            connection.start_next_cycle()

            started = time.perf_counter()
            async with trio.open_nursery() as nursery:
                for index in range(concurrency):
                    nursery.start_soon(worker, index)
            return done[0] / (time.perf_counter() - started)

        return trio.run(main)
