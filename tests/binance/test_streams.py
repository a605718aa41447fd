"""The market-stream client: subscriptions, throttling, liveness, reconnects and rotation.

End-to-end tests run the local venue on a loopback port (real clock, a deadline each);
timing logic runs against an in-memory fake connection under ``autojump_clock``.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import orjson
import pytest
import trio
import trio.testing
from trio_websocket import (
    CloseReason,
    ConnectionClosed,
    ConnectionRejected,
    WebSocketRequest,
    open_websocket_url,
    serve_websocket,
)

from actors.binance.streams import (
    MAX_STREAMS_PER_CONNECTION,
    SPARSE_STREAMS,
    Connector,
    StreamClient,
    StreamNameError,
    StreamSettings,
    TooManyStreams,
    WebSocket,
    is_sparse,
    route_for,
)
from actors.binance.venues import Route, resolve
from actors.config import AccountType, ClientConfig
from events.base import Event
from events.connectivity import (
    StreamConnected,
    StreamDisconnected,
    StreamFrame,
    StreamGap,
    StreamResubscribed,
)
from scenarios.venue.config import VenueConfig
from scenarios.venue.server import open_venue

DEADLINE = 10
#: Fast reconnects for tests on the real clock.
FAST = {"backoff_initial_s": 0.05, "backoff_max_s": 0.4, "coalesce_s": 0.0}


class Recorder:
    """The ``emit`` callable: keeps every event; tests wait for the ones they expect."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._changed = trio.Event()

    async def __call__(self, event: Event) -> None:
        self.events.append(event)
        self._changed.set()
        self._changed = trio.Event()
        await trio.lowlevel.checkpoint()

    def of(self, kind: type[Event]) -> list[Any]:
        return [event for event in self.events if isinstance(event, kind)]

    async def wait_for(self, predicate: Callable[[Any], bool], count: int = 1) -> list[Any]:
        while True:
            found = [event for event in self.events if predicate(event)]
            if len(found) >= count:
                return found
            await self._changed.wait()


class Sink:
    """Drains a frames channel into a list (a consumer that keeps up)."""

    def __init__(self, receive: trio.MemoryReceiveChannel[StreamFrame]) -> None:
        self.receive = receive
        self.frames: list[StreamFrame] = []
        self._changed = trio.Event()

    async def run(self) -> None:
        async for frame in self.receive:
            self.frames.append(frame)
            self._changed.set()
            self._changed = trio.Event()

    async def wait_for(self, predicate: Callable[[StreamFrame], bool], count: int = 1) -> None:
        while sum(1 for frame in self.frames if predicate(frame)) < count:
            await self._changed.wait()


def stream_of(frame: StreamFrame) -> str:
    return orjson.loads(frame.text)["stream"]


# --- the local venue -----------------------------------------------------------------------


@pytest.fixture
async def venue():
    with trio.fail_after(DEADLINE):
        async with open_venue(VenueConfig(seed=11, tick_ms=20)) as running:
            yield running


@pytest.fixture
async def rest(venue):
    async with httpx.AsyncClient(base_url=venue.urls["rest"], timeout=5) as client:
        yield client


@contextlib.asynccontextmanager
async def running(
    url: str,
    *,
    capacity: int = 10_000,
    drain: bool = True,
    account_type: AccountType = AccountType.SPOT,
    connect: Connector | None = None,
    **settings: Any,
) -> AsyncIterator[tuple[StreamClient, Recorder, Sink]]:
    """A stream client (Spot unless told) on ``url`` with a recorder and (when ``drain``) a
    sink."""
    send, receive = trio.open_memory_channel[StreamFrame](capacity)
    recorder = Recorder()
    client = StreamClient(
        client=account_type.value,
        url=url,
        frames=send,
        emit=recorder,
        settings=StreamSettings.for_account(account_type, **{**FAST, **settings}),
        connect=connect,
    )
    sink = Sink(receive)
    async with trio.open_nursery() as nursery:
        await nursery.start(client.run)
        if drain:
            nursery.start_soon(sink.run)
        yield client, recorder, sink
        nursery.cancel_scope.cancel()


def spot_url(venue: Any) -> str:
    return venue.urls["ws"]["spot"] + "/stream"


async def test_subscribe_refcount_and_unsubscribe_on_the_venue(venue) -> None:
    with trio.fail_after(DEADLINE):
        async with running(spot_url(venue)) as (client, recorder, sink):
            btc, eth = "btcusdt@bookTicker", "ethusdt@bookTicker"
            assert client.subscribe("book", [btc, eth]) == (btc, eth)
            assert client.subscribe("trader", [btc]) == ()
            assert client.subscribe("trader", [btc]) == ()  # a set: no double count
            assert await client.wait_subscribed([btc, eth], timeout_s=5) == {btc, eth}
            await sink.wait_for(lambda frame: stream_of(frame) == eth)
            await sink.wait_for(lambda frame: stream_of(frame) == btc)
            (connected,) = recorder.of(StreamConnected)
            assert connected.streams == (btc, eth)
            frame = sink.frames[-1]
            assert frame.client == "spot"
            assert frame.connection == connected.connection
            assert frame.text.startswith('{"stream":')

            # The book leaves: btc is still held by the trader, eth goes.
            assert client.unsubscribe("book", [btc, eth]) == (eth,)
            assert client.subscriptions() == {btc: ("trader",)}
            # The venue's own view: polled, as it offers nothing to wait on.
            while ("spot", eth) in {(p.value, s) for p, s in venue.hub.streams()}:  # noqa: ASYNC110
                await trio.sleep(0.01)
            await trio.sleep(0.1)  # frames in flight before the UNSUBSCRIBE was read
            count = len(sink.frames)
            await trio.sleep(0.3)
            later = [stream_of(frame) for frame in sink.frames[count:]]
            assert later
            assert set(later) == {btc}
            assert client.unsubscribe("trader", [btc]) == (btc,)
            assert client.subscriptions() == {}
            assert not recorder.of(StreamGap)


async def test_streams_are_split_across_connections_at_the_cap(venue) -> None:
    streams = [
        f"{symbol}@{kind}" for symbol in ("btcusdt", "ethusdt") for kind in ("bookTicker", "trade")
    ] + ["bnbusdt@bookTicker"]
    with trio.fail_after(DEADLINE):
        async with running(spot_url(venue), streams_per_connection=2) as (client, recorder, sink):
            client.subscribe("s", streams)
            assert await client.wait_subscribed(streams, timeout_s=5) == set(streams)
            links = client.links()
            assert [len(link.streams) for link in links] == [2, 2, 1]
            assert [link.slot for link in links] == [0, 1, 2]
            assert len(venue.hub.connections) == 3
            await recorder.wait_for(lambda event: isinstance(event, StreamConnected), 3)
            names = {link.name for link in links}
            await sink.wait_for(lambda frame: stream_of(frame).endswith("bookTicker"), 10)
            assert {frame.connection for frame in sink.frames} <= names
            # A freed place is reused before a new connection is opened.
            client.unsubscribe("s", [streams[0]])
            client.subscribe("s", ["bnbusdt@trade"])
            assert len({link.slot for link in client.links()}) == 3


async def test_a_refused_name_is_isolated_from_its_batch(venue) -> None:
    good = ["btcusdt@bookTicker", "ethusdt@trade", "bnbusdt@bookTicker"]
    bad = "btcusdt@avgPrice"  # the venue refuses streams it does not produce (code 2)
    with trio.fail_after(DEADLINE):
        async with running(spot_url(venue)) as (client, recorder, _sink):
            client.subscribe("s", [good[0], bad, *good[1:]])
            assert await client.wait_subscribed([*good, bad], timeout_s=5) == set(good)
            rejection = client.rejected[bad]
            assert rejection.code == 2
            assert bad in rejection.message
            assert rejection.subscribers == ("s",)
            assert bad not in client.subscriptions()
            (connected,) = await recorder.wait_for(lambda e: isinstance(e, StreamConnected))
            assert connected.streams == tuple(good)


async def test_server_close_reconnects_resubscribes_and_reports_the_gap(venue, rest) -> None:
    streams = ["btcusdt@bookTicker", "ethusdt@bookTicker"]
    with trio.fail_after(DEADLINE):
        async with running(spot_url(venue)) as (client, recorder, sink):
            client.subscribe("s", streams)
            await client.wait_subscribed(streams, timeout_s=5)
            (first,) = await recorder.wait_for(lambda e: isinstance(e, StreamConnected))
            await sink.wait_for(lambda frame: True, 5)

            response = await rest.post("/_venue/faults/close", json={"code": 1001})
            assert response.status_code == 200
            (gap,) = await recorder.wait_for(lambda e: isinstance(e, StreamGap))
            kinds = [type(event) for event in recorder.events]
            assert kinds == [
                StreamConnected,
                StreamDisconnected,
                StreamConnected,
                StreamResubscribed,
                StreamGap,
            ]
            _, dropped, second, resubscribed, _ = recorder.events
            assert dropped.connection == first.connection
            assert dropped.code == 1001
            assert "1001" in dropped.reason
            assert dropped.reconnect_in_ms is not None
            assert dropped.reconnect_in_ms > 0
            assert second.connection != first.connection
            assert second.streams == tuple(streams) == resubscribed.streams
            assert gap.connection == first.connection
            assert gap.streams == tuple(streams)
            last_before = max(
                f.received_ns for f in sink.frames if f.connection == first.connection
            )
            assert gap.from_ns == last_before < gap.to_ns
            await sink.wait_for(lambda frame: frame.connection == second.connection, 5)


async def test_refused_handshakes_back_off_then_recover(venue, rest) -> None:
    stream = "btcusdt@bookTicker"
    with trio.fail_after(DEADLINE):
        async with running(spot_url(venue), backoff_max_s=1.0) as (client, recorder, sink):
            client.subscribe("s", [stream])
            await client.wait_subscribed([stream], timeout_s=5)
            await rest.post("/_venue/faults/refuse", json={"refuse": True})
            await rest.post("/_venue/faults/close", json={"code": 1001})
            refused = await recorder.wait_for(
                lambda e: isinstance(e, StreamDisconnected) and "HTTP 503" in e.reason, 4
            )
            waits = [event.reconnect_in_ms for event in refused]
            assert waits == sorted(waits)
            assert waits[0] < waits[-1]
            assert all(event.code is None for event in refused)
            assert client.active() == frozenset()

            await rest.delete("/_venue/faults")
            (gap,) = await recorder.wait_for(lambda e: isinstance(e, StreamGap))
            assert gap.streams == (stream,)
            (_, back) = recorder.of(StreamConnected)
            await sink.wait_for(lambda frame: frame.connection == back.connection)
            assert client.active() == {stream}


async def test_silence_recycles_the_connection(venue, rest) -> None:
    stream = "btcusdt@bookTicker"  # only sent when the market moves
    with trio.fail_after(DEADLINE):
        async with running(spot_url(venue), liveness_s=0.3) as (client, recorder, sink):
            client.subscribe("s", [stream])
            await client.wait_subscribed([stream], timeout_s=5)
            await sink.wait_for(lambda frame: True)
            await rest.post("/_venue/activity", json={"paused": True})
            (silent,) = await recorder.wait_for(
                lambda e: isinstance(e, StreamDisconnected) and "no frame" in e.reason
            )
            assert silent.reason == "no frame for 0.3 s"
            assert silent.reconnect_in_ms is not None
            await rest.post("/_venue/activity", json={"paused": False})
            await recorder.wait_for(lambda e: isinstance(e, StreamResubscribed))
            connected = recorder.of(StreamConnected)[-1]
            await sink.wait_for(lambda frame: frame.connection == connected.connection)


class CountedSocket:
    """A trio-websocket connection whose pings are counted once answered."""

    def __init__(self, ws: WebSocket, counter: PongCounter) -> None:
        self._ws = ws
        self._counter = counter

    async def get_message(self) -> str | bytes:
        return await self._ws.get_message()

    async def send_message(self, message: str | bytes) -> None:
        await self._ws.send_message(message)

    async def ping(self, payload: bytes | None = None) -> None:
        await self._ws.ping(payload)  # returns once the matching pong arrived
        self._counter.pongs += 1


class PongCounter:
    """A ``connect`` hook over trio-websocket that counts the answered liveness pings."""

    def __init__(self) -> None:
        self.pongs = 0

    @contextlib.asynccontextmanager
    async def connect(self, url: str) -> AsyncIterator[WebSocket]:
        async with open_websocket_url(url) as ws:
            yield CountedSocket(ws, self)


async def test_sparse_streams_alone_never_time_out_but_a_regular_one_does(venue, rest) -> None:
    """Liquidation streams may be silent for hours on a healthy connection: the silence
    deadline waits for a regular stream, while the ping probe watches throughout."""
    sparse = ["btcusdt@forceOrder", "!forceOrder@arr"]
    regular = "btcusdt@aggTrade"  # only sent on trades: silent while the market is paused
    pongs = PongCounter()
    url = venue.urls["ws"]["usdm"] + "/market/stream"
    with trio.fail_after(DEADLINE):
        await rest.post("/_venue/activity", json={"paused": True})
        async with running(
            url,
            account_type=AccountType.USDT_FUTURES,
            connect=pongs.connect,
            liveness_s=0.2,
            probe_after_s=0.1,
            pong_timeout_s=5.0,
        ) as (client, recorder, sink):
            client.subscribe("s", sparse)
            await client.wait_subscribed(sparse, timeout_s=5)
            (connected,) = await recorder.wait_for(lambda e: isinstance(e, StreamConnected))
            await trio.sleep(0.5)  # 2.5 silence deadlines
            liquidation = {"product": "usdm", "symbol": "BTCUSDT", "quantity": "0.5"}
            response = await rest.post("/_venue/force-order", json=liquidation)
            assert response.status_code == 200
            await sink.wait_for(lambda frame: stream_of(frame) == "btcusdt@forceOrder")
            await sink.wait_for(lambda frame: stream_of(frame) == "!forceOrder@arr")
            await trio.sleep(0.5)  # 2.5 more, and the last frame is older than one
            assert recorder.events == [connected]  # no recycle, no gap
            assert {frame.connection for frame in sink.frames} == {connected.connection}
            assert pongs.pongs >= 4  # the probe kept checking the silent connection

            # A regular stream arms the deadline, counted from its acknowledgement (not from
            # the last frame, half a second ago), and silence then recycles the connection.
            asked_at = trio.current_time()
            client.subscribe("s", [regular])
            (silent,) = await recorder.wait_for(lambda e: isinstance(e, StreamDisconnected))
            assert trio.current_time() - asked_at >= 0.2
            assert silent.connection == connected.connection
            assert silent.reason == "no frame for 0.2 s"
            (gap,) = await recorder.wait_for(lambda e: isinstance(e, StreamGap))
            assert gap.connection == connected.connection
            assert set(gap.streams) == {*sparse, regular}


async def test_a_slow_consumer_recycles_and_reports_a_gap(venue) -> None:
    streams = ["btcusdt@bookTicker", "ethusdt@bookTicker", "btcusdt@trade"]
    with trio.fail_after(DEADLINE):
        async with running(spot_url(venue), capacity=8, drain=False) as (client, recorder, sink):
            client.subscribe("s", streams)
            (slow,) = await recorder.wait_for(lambda e: isinstance(e, StreamDisconnected))
            assert slow.reason == "consumer too slow: frames channel full"
            # Nothing was dropped silently: the channel holds what fitted, the rest is a gap.
            kept = [sink.receive.receive_nowait() for _ in range(8)]
            assert {frame.connection for frame in kept} == {slow.connection}
            async with trio.open_nursery() as nursery:
                nursery.start_soon(sink.run)
                (gap,) = await recorder.wait_for(lambda e: isinstance(e, StreamGap))
                assert gap.connection == slow.connection
                assert gap.reason == slow.reason
                assert set(gap.streams) <= set(streams)
                assert gap.from_ns == max(frame.received_ns for frame in kept)
                connected = recorder.of(StreamConnected)[-1]
                await sink.wait_for(lambda frame: frame.connection == connected.connection)
                nursery.cancel_scope.cancel()


async def test_rotation_on_the_venue_overlaps_and_loses_nothing(venue) -> None:
    venue.max_connection_s = 1.2  # the venue's "24 hours"
    stream = "btcusdt@depth@100ms"  # Spot diff depth: U == previous u + 1, or a frame was lost
    with trio.fail_after(DEADLINE):
        async with running(spot_url(venue), rotate_after_s=0.6, rotation_overlap_s=0.2) as (
            client,
            recorder,
            sink,
        ):
            client.subscribe("s", [stream])
            await recorder.wait_for(
                lambda e: isinstance(e, StreamDisconnected) and e.reason.startswith("rotated"), 3
            )
            assert not recorder.of(StreamGap)
            assert all(
                e.reason.startswith("rotated") and e.reconnect_in_ms is None
                for e in recorder.of(StreamDisconnected)
            )
            # Each replacement was announced before its predecessor left, with its streams.
            connected = {
                e.connection: i
                for i, e in enumerate(recorder.events)
                if isinstance(e, StreamConnected)
            }
            for index, event in enumerate(recorder.events):
                if isinstance(event, StreamDisconnected):
                    successor = event.reason.split()[2].rstrip(":")
                    assert connected[successor] < index
            assert {e.streams for e in recorder.of(StreamResubscribed)} == {(stream,)}
            # Overlap delivers some events twice; once deduplicated by update id they chain
            # without a hole across all four connections.
            assert len({frame.connection for frame in sink.frames}) == 4
            events = {}
            for frame in sink.frames:
                data = orjson.loads(frame.text)["data"]
                events[data["u"]] = data["U"]
            assert len(events) < len(sink.frames)
            last = sorted(events)
            assert all(events[u] == previous + 1 for previous, u in itertools.pairwise(last))


async def test_usdm_routes_are_checked_and_served(venue) -> None:
    endpoints = resolve(
        ClientConfig(
            name="usdm",
            account_type=AccountType.USDT_FUTURES,
            base_url_ws=venue.urls["ws"]["usdm"],
        )
    )
    send, receive = trio.open_memory_channel[StreamFrame](1000)
    recorder = Recorder()
    public = StreamClient.for_endpoints(endpoints, Route.PUBLIC, frames=send, emit=recorder)
    assert public.url == venue.urls["ws"]["usdm"] + "/public/stream"
    assert public.settings.messages_per_second == 10
    with pytest.raises(StreamNameError, match="/market route"):
        public.subscribe("s", ["btcusdt@markPrice"])
    assert public.subscriptions() == {}
    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            await nursery.start(public.run)
            public.subscribe("s", ["btcusdt@depth@100ms"])
            frame = await receive.receive()
            assert frame.connection.startswith("usdm/public#")
            assert stream_of(frame) == "btcusdt@depth@100ms"
            nursery.cancel_scope.cancel()


async def test_server_pings_are_answered() -> None:
    """trio-websocket answers pings by itself; a server that waits for the pong sees it."""
    pongs: list[float] = []

    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        async with trio.open_nursery() as nursery:

            async def answer_control() -> None:
                while True:
                    message = orjson.loads(await ws.get_message())
                    result = ["x@trade"] if message["method"] == "LIST_SUBSCRIPTIONS" else None
                    reply = {"result": result, "id": message["id"]}
                    await ws.send_message(orjson.dumps(reply).decode())

            nursery.start_soon(answer_control)
            for _ in range(3):
                with trio.fail_after(2):
                    await ws.ping()  # returns once the matching pong arrived
                pongs.append(trio.current_time())
                await ws.send_message('{"stream":"x@trade","data":{}}')
            nursery.cancel_scope.cancel()

    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(serve_websocket, handler, "127.0.0.1", 0, None)
            url = f"ws://127.0.0.1:{server.port}/stream"
            async with running(url) as (client, _recorder, sink):
                client.subscribe("s", ["x@trade"])
                await sink.wait_for(lambda frame: True, 3)
            nursery.cancel_scope.cancel()
    assert len(pongs) == 3


# --- a fake connection, for timing under the autojump clock ----------------------------------


class FakeSocket:
    """One fake stream connection: answers control messages like Binance."""

    def __init__(self, server: FakeServer, url: str) -> None:
        self.server = server
        self.url = url
        self.opened_at = trio.current_time()
        self.open = True
        self.streams: list[str] = list(server.preset)
        self.sent: list[tuple[float, dict[str, Any]]] = []
        self._send, self._receive = trio.open_memory_channel[Any](math.inf)

    async def get_message(self) -> str:
        item = await self._receive.receive()
        if isinstance(item, CloseReason):
            self.open = False
            raise ConnectionClosed(item)
        return item

    async def send_message(self, message: str | bytes) -> None:
        await trio.lowlevel.checkpoint()
        if not self.open:
            raise ConnectionClosed(CloseReason(1006, None))
        request = orjson.loads(message)
        self.sent.append((trio.current_time(), request))
        if self.server.mute:
            return
        method, params, request_id = request["method"], request.get("params"), request["id"]
        if method == "SUBSCRIBE":
            if any(name in self.server.refused for name in params):
                self.push({"error": {"code": 2, "msg": "Invalid request"}, "id": request_id})
                return
            lost = self.server.forget | self.server.delist
            kept = [name for name in params if name not in lost]
            self.server.forget.difference_update(params)
            self.server.refused.update(name for name in params if name in self.server.delist)
            self.streams += [name for name in kept if name not in self.streams]
        elif method == "UNSUBSCRIBE":
            if self.server.refuse_unsubscribe:
                self.push({"error": {"code": 2, "msg": "Invalid request"}, "id": request_id})
                return
            self.streams = [name for name in self.streams if name not in params]
        result = list(self.streams) if method == "LIST_SUBSCRIPTIONS" else None
        self.push({"result": result, "id": request_id})

    async def ping(self, payload: bytes | None = None) -> None:
        if not self.server.answer_pings:
            await trio.sleep_forever()
        await trio.lowlevel.checkpoint()

    def push(self, message: Any) -> None:
        text = message if isinstance(message, str) else orjson.dumps(message).decode()
        self._send.send_nowait(text)

    def close(self, code: int, reason: str = "") -> None:
        self._send.send_nowait(CloseReason(code, reason))


class FakeServer:
    """Hands out :class:`FakeSocket`\\ s through the client's ``connect`` hook."""

    def __init__(self) -> None:
        self.sockets: list[FakeSocket] = []
        self.refused: set[str] = set()
        #: Names acknowledged once but not actually subscribed (a server losing state).
        self.forget: set[str] = set()
        #: Names acknowledged once but not subscribed, and refused from then on (delisted).
        self.delist: set[str] = set()
        #: Streams every new connection holds without having been asked (stale state).
        self.preset: list[str] = []
        self.refuse_unsubscribe = False
        self.refuse_connections = False
        self.mute = False
        self.answer_pings = True

    @contextlib.asynccontextmanager
    async def connect(self, url: str) -> AsyncIterator[FakeSocket]:
        await trio.lowlevel.checkpoint()
        if self.refuse_connections:
            raise ConnectionRejected(503, (), b"")
        socket = FakeSocket(self, url)
        self.sockets.append(socket)
        try:
            yield socket
        finally:
            socket.open = False

    def live(self) -> list[FakeSocket]:
        return [socket for socket in self.sockets if socket.open]

    def publish(self, stream: str, data: Any) -> None:
        for socket in self.live():
            if stream in socket.streams:
                socket.push({"stream": stream, "data": data})


def fake_client(
    server: FakeServer, *, capacity: int = 100_000, **settings: Any
) -> tuple[StreamClient, Recorder, trio.MemoryReceiveChannel[StreamFrame]]:
    send, receive = trio.open_memory_channel[StreamFrame](capacity)
    recorder = Recorder()
    client = StreamClient(
        client="usdm",
        url="wss://fstream.example/market/stream",
        frames=send,
        emit=recorder,
        settings=StreamSettings.for_account(AccountType.USDT_FUTURES, **settings),
        route=Route.MARKET,
        name="usdm/market",
        rng=random.Random(7),
        clock=lambda: round(trio.current_time() * 1e9),
        connect=server.connect,
    )
    return client, recorder, receive


def control(socket: FakeSocket, method: str) -> list[tuple[float, dict[str, Any]]]:
    return [(at, request) for at, request in socket.sent if request["method"] == method]


async def test_control_messages_respect_the_incoming_limit(autojump_clock) -> None:
    server = FakeServer()
    client, _recorder, _ = fake_client(server, streams_per_message=1)
    streams = [f"s{n}usdt@aggTrade" for n in range(40)]
    async with trio.open_nursery() as nursery:
        await nursery.start(client.run)
        start = trio.current_time()
        client.subscribe("s", streams)
        assert await client.wait_subscribed(streams, timeout_s=60) == set(streams)
        (socket,) = server.sockets
        times = [at for at, _ in socket.sent]
        assert len(control(socket, "SUBSCRIBE")) == 40
        # Futures allow 10 incoming messages a second; 9 are used, 1 is left for pongs.
        for index in range(len(times) - 9):
            assert times[index + 9] - times[index] > 1.0
        assert times[-1] - start >= 4.0
        nursery.cancel_scope.cancel()


async def test_bursts_share_few_messages(autojump_clock) -> None:
    server = FakeServer()
    client, _recorder, _ = fake_client(server, streams_per_connection=300)
    streams = [f"s{n}usdt@aggTrade" for n in range(250)]
    async with trio.open_nursery() as nursery:
        await nursery.start(client.run)
        for start in range(0, 250, 50):  # five commands in one go
            client.subscribe(f"actor{start}", streams[start : start + 50])
        await client.wait_subscribed(streams, timeout_s=10)
        (socket,) = server.sockets
        batches = [request["params"] for _, request in control(socket, "SUBSCRIBE")]
        assert batches == [streams[:200], streams[200:]]
        # Subscriptions trickling in while connected are coalesced too.
        for name in ("a1usdt@aggTrade", "a2usdt@aggTrade", "a3usdt@aggTrade"):
            client.subscribe("late", [name])
            await trio.sleep(0.005)
        await client.wait_subscribed(["a3usdt@aggTrade"], timeout_s=10)
        assert control(socket, "SUBSCRIBE")[-1][1]["params"] == [
            "a1usdt@aggTrade",
            "a2usdt@aggTrade",
            "a3usdt@aggTrade",
        ]
        # One LIST_SUBSCRIPTIONS, once nothing was pending, checked the acknowledgements.
        await trio.sleep(1)
        assert len(control(socket, "LIST_SUBSCRIPTIONS")) == 1
        nursery.cancel_scope.cancel()


async def test_rotation_before_the_24_hour_cut_loses_nothing(autojump_clock) -> None:
    server = FakeServer()
    client, recorder, frames = fake_client(server)
    stream = "btcusdt@markPrice"
    received: list[int] = []
    produced = 0

    async def binance() -> None:
        """Publish every 20 s; cut any connection at 24 hours, as Binance does."""
        nonlocal produced
        while True:
            await trio.sleep(20)
            produced += 1
            server.publish(stream, {"E": produced})
            for socket in server.live():
                if trio.current_time() - socket.opened_at >= 24 * 3600:
                    socket.close(1000, "lifetime")

    async def consume() -> None:
        async for frame in frames:
            received.append(orjson.loads(frame.text)["data"]["E"])

    async with trio.open_nursery() as nursery:
        await nursery.start(client.run)
        nursery.start_soon(binance)
        nursery.start_soon(consume)
        client.subscribe("s", [stream])
        await trio.sleep(49 * 3600)
        await trio.testing.wait_all_tasks_blocked()
        assert not recorder.of(StreamGap)
        rotations = recorder.of(StreamDisconnected)
        assert len(rotations) == 2
        assert all(event.reason.startswith("rotated to") for event in rotations)
        assert all("older than 84600 s" in event.reason for event in rotations)
        opened = [socket.opened_at - server.sockets[0].opened_at for socket in server.sockets]
        assert opened == pytest.approx([0, 23.5 * 3600, 47 * 3600], abs=1)
        # Every published frame arrived; the overlap second may repeat some.
        assert set(received) == set(range(1, produced + 1))
        assert len(received) - produced <= 2
        nursery.cancel_scope.cancel()


async def test_no_pong_recycles_and_backoff_grows(autojump_clock) -> None:
    server = FakeServer()
    client, recorder, _ = fake_client(
        server, probe_after_s=5, pong_timeout_s=2, liveness_s=None, stable_after_s=1000
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(client.run)
        client.subscribe("s", ["btcusdt@markPrice"])
        server.answer_pings = False
        lost = await recorder.wait_for(lambda e: isinstance(e, StreamDisconnected), 4)
        assert {event.reason for event in lost} == {"no pong within 2 s"}
        waits = [event.reconnect_in_ms for event in lost]
        assert waits == sorted(waits)
        assert waits[-1] > 2 * waits[0]
        server.answer_pings = True
        await trio.sleep(60)
        assert len(recorder.of(StreamDisconnected)) == 4  # alive: pings answered, no churn
        nursery.cancel_scope.cancel()


async def test_server_shutdown_notice_rotates_early(autojump_clock) -> None:
    server = FakeServer()
    client, recorder, frames = fake_client(server)
    stream = "btcusdt@markPrice"
    async with trio.open_nursery() as nursery:
        await nursery.start(client.run)
        client.subscribe("s", [stream])
        await client.wait_subscribed([stream], timeout_s=5)
        (old,) = server.sockets
        notice = '{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":1}}'
        old.push(notice)
        (rotated,) = await recorder.wait_for(lambda e: isinstance(e, StreamDisconnected))
        assert rotated.reason.endswith("server announced a shutdown")
        assert rotated.connection == "usdm/market#1"
        assert rotated.reconnect_in_ms is None
        (_, new) = server.sockets
        assert new.streams == [stream]
        assert not old.open
        assert frames.receive_nowait().text == notice  # passed on like any frame
        assert not recorder.of(StreamGap)
        nursery.cancel_scope.cancel()


async def test_list_subscriptions_repairs_a_lost_subscription(autojump_clock) -> None:
    server = FakeServer()
    server.forget = {"ethusdt@markPrice"}
    client, _recorder, _ = fake_client(server)
    streams = ["btcusdt@markPrice", "ethusdt@markPrice"]
    async with trio.open_nursery() as nursery:
        await nursery.start(client.run)
        client.subscribe("s", streams)
        await trio.sleep(5)
        (socket,) = server.sockets
        assert socket.streams == streams
        sent = [(request["method"], request.get("params")) for _, request in socket.sent]
        assert sent == [
            ("SUBSCRIBE", streams),
            ("LIST_SUBSCRIPTIONS", None),
            ("SUBSCRIBE", ["ethusdt@markPrice"]),
        ]
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("refused", [False, True], ids=["acknowledged", "refused"])
async def test_dropping_the_last_regular_stream_disarms_the_silence_deadline(
    autojump_clock, refused: bool
) -> None:
    server = FakeServer()
    server.refuse_unsubscribe = refused  # a refused UNSUBSCRIBE drops the stream all the same
    client, recorder, _ = fake_client(server, liveness_s=30, probe_after_s=5)
    sparse, regular = "!contractInfo", "btcusdt@markPrice"
    async with trio.open_nursery() as nursery:
        await nursery.start(client.run)
        client.subscribe("s", [sparse, regular])
        await client.wait_subscribed([sparse, regular], timeout_s=5)
        client.unsubscribe("s", [regular])
        await trio.sleep(3600)  # an hour without a frame: the ping probe alone watches
        assert not recorder.of(StreamDisconnected)
        (socket,) = server.sockets
        # Refused: the audit then finds the stream still listed, holds it, and asks again.
        assert len(control(socket, "UNSUBSCRIBE")) == (2 if refused else 1)
        # The regular stream back: the deadline counts from its acknowledgement.
        client.subscribe("s", [regular])
        await client.wait_subscribed([regular], timeout_s=5)
        acked_at = trio.current_time()
        (silent,) = await recorder.wait_for(lambda e: isinstance(e, StreamDisconnected))
        assert silent.reason == "no frame for 30 s"
        assert trio.current_time() - acked_at == pytest.approx(30, abs=0.1)
        nursery.cancel_scope.cancel()


async def test_list_subscriptions_repairs_keep_the_regular_streams_counted(
    autojump_clock,
) -> None:
    server = FakeServer()
    server.preset = ["ethusdt@markPrice"]  # held though never asked: dropped by the audit
    server.delist = {"btcusdt@markPrice"}  # acknowledged, not held, then refused
    client, recorder, _ = fake_client(server, liveness_s=30, probe_after_s=5)
    streams = ["btcusdt@forceOrder", "btcusdt@markPrice"]
    async with trio.open_nursery() as nursery:
        await nursery.start(client.run)
        client.subscribe("s", streams)
        await trio.sleep(3600)
        (socket,) = server.sockets
        sent = [(request["method"], request.get("params")) for _, request in socket.sent]
        assert sent == [
            ("SUBSCRIBE", streams),
            ("LIST_SUBSCRIPTIONS", None),
            ("UNSUBSCRIBE", ["ethusdt@markPrice"]),
            ("SUBSCRIBE", ["btcusdt@markPrice"]),
        ]
        assert "btcusdt@markPrice" in client.rejected
        assert socket.streams == ["btcusdt@forceOrder"]
        assert client.active() == {"btcusdt@forceOrder"}
        assert not recorder.of(StreamDisconnected)  # only a sparse stream left: no deadline
        nursery.cancel_scope.cancel()


async def test_churn_converges_to_what_is_wanted(autojump_clock) -> None:
    server = FakeServer()
    client, recorder, _ = fake_client(server, streams_per_connection=3, idle_close_s=1)
    rng = random.Random(5)
    names = [f"s{n}usdt@aggTrade" for n in range(8)]
    async with trio.open_nursery() as nursery:
        await nursery.start(client.run)
        for _ in range(200):
            subscriber = rng.choice("abc")
            chosen = rng.sample(names, rng.randint(1, 3))
            if rng.random() < 0.55:
                client.subscribe(subscriber, chosen)
            else:
                client.unsubscribe(subscriber, chosen)
            await trio.sleep(rng.choice([0, 0.001, 0.05, 0.3]))
        await trio.sleep(10)
        wanted = set(client.subscriptions())
        held = [stream for socket in server.live() for stream in socket.streams]
        assert sorted(held) == sorted(wanted)  # each wanted stream exactly once
        assert all(len(socket.streams) <= 3 for socket in server.live())
        assert client.active() == wanted
        assert not recorder.of(StreamGap)
        nursery.cancel_scope.cancel()


async def test_a_missing_reply_recycles(autojump_clock) -> None:
    server = FakeServer()
    server.mute = True
    client, recorder, _ = fake_client(server, reply_timeout_s=3)
    async with trio.open_nursery() as nursery:
        await nursery.start(client.run)
        client.subscribe("s", ["btcusdt@markPrice"])
        (event,) = await recorder.wait_for(lambda e: isinstance(e, StreamDisconnected))
        assert event.reason == "no reply to SUBSCRIBE within 3 s"
        server.mute = False
        await client.wait_subscribed(["btcusdt@markPrice"], timeout_s=5)
        assert not recorder.of(StreamGap)  # nothing had been acknowledged: nothing was lost
        nursery.cancel_scope.cancel()


async def test_odd_frames_pass_through_and_replies_are_consumed(autojump_clock) -> None:
    server = FakeServer()
    client, _recorder, frames = fake_client(server)
    async with trio.open_nursery() as nursery:
        await nursery.start(client.run)
        client.subscribe("s", ["btcusdt@markPrice"])
        await client.wait_subscribed(["btcusdt@markPrice"], timeout_s=5)
        (socket,) = server.sockets
        odd = ["not json", "[1,2]", '{"e":"raw"}', '{"id":3}', '{"stream":"x","result":null}']
        for text in odd:
            socket.push(text)
        socket.push('{"result":null,"id":999999}')  # a reply to nothing we sent: consumed
        socket.push('{"stream":"btcusdt@markPrice","data":{"E":1}}')
        await trio.testing.wait_all_tasks_blocked()
        texts = [frames.receive_nowait().text for _ in range(len(odd) + 1)]
        assert texts == [*odd, '{"stream":"btcusdt@markPrice","data":{"E":1}}']
        with pytest.raises(trio.WouldBlock):
            frames.receive_nowait()
        nursery.cancel_scope.cancel()


async def test_the_last_unsubscriber_closes_an_idle_connection(autojump_clock) -> None:
    server = FakeServer()
    client, recorder, _ = fake_client(server, idle_close_s=5)
    stream = "btcusdt@markPrice"
    async with trio.open_nursery() as nursery:
        await nursery.start(client.run)
        client.subscribe("a", [stream])
        client.subscribe("b", [stream])
        await client.wait_subscribed([stream], timeout_s=5)
        (socket,) = server.sockets
        assert client.unsubscribe("a", [stream]) == ()
        await trio.sleep(1)
        assert not control(socket, "UNSUBSCRIBE")
        assert client.unsubscribe("b", [stream]) == (stream,)
        await trio.sleep(1)
        assert [request["params"] for _, request in control(socket, "UNSUBSCRIBE")] == [[stream]]
        assert socket.open
        (closed,) = await recorder.wait_for(lambda e: isinstance(e, StreamDisconnected))
        assert closed.reason == "no streams left"
        assert closed.reconnect_in_ms is None
        assert not socket.open
        assert client.links() == ()
        nursery.cancel_scope.cancel()


async def test_aclose_reports_every_connection(autojump_clock) -> None:
    server = FakeServer()
    client, recorder, _ = fake_client(server, streams_per_connection=1)
    async with trio.open_nursery() as nursery:
        await nursery.start(client.run)
        client.subscribe("s", ["btcusdt@markPrice", "ethusdt@markPrice"])
        await client.wait_subscribed(["btcusdt@markPrice", "ethusdt@markPrice"], timeout_s=5)
        await client.aclose()
    stopped = recorder.of(StreamDisconnected)
    assert [event.reason for event in stopped] == ["client stopped"] * 2
    assert all(event.reconnect_in_ms is None for event in stopped)
    assert not server.live()
    # Subscriptions survive; running again resubscribes and reports the time in between.
    await trio.sleep(30)
    async with trio.open_nursery() as nursery:
        await nursery.start(client.run)
        gaps = await recorder.wait_for(lambda e: isinstance(e, StreamGap), 2)
        assert sorted(gap.streams for gap in gaps) == [
            ("btcusdt@markPrice",),
            ("ethusdt@markPrice",),
        ]
        assert all(gap.reason == "client stopped" for gap in gaps)
        assert all(gap.to_ns - gap.from_ns >= 30e9 for gap in gaps)
        assert len(recorder.of(StreamResubscribed)) == 2
        nursery.cancel_scope.cancel()


# --- pure logic ----------------------------------------------------------------------------


def test_backoff_is_capped_exponential_with_seeded_jitter() -> None:
    settings = StreamSettings(backoff_initial_s=0.5, backoff_max_s=30, backoff_jitter=0.25)
    waits = [settings.backoff(attempt, random.Random(3)) for attempt in range(12)]
    assert waits == [settings.backoff(attempt, random.Random(3)) for attempt in range(12)]
    for attempt, wait in enumerate(waits):
        base = min(30, 0.5 * 2**attempt)
        assert 0.75 * base <= wait <= base
    assert settings.backoff(10_000, random.Random(3)) <= 30


def test_settings_refuse_impossible_limits() -> None:
    with pytest.raises(ValueError, match="1024"):
        StreamSettings(streams_per_connection=MAX_STREAMS_PER_CONNECTION + 1)
    with pytest.raises(ValueError, match="reserved_messages"):
        StreamSettings(messages_per_second=1)
    assert StreamSettings.for_account(AccountType.SPOT).messages_per_second == 5
    assert StreamSettings.for_account(AccountType.COIN_FUTURES).messages_per_second == 10


def test_stream_names_and_routes() -> None:
    assert route_for("btcusdt@bookTicker") is Route.PUBLIC
    assert route_for("!bookTicker") is Route.PUBLIC
    assert route_for("btcusdt@depth20@100ms") is Route.PUBLIC
    assert route_for("btcusdt@rpiDepth@500ms") is Route.PUBLIC
    assert route_for("btcusdt@markPrice@1s") is Route.MARKET
    assert route_for("!markPrice@arr") is Route.MARKET
    assert route_for("btcusdt_perp@continuousKline_1m") is Route.MARKET
    assert route_for("tradingSession") is Route.MARKET

    send, _ = trio.open_memory_channel[StreamFrame](1)
    client = StreamClient(client="c", url="ws://x/stream", frames=send, emit=Recorder())
    with pytest.raises(StreamNameError, match="'btcusdt@trade'"):
        client.subscribe("s", ["ethusdt@trade", "BTCUSDT@trade"])
    for bad in ("", "btc usdt@trade", "a/b", "x" * 201):
        with pytest.raises(StreamNameError):
            client.subscribe("s", [bad])
    assert client.subscriptions() == {}  # all or nothing
    client.subscribe("s", ["!miniTicker@arr", "btcusdt@kline_1m@+08:00", "tradingSession"])


@pytest.mark.parametrize(
    ("stream", "sparse"),
    [
        # Pushed only when a rare event happens.
        ("btcusdt@forceOrder", True),
        ("btcusd_perp@forceOrder", True),
        ("!forceOrder@arr", True),
        ("!contractInfo", True),
        ("btcusdt@blockTrade", True),
        # Pushed on a timer, or whenever the market moves.
        ("btcusdt@markPrice", False),
        ("btcusdt@markPrice@1s", False),
        ("!markPrice@arr", False),
        ("btcusdt@compositeIndex", False),
        ("!assetIndex@arr", False),
        ("btcusdt@assetIndex", False),
        ("tradingSession", False),
        ("btcusdt@aggTrade", False),
        ("btcusdt@trade", False),
        ("btcusdt@bookTicker", False),
        ("!bookTicker", False),
        ("btcusdt@depth@100ms", False),
        ("btcusdt@kline_1m", False),
        ("btcusdt@ticker", False),
        ("!miniTicker@arr", False),
        ("btcusdt@avgPrice", False),
        ("btcusdt@referencePrice", False),
        # Near misses are not sparse: only the exact shapes are.
        ("!forceOrder", False),
        ("!forceOrder@arr@1s", False),
        ("btcusdt@forceOrder@arr", False),
        ("btcusdt@contractInfo", False),
        ("!blockTrade", False),
        ("forceOrder", False),
        ("@forceOrder", False),
    ],
)
def test_sparse_streams_are_the_event_driven_ones(stream: str, sparse: bool) -> None:
    assert is_sparse(stream) is sparse


def test_the_documented_sparse_list_matches_the_classifier() -> None:
    examples = [pattern.replace("<symbol>", "ethusdt") for pattern in SPARSE_STREAMS]
    assert all(is_sparse(name) for name in examples)
    assert len(SPARSE_STREAMS) == 4


@pytest.mark.parametrize(
    ("seconds", "liveness"), [(60, 60.0), (1, 1.0), (0, None)], ids=["default", "1", "off"]
)
def test_a_clients_stream_liveness_becomes_the_settings(
    seconds: int, liveness: float | None
) -> None:
    config = ClientConfig(
        name="usdm", account_type=AccountType.USDT_FUTURES, stream_liveness_secs=seconds
    )
    settings = StreamSettings.for_client(config)
    assert settings.liveness_s == liveness
    assert settings.messages_per_second == 10
    assert StreamSettings.for_client(config, liveness_s=5.0).liveness_s == 5.0  # overrides win
    spot = ClientConfig(name="spot", account_type=AccountType.SPOT)
    assert StreamSettings.for_client(spot).messages_per_second == 5
    assert StreamSettings.for_client(spot).liveness_s == 60.0


def test_too_many_streams_changes_nothing() -> None:
    send, _ = trio.open_memory_channel[StreamFrame](1)
    client = StreamClient(
        client="c",
        url="ws://x/stream",
        frames=send,
        emit=Recorder(),
        settings=StreamSettings(streams_per_connection=2, max_connections=2),
    )
    client.subscribe("s", ["a@trade", "b@trade", "c@trade"])
    with pytest.raises(TooManyStreams, match="room for 1"):
        client.subscribe("t", ["d@trade", "e@trade"])
    assert list(client.subscriptions()) == ["a@trade", "b@trade", "c@trade"]
    client.subscribe("t", ["a@trade", "d@trade"])


def test_a_server_close_code_is_reported_as_a_plain_int_the_journal_can_encode() -> None:
    from trio_websocket import CloseReason, ConnectionClosed
    from wsproto.frame_protocol import CloseReason as WsprotoCode

    from actors.binance import streams, userdata
    from events.codec import default_codec
    from events.connectivity import StreamDisconnected

    closed = ConnectionClosed(CloseReason(WsprotoCode.GOING_AWAY, "bye"))
    for module in (streams, userdata):
        end = module._closed(closed)
        assert type(end.code) is int
        assert end.code == 1001
        event = StreamDisconnected(client="c", connection="x", reason=end.reason, code=end.code)
        assert b'"code":1001' in default_codec().encode_event(event)


async def test_a_successor_dying_in_the_overlap_leaves_no_silent_loss(autojump_clock) -> None:
    """The rotation's new connection dies while the old one still covers the streams; the old
    one then retires on schedule with nothing to take over. Frames are missing from its last
    one until a connection is back: that is reported as a gap, not lost silently."""
    server = FakeServer()
    client, recorder, _frames = fake_client(
        server, rotate_after_s=100, rotation_overlap_s=5, liveness_s=None
    )
    stream = "btcusdt@markPrice"
    async with trio.open_nursery() as nursery:
        await nursery.start(client.run)
        client.subscribe("s", [stream])
        await client.wait_subscribed([stream], timeout_s=10)
        await trio.sleep(100.5)  # the rotation: a second connection, subscribed at once
        _old, new = server.sockets
        assert len(server.live()) == 2  # the overlap
        server.refuse_connections = True
        new.close(1011, "internal error")  # the successor dies in the overlap
        await trio.sleep(30)  # the old one retires; nothing can connect
        assert server.live() == []
        server.refuse_connections = False
        with trio.fail_after(120):
            (gap,) = await recorder.wait_for(lambda e: isinstance(e, StreamGap))
        assert gap.streams == (stream,)
        nursery.cancel_scope.cancel()
