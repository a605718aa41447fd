"""Market-stream connections: subscriptions, routing, limits, and delivery.

A connection is opened on one of Binance's stream URLs (see :func:`parse_stream_path`). It
starts with the streams named in the URL and changes them with SUBSCRIBE / UNSUBSCRIBE; it
answers LIST_SUBSCRIPTIONS, SET_PROPERTY and GET_PROPERTY like Binance. Events reach it
through :meth:`StreamHub.publish`; on a combined connection each event is wrapped as
``{"stream": name, "data": payload}``.

Limits as Binance enforces them: at most 1024 streams per connection, and at most 5 (Spot) or
10 (futures) incoming messages per second; going over the message limit closes the
connection. A client that does not keep up with its stream is disconnected rather than
buffered without bound.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable
from typing import Any

import attrs
import orjson
import trio

from scenarios.venue.instruments import Product

MAX_STREAMS_PER_CONNECTION = 1024
INCOMING_PER_SECOND = {Product.SPOT: 5, Product.USDM: 10, Product.COINM: 10}
#: Outgoing messages buffered per connection before a slow client is disconnected.
SEND_BUFFER = 10_000

#: USD-M routes and the stream kinds each carries (binance-protocol.md section 7.2).
PUBLIC_KINDS = frozenset({"bookTicker", "depth", "rpiDepth"})
MARKET_KINDS = frozenset(
    {
        "aggTrade",
        "markPrice",
        "kline",
        "continuousKline",
        "miniTicker",
        "ticker",
        "forceOrder",
        "compositeIndex",
        "contractInfo",
        "assetIndex",
        "tradingSession",
    }
)

_STREAM = re.compile(r"^(?:[a-z0-9_]+|!)[a-zA-Z0-9_@!.+:-]*$")


#: Stream kinds the venue produces, per product. A subscription to anything else is refused
#: rather than accepted and left silent.
SUPPORTED_KINDS = {
    Product.SPOT: frozenset(
        {"depth", "trade", "aggTrade", "bookTicker", "kline", "ticker", "miniTicker"}
    ),
    Product.USDM: frozenset(
        {
            "depth",
            "aggTrade",
            "bookTicker",
            "kline",
            "ticker",
            "miniTicker",
            "markPrice",
            "forceOrder",
        }
    ),
}
SUPPORTED_KINDS[Product.COINM] = SUPPORTED_KINDS[Product.USDM]
SUPPORTED_ALL_MARKET = {
    Product.SPOT: frozenset({"!miniTicker@arr"}),
    Product.USDM: frozenset(
        {"!miniTicker@arr", "!ticker@arr", "!markPrice@arr", "!markPrice@arr@1s", "!forceOrder@arr"}
    ),
}
SUPPORTED_ALL_MARKET[Product.COINM] = SUPPORTED_ALL_MARKET[Product.USDM]


def supported(product: Product, name: str) -> bool:
    """Whether the venue produces the stream ``name`` on ``product``."""
    if name.startswith("!"):
        return name in SUPPORTED_ALL_MARKET[product]
    return "@" in name and stream_kind(name) in SUPPORTED_KINDS[product]


def stream_kind(name: str) -> str:
    """``btcusdt@depth5@100ms`` -> ``depth``; ``!markPrice@arr`` -> ``markPrice``."""
    part = name.lstrip("!").split("@", 2)
    body = part[1] if len(part) > 1 and not name.startswith("!") else part[0]
    body = re.sub(r"\d+$", "", body)
    if body.startswith("kline_"):
        return "kline"
    if body.startswith("continuousKline_"):
        return "continuousKline"
    return body


@attrs.frozen
class StreamPath:
    """Where a stream connection was opened."""

    product: Product
    route: str | None  # "public" | "market" | "private" | None (unrouted)
    combined: bool
    streams: tuple[str, ...]
    listen_key: str | None = None


def parse_stream_path(path: str, query_string: bytes) -> StreamPath | None:
    """Map a WebSocket path onto a product, route and initial streams; None if unknown.

    Spot lives at the root (``/ws``, ``/ws/<s>``, ``/stream?streams=``), USD-M under
    ``/usdm`` with the routes ``/public``, ``/market`` and ``/private`` (and the legacy
    unrouted forms), COIN-M under ``/coinm`` (unrouted, as Binance has no route split there).
    """
    query = urllib.parse.parse_qs(query_string.decode("utf-8", "replace"))
    product = Product.SPOT
    rest = path
    for prefix, candidate in (("/usdm", Product.USDM), ("/coinm", Product.COINM)):
        if rest == prefix or rest.startswith(prefix + "/"):
            product = candidate
            rest = rest[len(prefix) :]
            break
    route = None
    if product is Product.USDM:
        for name in ("public", "market", "private"):
            if rest == f"/{name}" or rest.startswith(f"/{name}/"):
                route = name
                rest = rest[len(name) + 1 :]
                break
    listen_key = (query.get("listenKey") or [None])[0]
    if rest in ("/ws", "/ws/"):
        return StreamPath(product, route, False, (), listen_key)
    if rest.startswith("/ws/"):
        names = tuple(n for n in rest[4:].split("/") if n)
        if len(names) == 1 and product is not Product.SPOT and _looks_like_listen_key(names[0]):
            return StreamPath(product, route, False, (), names[0])
        return StreamPath(product, route, False, names, listen_key)
    if rest == "/stream":
        names = tuple(n for n in (query.get("streams") or [""])[0].split("/") if n)
        return StreamPath(product, route, True, names, listen_key)
    return None


def _looks_like_listen_key(name: str) -> bool:
    return "@" not in name and not name.startswith("!") and len(name) >= 32


class Connection:
    """One stream connection's state."""

    def __init__(self, hub: StreamHub, where: StreamPath, send_channel: trio.MemorySendChannel):
        self.hub = hub
        self.product = where.product
        self.route = where.route
        self.combined = where.combined
        self.subscriptions: list[str] = []
        self._send = send_channel
        self.closed_reason: tuple[int, str] | None = None
        self._window_start = 0.0
        self._window_count = 0

    def receives(self, stream: str) -> bool:
        """Whether this connection's route carries ``stream`` (USD-M routing rules)."""
        if self.product is not Product.USDM:
            return True
        kind = stream_kind(stream)
        if self.route is None or self.route == "public":
            return kind in PUBLIC_KINDS
        if self.route == "market":
            return kind in MARKET_KINDS
        return False

    def deliver(self, message: bytes) -> bool:
        """Queue one encoded event; False when it was not queued (closing, or too slow)."""
        if self.closed_reason is not None:
            return False
        try:
            self._send.send_nowait(message)
        except trio.WouldBlock:
            self.close(1008, "client too slow")
            return False
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return False
        return True

    def reply(self, message: dict[str, Any]) -> None:
        try:
            self._send.send_nowait(orjson.dumps(message))
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            self.close(1008, "client too slow")

    def close(self, code: int, reason: str) -> None:
        """Stop delivering and ask the socket to close. The connection leaves the hub at
        once, so a client that stopped reading costs nothing more than what it had queued
        (hypercorn shields its socket writes, so the socket itself goes when the write
        unblocks or fails)."""
        if self.closed_reason is None:
            self.closed_reason = (code, reason)
            self._send.close()
            self.hub.detach(self)

    def count_incoming(self) -> bool:
        """Count an incoming message; False when the per-second limit is exceeded."""
        now = trio.current_time()
        if now - self._window_start >= 1.0:
            self._window_start = now
            self._window_count = 0
        self._window_count += 1
        return self._window_count <= INCOMING_PER_SECOND[self.product]

    def subscribe(self, names: Iterable[str]) -> None:
        for name in names:
            if name not in self.subscriptions:
                self.subscriptions.append(name)
                if self.receives(name):
                    self.hub.add_subscriber(self, name)

    def unsubscribe(self, names: Iterable[str]) -> None:
        for name in names:
            if name in self.subscriptions:
                self.subscriptions.remove(name)
                self.hub.remove_subscriber(self, name)

    def handle_control(self, text: str) -> None:
        """Answer one JSON control message as Binance does."""
        try:
            message = orjson.loads(text)
        except orjson.JSONDecodeError:
            self.reply(
                {"error": {"code": 3, "msg": "Invalid JSON: expected value at line 1 column 1"}}
            )
            return
        if not isinstance(message, dict):
            self.reply({"error": {"code": 3, "msg": "Invalid JSON: expected object"}})
            return
        request_id = message.get("id")
        if not _valid_id(request_id, self.product):
            self.reply(_error(1, "Invalid value type: expected u64 or alphanumeric string", None))
            return
        method = message.get("method")
        params = message.get("params", [])
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
                self.reply(_error(2, "Invalid request: invalid params", request_id))
                return
            bad = next(
                (
                    p
                    for p in params
                    if len(p) > 200
                    or not _STREAM.match(p)
                    or (method == "SUBSCRIBE" and not supported(self.product, p))
                ),
                None,
            )
            if bad is not None:
                self.reply(_error(2, f"Invalid request: invalid stream name {bad}", request_id))
                return
            if method == "SUBSCRIBE":
                if len(set(self.subscriptions) | set(params)) > MAX_STREAMS_PER_CONNECTION:
                    self.reply(_error(2, "Invalid request: too many streams", request_id))
                    return
                self.subscribe(params)
            else:
                self.unsubscribe(params)
            self.reply({"result": None, "id": request_id})
        elif method == "LIST_SUBSCRIPTIONS":
            self.reply({"result": list(self.subscriptions), "id": request_id})
        elif method == "SET_PROPERTY":
            if not isinstance(params, list) or len(params) != 2:
                self.reply(_error(2, "Invalid request: invalid params", request_id))
            elif params[0] != "combined":
                self.reply(_error(0, "Unknown property", request_id))
            elif not isinstance(params[1], bool):
                self.reply(_error(1, "Invalid value type: expected Boolean", request_id))
            else:
                self.combined = params[1]
                self.reply({"result": None, "id": request_id})
        elif method == "GET_PROPERTY":
            if not isinstance(params, list) or len(params) != 1:
                self.reply(_error(2, "Invalid request: invalid params", request_id))
            elif params[0] != "combined":
                self.reply(_error(0, "Unknown property", request_id))
            else:
                self.reply({"result": self.combined, "id": request_id})
        else:
            self.reply(_error(2, "Invalid request: unknown method", request_id))


def _valid_id(request_id: Any, product: Product) -> bool:
    if request_id is None:
        return True
    if isinstance(request_id, bool):
        return False
    if isinstance(request_id, int):
        if product is Product.SPOT:
            return -(2**63) <= request_id < 2**63
        return 0 <= request_id < 2**64
    if isinstance(request_id, str) and product is Product.SPOT:
        return len(request_id) <= 36 and request_id.isalnum()
    return False


def _error(code: int, msg: str, request_id: Any) -> dict[str, Any]:
    return {"error": {"code": code, "msg": msg}, "id": request_id}


class StreamHub:
    """Every open stream connection, indexed by the streams they receive."""

    def __init__(self) -> None:
        self.connections: set[Connection] = set()
        self._subscribers: dict[tuple[Product, str], list[Connection]] = {}
        self.messages_sent = 0

    def add_subscriber(self, connection: Connection, stream: str) -> None:
        self._subscribers.setdefault((connection.product, stream), []).append(connection)

    def remove_subscriber(self, connection: Connection, stream: str) -> None:
        key = (connection.product, stream)
        subscribers = self._subscribers.get(key)
        if subscribers is not None and connection in subscribers:
            subscribers.remove(connection)
            if not subscribers:
                del self._subscribers[key]

    def wanted(self, product: Product, stream: str) -> bool:
        """Whether any connection receives ``stream`` (producers skip work otherwise)."""
        return (product, stream) in self._subscribers

    def streams(self) -> list[tuple[Product, str]]:
        return sorted(self._subscribers, key=lambda key: (key[0].value, key[1]))

    def publish(self, product: Product, stream: str, payload: Any) -> None:
        """Send ``payload`` to every connection of ``product`` that receives ``stream``.

        The event is encoded once for raw connections and once for combined ones,
        whatever the number of subscribers.
        """
        subscribers = self._subscribers.get((product, stream))
        if not subscribers:
            return
        raw = combined = b""
        for connection in list(subscribers):
            if connection.combined:
                if not combined:
                    combined = orjson.dumps({"stream": stream, "data": payload})
                self.messages_sent += connection.deliver(combined)
            else:
                if not raw:
                    raw = orjson.dumps(payload)
                self.messages_sent += connection.deliver(raw)

    def attach(self, connection: Connection) -> None:
        self.connections.add(connection)

    def detach(self, connection: Connection) -> None:
        self.connections.discard(connection)
        connection.unsubscribe(list(connection.subscriptions))

    def close_all(self, code: int = 1001, reason: str = "server closing") -> int:
        count = 0
        for connection in list(self.connections):
            connection.close(code, reason)
            count += 1
        return count
