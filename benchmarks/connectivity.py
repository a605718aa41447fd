"""What the REST client adds to a request beyond the loopback round trip.

A minimal HTTP/1.1 server (h11 on trio, keep-alive, one fixed JSON answer with Binance-like
headers) runs in the same process as two clients that take turns:

* **raw**: one keep-alive socket and an h11 client connection, sending pre-built request
  bytes and parsing the answer: the round trip with nothing else;
* **tern**: :meth:`actors.binance.rest.RestClient.call` on a signed ``GET /api/v3/order``
  (HMAC): endpoint lookup and cost, rate-limit admission, timestamp, percent-encoding,
  signing, httpx, header feedback to the limiter, the ``Date`` check, error classification
  and the :class:`~events.connectivity.RestResponse`.

The overhead is the median tern call minus the median raw round trip, in microseconds. A
third series, httpx's transport alone on the same request, splits it into httpx's share and
tern's own. All run sequentially against the same server, interleaved in batches so drift
affects them alike.

Usage: ``python -m benchmarks.connectivity [--calls N]``.
"""

from __future__ import annotations

import argparse
import email.utils
import statistics
import time

import h11
import httpx
import trio

from actors.binance.clock import ServerClock
from actors.binance.costs import Pool
from actors.binance.ratelimit import RateLimiter
from actors.binance.rest import RestClient
from actors.config import AccountType, ClientConfig
from events.connectivity import RestRequest

API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
API_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
BODY = (
    b'{"symbol":"BTCUSDT","orderId":28,"orderListId":-1,"clientOrderId":"6gCrw2kRUAF9CvJDGP16IP",'
    b'"price":"0.10000000","origQty":"1.00000000","executedQty":"0.00000000","status":"NEW",'
    b'"timeInForce":"GTC","type":"LIMIT","side":"BUY","time":1499827319559}'
)
PARAMS = {"symbol": "BTCUSDT", "orderId": "28"}
_UNLIMITED = [
    {"rateLimitType": kind, "interval": "MINUTE", "intervalNum": 1, "limit": 10**12}
    for kind in ("REQUEST_WEIGHT", "RAW_REQUESTS")
]


class _DateCache:
    """The ``Date`` header value, formatted once per second as servers do."""

    def __init__(self) -> None:
        self._second = -1
        self._value = b""

    def value(self) -> bytes:
        second = int(time.time())
        if second != self._second:
            self._second = second
            self._value = email.utils.formatdate(second, usegmt=True).encode()
        return self._value


async def _serve_connection(stream: trio.SocketStream, dates: _DateCache) -> None:
    """Answer every request on ``stream`` with :data:`BODY` until the client leaves."""
    connection = h11.Connection(h11.SERVER)
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            data = await stream.receive_some(65536)
            connection.receive_data(data)
            if not data:
                return
            continue
        if isinstance(event, h11.EndOfMessage):
            headers = [
                (b"content-type", b"application/json;charset=UTF-8"),
                (b"content-length", str(len(BODY)).encode()),
                (b"x-mbx-used-weight-1m", b"4"),
                (b"date", dates.value()),
            ]
            await stream.send_all(
                connection.send(h11.Response(status_code=200, headers=headers))
                + connection.send(h11.Data(data=BODY))
                + connection.send(h11.EndOfMessage())
            )
            connection.start_next_cycle()
        elif isinstance(event, h11.ConnectionClosed):
            return


class _RawClient:
    """One keep-alive socket and one h11 client connection: the bare round trip."""

    def __init__(self, stream: trio.SocketStream, port: int) -> None:
        self.stream = stream
        self.connection = h11.Connection(h11.CLIENT)
        query = (
            "symbol=BTCUSDT&orderId=28&recvWindow=5000&timestamp=1499827319559"
            "&signature=c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
        )
        self.request = h11.Request(
            method="GET",
            target=f"/api/v3/order?{query}",
            headers=[
                ("host", f"127.0.0.1:{port}"),
                ("accept", "*/*"),
                ("user-agent", "tern"),
                ("x-mbx-apikey", API_KEY),
            ],
        )

    async def round_trip(self) -> None:
        connection = self.connection
        data = connection.send(self.request) + connection.send(h11.EndOfMessage())
        await self.stream.send_all(data)
        while True:
            event = connection.next_event()
            if event is h11.NEED_DATA:
                connection.receive_data(await self.stream.receive_some(65536))
            elif isinstance(event, h11.EndOfMessage):
                connection.start_next_cycle()
                return


async def _measure(calls: int, batch: int) -> dict[str, list[int]]:
    """Interleaved batches of three clients on one server; nanoseconds per round trip."""
    dates = _DateCache()
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            trio.serve_tcp, lambda stream: _serve_connection(stream, dates), 0
        )
        port = listeners[0].socket.getsockname()[1]
        config = ClientConfig(
            name="bench",
            account_type=AccountType.SPOT,
            base_url_http=f"http://127.0.0.1:{port}",
            api_key=API_KEY,
            api_secret=API_SECRET,
        )
        clock = ServerClock("bench")
        limiter = RateLimiter({Pool.SPOT: _UNLIMITED}, clock=clock.now_ms)
        client = RestClient(config, clock=clock, limiter=limiter, max_connections=1)
        request = RestRequest(
            client="bench", call_id="b", method="GET", path="/api/v3/order", params=PARAMS
        )
        raw_stream = await trio.open_tcp_stream("127.0.0.1", port)
        raw_client = _RawClient(raw_stream, port)
        transport = httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=1))
        url = f"http://127.0.0.1:{port}{raw_client.request.target.decode()}"

        async def tern() -> None:
            response = await client.call(request)
            if response.outcome != "ok":
                raise RuntimeError(f"benchmark call failed: {response}")

        async def bare_httpx() -> None:
            answer = await transport.handle_async_request(
                httpx.Request("GET", url, headers={"User-Agent": "tern", "X-MBX-APIKEY": API_KEY})
            )
            await answer.aread()
            await answer.aclose()

        series = {"tern": tern, "httpx": bare_httpx, "raw": raw_client.round_trip}
        times: dict[str, list[int]] = {name: [] for name in series}
        try:
            for run in series.values():  # warm up every path
                for _ in range(200):
                    await run()
            while len(times["tern"]) < calls:
                for name, run in series.items():
                    for _ in range(batch):
                        started = time.perf_counter_ns()
                        await run()
                        times[name].append(time.perf_counter_ns() - started)
        finally:
            await raw_stream.aclose()
            await transport.aclose()
            await client.aclose()
            nursery.cancel_scope.cancel()
    return times


def rest_overhead(calls: int = 3000, batch: int = 100) -> float:
    """Median microseconds a signed :meth:`RestClient.call` adds to a raw loopback round
    trip (admission + stamp + encode + sign + httpx + parse + classify)."""
    times = trio.run(_measure, calls, batch)
    return (statistics.median(times["tern"]) - statistics.median(times["raw"])) / 1000


def rest_overhead_beyond_httpx(calls: int = 3000, batch: int = 100) -> float:
    """Median microseconds tern's own work adds to the same request sent through httpx's
    transport alone: admission, stamp, encode, sign, header feedback, parse, classify."""
    times = trio.run(_measure, calls, batch)
    return (statistics.median(times["tern"]) - statistics.median(times["httpx"])) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.connectivity")
    parser.add_argument("--calls", type=int, default=3000)
    args = parser.parse_args()
    times = trio.run(_measure, args.calls, 100)
    p50 = {name: statistics.median(values) / 1000 for name, values in times.items()}
    print(f"raw h11 round trip          p50: {p50['raw']:8.1f} us")
    print(f"bare httpx transport        p50: {p50['httpx']:8.1f} us")
    print(f"RestClient.call (signed)    p50: {p50['tern']:8.1f} us")
    print(f"overhead over raw           p50: {p50['tern'] - p50['raw']:8.1f} us")
    print(f"  of which tern's own       p50: {p50['tern'] - p50['httpx']:8.1f} us")


if __name__ == "__main__":
    main()
