"""Frames per second from a WebSocket stream connection into the journal.

A feed server runs in a child process (so that it does not share the measured process's
CPU): a bare WebSocket server (trio + wsproto) that accepts the stream client's
``SUBSCRIBE``, answers it as Binance does, and then pushes pre-built Spot diff-depth frames
(about 590 bytes each, ten levels a side) as fast as the socket takes them.

The measured path is the production one: :class:`~actors.binance.streams.StreamClient`
reads each frame and hands it to the :class:`~actors.connectivity.ConnectivityActor`'s
bounded channel; the actor publishes what waits there as one batch; the bus encodes each
``stream.frame``, group-commits it to a file journal with ``per_batch`` fsync and delivers it.
The rate counted is records committed to the journal per second, after a short warm-up. Any
connection recycled because the journal could not keep up (a ``stream.gap``) is reported.

Usage: ``python -m benchmarks.stream_journal [--seconds S]``.
"""

from __future__ import annotations

import argparse
import logging
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Ping,
    Request,
    TextMessage,
)

from actors.base import ActorContext
from actors.bus import Bus, Subscription
from actors.clock import LiveClock
from actors.config import AccountType, ClientConfig
from actors.connectivity import NAME, ConnectivityActor
from events.connectivity import StreamConnected, StreamGap, SubscribeStreams
from events.journal import FsyncPolicy, open_file_store
from events.system import SessionStarted

STREAM = "btcusdt@depth@100ms"
#: Distinct frames in the pushed cycle, and frames per socket write.
CYCLE = 2000
CHUNK = 500
WARM_UP_S = 0.5


# --------------------------------------------------------------------------------- feed


def _depth_frames(count: int) -> list[bytes]:
    """``count`` chained Spot diff-depth frames, as Binance sends them."""
    rng = random.Random(7)
    frames = []
    update_id = 1_000_000
    for index in range(count):
        bids = [
            [f"{50000 - level - rng.random():.2f}", f"{rng.random():.5f}"] for level in range(10)
        ]
        asks = [
            [f"{50001 + level + rng.random():.2f}", f"{rng.random():.5f}"] for level in range(10)
        ]
        first = update_id + 1
        update_id += rng.randint(1, 5)
        data = {
            "e": "depthUpdate",
            "E": 1_700_000_000_000 + index * 100,
            "s": "BTCUSDT",
            "U": first,
            "u": update_id,
            "b": bids,
            "a": asks,
        }
        frames.append(orjson.dumps({"stream": STREAM, "data": data}))
    return frames


def _ws_frame(payload: bytes) -> bytes:
    """One unmasked server text frame."""
    size = len(payload)
    if size < 126:
        header = bytes((0x81, size))
    elif size < 65536:
        header = bytes((0x81, 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((0x81, 127)) + size.to_bytes(8, "big")
    return header + payload


async def _serve_client(stream: trio.SocketStream, chunks: list[bytes]) -> None:
    """Handshake, answer control messages, and push frames once subscribed."""
    ws = WSConnection(ConnectionType.SERVER)
    lock = trio.Lock()
    subscribed = trio.Event()
    parts: list[str] = []

    async def send(data: bytes) -> None:
        async with lock:
            await stream.send_all(data)

    async def push() -> None:
        await subscribed.wait()
        while True:
            for chunk in chunks:
                async with lock:
                    await stream.send_all(chunk)

    async def read() -> None:
        while True:
            data = await stream.receive_some(65536)
            if not data:
                return
            ws.receive_data(data)
            for event in ws.events():
                if isinstance(event, Request):
                    await send(ws.send(AcceptConnection()))
                elif isinstance(event, Ping):
                    await send(ws.send(event.response()))
                elif isinstance(event, CloseConnection):
                    return
                elif isinstance(event, TextMessage):
                    parts.append(event.data)
                    if not event.message_finished:
                        continue
                    message = orjson.loads("".join(parts))
                    parts.clear()
                    if message.get("method") == "LIST_SUBSCRIPTIONS":
                        result: object = [STREAM]
                    else:
                        result = None
                    reply = orjson.dumps({"result": result, "id": message.get("id")})
                    await send(ws.send(TextMessage(reply.decode())))
                    if message.get("method") == "SUBSCRIBE":
                        subscribed.set()

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(push)
            await read()
            nursery.cancel_scope.cancel()
    except* (trio.BrokenResourceError, trio.ClosedResourceError):
        pass  # the client went away
    finally:
        await stream.aclose()


async def _serve_feed() -> None:
    frames = [_ws_frame(frame) for frame in _depth_frames(CYCLE)]
    chunks = [b"".join(frames[i : i + CHUNK]) for i in range(0, len(frames), CHUNK)]
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    sys.stdout.write(f"{port}\n")
    sys.stdout.flush()
    await trio.serve_listeners(lambda stream: _serve_client(stream, chunks), listeners)


# ---------------------------------------------------------------------------- measuring


async def _measure(port: int, seconds: float, directory: Path) -> tuple[float, int, int]:
    """(frames/s committed, frames committed, gaps) for ``seconds`` after a warm-up."""
    client = ClientConfig(
        name="spot",
        account_type=AccountType.SPOT,
        base_url_http=f"http://127.0.0.1:{_free_port()}",  # REST is not measured: nobody there
        base_url_ws=f"ws://127.0.0.1:{port}",
        base_url_ws_api=f"ws://127.0.0.1:{port}/ws-api/v3",
    )
    with open_file_store(directory, fsync=FsyncPolicy.PER_BATCH) as store:
        bus = Bus(store, clock=LiveClock())
        actor = ConnectivityActor(
            [client],
            stream_settings={"liveness_s": None, "probe_after_s": None},
            rest_options={"environ": {}},
            user_data=False,
        )
        connected = trio.Event()
        gaps = 0

        async def watch(subscription: Subscription) -> None:
            nonlocal gaps
            async for envelope in subscription:
                if isinstance(envelope.event, StreamConnected):
                    connected.set()
                elif isinstance(envelope.event, StreamGap):
                    gaps += 1

        async with trio.open_nursery() as nursery:
            await nursery.start(bus.run)
            session = await bus.publish(
                [SessionStarted(session_id="bench", config={}, versions={}, pid=0)],
                source="runtime",
                wait=True,
            )
            assert session is not None
            ctx = ActorContext(
                name=NAME, bus=bus, clock=bus.clock, session_seq=session, rng=random.Random(1)
            )
            nursery.start_soon(
                watch, bus.subscribe("bench", tags=(StreamConnected.TAG, StreamGap.TAG))
            )
            await nursery.start(actor.run, ctx)
            await bus.publish(
                [SubscribeStreams(client="spot", subscriber="bench", streams=(STREAM,))],
                source="bench",
            )
            with trio.fail_after(10):
                await connected.wait()
            await trio.sleep(WARM_UP_S)
            first = store.next_seq
            started = time.perf_counter()
            await trio.sleep(seconds)
            last = store.next_seq
            elapsed = time.perf_counter() - started
            nursery.cancel_scope.cancel()
        bus.close()
    committed = last - first
    return committed / elapsed, committed, gaps


def _free_port() -> int:
    """A loopback port that was free a moment ago (nothing listens on it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def frames_to_journal(seconds: float = 5.0) -> float:
    """Frames per second from one stream connection into a ``per_batch``-fsynced journal."""
    return _run(seconds)[0]


def _run(seconds: float) -> tuple[float, int, int]:
    logging.getLogger("tern").setLevel(logging.ERROR)
    root = Path(__file__).resolve().parents[1]
    feed = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.stream_journal", "--serve"],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert feed.stdout is not None
        port = int(feed.stdout.readline())
        with tempfile.TemporaryDirectory(prefix="tern-bench-", dir=".") as tmp:
            return trio.run(_measure, port, seconds, Path(tmp) / "journal")
    finally:
        feed.terminate()
        feed.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stream_journal")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        trio.run(_serve_feed)
        return
    rate, committed, gaps = _run(args.seconds)
    print(
        f"stream -> journal: {rate:,.0f} frames/s ({committed:,} frames in {args.seconds:g} s, "
        f"per_batch fsync; {gaps} gap(s))"
    )


if __name__ == "__main__":
    main()
