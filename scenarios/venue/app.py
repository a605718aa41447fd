"""The venue's ASGI application: one port for REST, market streams and the WS-APIs.

Hypercorn frames HTTP and WebSocket; this module only routes:

* ``/api/v3/...`` (Spot), ``/fapi/...`` (USD-M), ``/dapi/...`` (COIN-M): REST
  (:mod:`scenarios.venue.rest`);
* ``/_venue/...``: the control API for scenarios and tests (:mod:`scenarios.venue.control`);
* WebSocket ``/ws-api/v3``, ``/ws-fapi/v1``, ``/ws-dapi/v1``: the WS-APIs
  (:mod:`scenarios.venue.ws_api`);
* any other WebSocket path: market streams (:mod:`scenarios.venue.streams`).
"""

from __future__ import annotations

import contextlib
import urllib.parse
from typing import TYPE_CHECKING, Any

import orjson
import trio

from scenarios.venue.errors import VenueError
from scenarios.venue.instruments import Product
from scenarios.venue.streams import Connection, StreamPath, parse_stream_path

if TYPE_CHECKING:
    from scenarios.venue.server import Venue

#: How long a closed connection waits for the client's close frame.
CLOSE_HANDSHAKE_S = 5.0
WS_API_PATHS = {"/ws-api/v3": "spot", "/ws-fapi/v1": "usdm", "/ws-dapi/v1": "coinm"}


class VenueApp:
    """ASGI callable bound to one :class:`~scenarios.venue.server.Venue`."""

    def __init__(self, venue: Venue) -> None:
        self.venue = venue

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "http":
            await self.venue.rest.handle(scope, receive, send)
        elif kind == "websocket":
            path = scope["path"]
            if path in WS_API_PATHS:
                await self.venue.ws_api.handle(WS_API_PATHS[path], scope, receive, send)
            else:
                await self._stream(scope, receive, send)
        elif kind == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    async def _stream(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        where = parse_stream_path(scope["path"], scope.get("query_string", b""))
        if where is None:
            # Binance answers an unknown stream path with an HTTP 404 instead of the upgrade.
            await reject_handshake(send, 404)
            return
        if self.venue.faults.refuse_streams:
            await reject_handshake(send, 503)
            return
        user_keys = user_stream_keys(where, scope.get("query_string", b""))
        if any(self.venue.user_data.valid_key(where.product, key) is None for key, _ in user_keys):
            await reject_handshake(
                send, 400, {"code": -1125, "msg": "This listenKey does not exist."}
            )
            return
        await send({"type": "websocket.accept"})
        send_channel, receive_channel = trio.open_memory_channel[bytes](self.venue.send_buffer)
        hub = self.venue.hub
        connection = Connection(hub, where, send_channel)
        connection.subscribe(where.streams)
        hub.attach(connection)
        user_streams = []
        try:
            # The keys were valid a moment ago; one that expired during the handshake
            # leaves the connection open and silent, as Binance's would be.
            with contextlib.suppress(VenueError):
                user_streams = self.venue.user_data.attach_stream(
                    connection, user_keys, combined=where.combined
                )
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_expire, connection, self.venue.max_connection_s)
                nursery.start_soon(
                    _pump,
                    send,
                    receive_channel,
                    connection,
                    nursery.cancel_scope,
                    self.venue.slow_client_s,
                )
                while True:
                    incoming = await receive()
                    if incoming["type"] == "websocket.disconnect":
                        break
                    if connection.closed_reason is not None:
                        continue  # closing: wait for the client's side of the handshake
                    if not connection.count_incoming():
                        connection.close(1008, "too many requests")
                        continue
                    text = incoming.get("text")
                    if text is None and incoming.get("bytes") is not None:
                        text = incoming["bytes"].decode("utf-8", "replace")
                    connection.handle_control(text or "")
                nursery.cancel_scope.cancel()
        finally:
            hub.detach(connection)
            self.venue.user_data.detach(user_streams)


def user_stream_keys(
    where: StreamPath, query_string: bytes
) -> list[tuple[str, frozenset[str] | None]]:
    """The listen keys a stream connection follows, each with its ``events`` filter.

    USD-M user streams live on the ``/private`` route (``?listenKey=K[&events=A/B]``,
    repeated on ``/private/stream``); COIN-M's at ``/ws/<listenKey>``. The legacy USD-M
    ``/ws/<listenKey>`` connects but follows nothing, as on Binance since 2026-04-23.
    """
    if where.product is Product.USDM:
        if where.route != "private":
            return []
        pairs = urllib.parse.parse_qsl(query_string.decode("utf-8", "replace"))
        keys: list[tuple[str, frozenset[str] | None]] = []
        for name, value in pairs:
            if name == "listenKey":
                keys.append((value, None))
            elif name == "events" and keys:
                keys[-1] = (keys[-1][0], frozenset(e for e in value.split("/") if e))
        # A key named twice is followed once (its last events filter wins).
        return list({key: (key, events) for key, events in keys}.values())
    if where.product is Product.COINM and where.listen_key is not None:
        return [(where.listen_key, None)]
    return []


async def _expire(connection: Connection, lifetime_s: float) -> None:
    """Binance disconnects every stream connection after 24 hours."""
    await trio.sleep(lifetime_s)
    connection.close(1000, "connection lifetime expired")


async def reject_handshake(send: Any, status: int, body: dict[str, Any] | None = None) -> None:
    """Answer a WebSocket upgrade with a plain HTTP error, as Binance does."""
    await send(
        {
            "type": "websocket.http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json;charset=UTF-8")],
        }
    )
    await send({"type": "websocket.http.response.body", "body": orjson.dumps(body or {})})


async def _pump(
    send: Any,
    messages: trio.MemoryReceiveChannel[bytes],
    connection: Connection,
    scope: trio.CancelScope,
    slow_client_s: float,
) -> None:
    """Forward queued messages; once the connection is closed send the close frame, then
    give the client a bounded time to answer it before dropping the connection. A client
    whose socket accepts nothing for ``slow_client_s`` is dropped at once."""
    async for message in messages:
        with trio.move_on_after(slow_client_s) as stuck:
            await send({"type": "websocket.send", "text": message.decode()})
        if stuck.cancelled_caught:
            connection.close(1008, "client too slow")
            scope.cancel()
            return
    code, reason = connection.closed_reason or (1000, "")
    with trio.move_on_after(slow_client_s):
        await send({"type": "websocket.close", "code": code, "reason": reason})
    await trio.sleep(CLOSE_HANDSHAKE_S)
    scope.cancel()
