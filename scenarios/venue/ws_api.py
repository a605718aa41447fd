"""The WebSocket APIs (``/ws-api/v3``, ``/ws-fapi/v1``, ``/ws-dapi/v1``): part 1 methods.

Each request ``{"id", "method", "params"}`` gets ``{"id", "status", "result"}`` or
``{"id", "status", "error": {"code", "msg"}}``, always with ``rateLimits`` (unless the
request or the URL sets ``returnRateLimits=false``). Weights are charged against the same
pools as REST. Methods: ``ping``, ``time``, ``exchangeInfo``, ``depth``, ``session.logon``,
``session.status``, ``session.logout``; trading methods come with part 2.

``session.logon`` authenticates the connection with an Ed25519 key (Binance requires
Ed25519 for it); later requests may then omit ``apiKey`` and ``signature``.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson
import trio

from scenarios.venue import payloads
from scenarios.venue.app import reject_handshake
from scenarios.venue.auth import (
    ApiKey,
    KeyType,
    Security,
    authenticate_ws_api,
    check_timestamp,
)
from scenarios.venue.errors import VenueError
from scenarios.venue.http import Request
from scenarios.venue.instruments import Product
from scenarios.venue.limits import weight_for
from scenarios.venue.rest import Call, depth, exchange_info
from scenarios.venue.userdata import Subscriber

if TYPE_CHECKING:
    from scenarios.venue.server import Venue

WEIGHTS = {
    "ping": 1,
    "time": 1,
    "exchangeInfo": 20,
    "depth": 5,
    "session.logon": 2,
    "session.status": 2,
    "session.logout": 2,
    "session.subscriptions": 2,
    "userDataStream.subscribe": 2,
    "userDataStream.subscribe.signature": 2,
    "userDataStream.unsubscribe": 2,
    "userDataStream.start": 1,
    "userDataStream.ping": 1,
    "userDataStream.stop": 1,
}
#: Spot answers these when a connection subscribes an account twice, or unsubscribes none.
SUBSCRIPTION_ACTIVE = (-2035, "User Data Stream subscription already active.")
SUBSCRIPTION_INACTIVE = (-2036, "User Data Stream subscription not active.")
#: What ``session.logon`` answers for a key that is not Ed25519 (Binance requires Ed25519).
LOGON_NEEDS_ED25519 = {
    Product.SPOT: (-1022, "Signature for this request is not valid."),
    Product.USDM: (-4056, "HMAC_SHA256 API key is not supported."),
    Product.COINM: (-4056, "HMAC_SHA256 API key is not supported."),
}
_DEPTH_PATHS = {
    Product.SPOT: "/api/v3/depth",
    Product.USDM: "/fapi/v1/depth",
    Product.COINM: "/dapi/v1/depth",
}
CONNECTION_WEIGHT = {Product.SPOT: 2, Product.USDM: 5, Product.COINM: 5}


class _Session:
    def __init__(self, product: Product, client: str, return_rate_limits: bool) -> None:
        self.product = product
        self.client = client
        self.return_rate_limits = return_rate_limits
        self.key: ApiKey | None = None
        self.authorized_since: int | None = None
        self.connected_since = 0
        self.outgoing: trio.MemorySendChannel[bytes] | None = None
        #: User-data subscriptions by id, and whether each came from ``session.logon``.
        self.subscriptions: dict[int, Subscriber] = {}
        self.logon_subscriptions: set[int] = set()
        self.next_subscription_id = 0
        self.after_reply: list[dict[str, Any]] = []
        #: Cancelled to close the connection (a client too slow to take what it is sent).
        self.scope: trio.CancelScope | None = None
        self.close_reason: tuple[int, str] | None = None

    def push(self, message: dict[str, Any]) -> bool:
        """Queue one message for the client; False once the connection is gone or stuck.

        A client whose queue is full is too slow: its connection is closed (1008), as a
        market-stream connection would be, rather than its events silently dropped.
        """
        if self.outgoing is None:
            return False
        try:
            self.outgoing.send_nowait(orjson.dumps(message))
        except trio.WouldBlock:
            self.close(1008, "client too slow")
            return False
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return False
        return True

    def close(self, code: int, reason: str) -> None:
        if self.close_reason is None:
            self.close_reason = (code, reason)
        if self.scope is not None:
            self.scope.cancel()


async def _forward(
    pending: trio.MemoryReceiveChannel[bytes], send: Any, session: _Session, slow_s: float
) -> None:
    """Send queued messages; a client that takes nothing for ``slow_s`` is disconnected."""
    async for message in pending:
        with trio.move_on_after(slow_s) as stuck:
            await send({"type": "websocket.send", "text": message.decode()})
        if stuck.cancelled_caught:
            session.close(1008, "client too slow")
            return


class WsApiServer:
    def __init__(self, venue: Venue) -> None:
        self.venue = venue
        self.methods: dict[str, Callable[[_Session, dict[str, Any]], Any]] = {
            "ping": lambda session, params: {},
            "time": lambda session, params: {"serverTime": self.venue.clock.now_ms()},
            "exchangeInfo": self._exchange_info,
            "depth": self._depth,
            "session.logon": self._logon,
            "session.status": self._status,
            "session.logout": self._logout,
            "session.subscriptions": self._subscriptions,
            "userDataStream.subscribe": self._subscribe,
            "userDataStream.subscribe.signature": self._subscribe_signature,
            "userDataStream.unsubscribe": self._unsubscribe,
            "userDataStream.start": self._listen_key_start,
            "userDataStream.ping": self._listen_key_ping,
            "userDataStream.stop": self._listen_key_stop,
        }

    async def handle(
        self, product_name: str, scope: dict[str, Any], receive: Any, send: Any
    ) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        product = Product(product_name)
        query = urllib.parse.parse_qs(scope.get("query_string", b"").decode("utf-8", "replace"))
        client = (scope.get("client") or ("unknown", 0))[0]
        session = _Session(product, client, query.get("returnRateLimits", ["true"])[0] != "false")
        session.connected_since = self.venue.clock.now_ms()
        try:
            self.venue.limiter.charge(
                product.value, client, CONNECTION_WEIGHT[product], 0, self.venue.clock.now_ms()
            )
        except VenueError as error:
            await reject_handshake(send, error.http_status, error.body())
            return
        await send({"type": "websocket.accept"})
        outgoing, pending = trio.open_memory_channel[bytes](self.venue.send_buffer)
        session.outgoing = outgoing
        try:
            async with trio.open_nursery() as nursery:
                session.scope = nursery.cancel_scope
                nursery.start_soon(_forward, pending, send, session, self.venue.slow_client_s)
                while True:
                    incoming = await receive()
                    if incoming["type"] == "websocket.disconnect":
                        break
                    text = incoming.get("text")
                    if text is None and incoming.get("bytes") is not None:
                        text = incoming["bytes"].decode("utf-8", "replace")
                    reply = self.answer(session, text or "")
                    with trio.move_on_after(self.venue.slow_client_s) as stuck:
                        await outgoing.send(orjson.dumps(reply))
                        # Events a request caused (eventStreamTerminated after an
                        # unsubscribe) follow its response.
                        while session.after_reply:
                            await outgoing.send(orjson.dumps(session.after_reply.pop(0)))
                    if stuck.cancelled_caught:
                        session.close(1008, "client too slow")
                nursery.cancel_scope.cancel()
        finally:
            session.outgoing = None
            for subscriber in session.subscriptions.values():
                self.venue.user_data.remove(subscriber)
            session.subscriptions.clear()
            if session.close_reason is not None:
                code, reason = session.close_reason
                with trio.move_on_after(1) as timeout:
                    timeout.shield = True
                    await send({"type": "websocket.close", "code": code, "reason": reason})

    def answer(self, session: _Session, text: str) -> dict[str, Any]:
        """One request in, one response out; a venue bug is Binance's 500, with the id."""
        try:
            return self._answer(session, text)
        except Exception as exc:
            request_id = None
            try:
                request = orjson.loads(text)
                if isinstance(request, dict) and isinstance(request.get("id"), str | int):
                    request_id = request["id"]
            except orjson.JSONDecodeError:
                pass
            return payloads.ws_api_error(
                request_id,
                status=500,
                code=-1000,
                message=(
                    "An unknown error occurred while processing the request. "
                    f"({type(exc).__name__})"
                ),
            )

    def _answer(self, session: _Session, text: str) -> dict[str, Any]:
        venue = self.venue
        now = venue.clock.now_ms()
        try:
            request = orjson.loads(text)
        except orjson.JSONDecodeError:
            request = None
        if not isinstance(request, dict):
            return payloads.ws_api_error(
                None, status=400, code=-1102, message="Invalid JSON request."
            )
        request_id = request.get("id")
        if not (request_id is None or isinstance(request_id, str | int)) or isinstance(
            request_id, bool
        ):
            return payloads.ws_api_error(
                None, status=400, code=-1102, message="Invalid JSON request."
            )
        method = request.get("method")
        params = request.get("params", {})
        if not isinstance(params, dict):
            return payloads.ws_api_error(
                request_id,
                status=400,
                code=-1130,
                message="Data sent for parameter 'params' is not valid.",
            )
        wants_limits = (
            session.return_rate_limits and params.get("returnRateLimits", True) is not False
        )
        try:
            if isinstance(method, str) and "/" in method:
                method = method.split("/", 1)[1]  # a version prefix such as "v3/ping"
            handler = self.methods.get(method) if isinstance(method, str) else None
            engine_method = (
                self.venue.engines[session.product].ws_api_methods().get(method)
                if handler is None and isinstance(method, str)
                else None
            )
            if engine_method is not None:
                venue.limiter.charge(
                    session.product.value, session.client, engine_method.weight, 0, now
                )
                key = self._authenticate(session, engine_method.security, params, now)
                if engine_method.orders:
                    venue.limiter.charge(
                        session.product.value,
                        session.client,
                        0,
                        engine_method.orders,
                        now,
                        account=None if key is None else key.api_key,
                        requests=0,
                    )
                # Order-placing methods report the account's ORDERS counts too.
                account = None if key is None or not engine_method.orders else key.api_key
                try:
                    result = engine_method.handler(self._call(session, params, key))
                except VenueError as error:
                    return payloads.ws_api_error(
                        request_id,
                        status=error.http_status,
                        code=error.code,
                        message=error.msg,
                        data=error.data,
                        rate_limits=self._limits(session, now, orders_of=account)
                        if wants_limits
                        else None,
                    )
                return payloads.ws_api_response(
                    request_id,
                    result,
                    rate_limits=self._limits(session, now, orders_of=account)
                    if wants_limits
                    else None,
                )
            if handler is None:
                raise VenueError.unsupported_operation(product=session.product.value)
            weight = WEIGHTS.get(method, 1)
            if method == "depth":
                weight = weight_for(
                    session.product.value,
                    "GET",
                    _DEPTH_PATHS[session.product],
                    {name: _text(value) for name, value in params.items()},
                )
            venue.limiter.charge(session.product.value, session.client, weight, 0, now)
            result = handler(session, params)
        except VenueError as error:
            return payloads.ws_api_error(
                request_id,
                status=error.http_status,
                code=error.code,
                message=error.msg,
                data=error.data,
                rate_limits=self._limits(session, now) if wants_limits else None,
            )
        return payloads.ws_api_response(
            request_id, result, rate_limits=self._limits(session, now) if wants_limits else None
        )

    def _limits(
        self, session: _Session, now: int, *, orders_of: str | None = None
    ) -> list[dict[str, Any]]:
        """The request-weight limits with their counts, plus the ORDERS limits with the
        account's counts for methods that place orders (as Binance reports them)."""
        pool = self.venue.limiter.pool(session.product.value)
        return [
            entry
            for entry in self.venue.limiter.report(pool, session.client, now, account=orders_of)
            if entry["rateLimitType"] == "REQUEST_WEIGHT"
            or (orders_of is not None and entry["rateLimitType"] == "ORDERS")
        ]

    def _call(self, session: _Session, params: dict[str, Any], key: ApiKey | None = None) -> Call:
        flat = {name: _text(value) for name, value in params.items()}
        request = Request("GET", "", b"", b"", flat, {}, session.client)
        return Call(self.venue, request, session.product, self.venue.clock.now_ms(), key)

    def _authenticate(
        self, session: _Session, security: Security, params: dict[str, Any], now: int
    ) -> ApiKey | None:
        """A request's key: its own ``apiKey``/``signature``, else the logged-on key.

        A logged-on session still sends ``timestamp`` on SIGNED methods (Binance checks it);
        only the signature is waived.
        """
        if security is Security.NONE:
            return None
        if "apiKey" in params or session.key is None:
            return authenticate_ws_api(
                self.venue.keys, security, params, now, session.product.value
            )
        if security.signed:
            check_timestamp(
                None if params.get("timestamp") is None else _text(params["timestamp"]),
                None if params.get("recvWindow") is None else _text(params["recvWindow"]),
                now,
                product=session.product.value,
            )
        return session.key

    def _exchange_info(self, session: _Session, params: dict[str, Any]) -> Any:
        if isinstance(params.get("symbols"), list):
            params = {**params, "symbols": orjson.dumps(params["symbols"]).decode()}
        return exchange_info(self._call(session, params))

    def _depth(self, session: _Session, params: dict[str, Any]) -> Any:
        return depth(self._call(session, params))

    def _logon(self, session: _Session, params: dict[str, Any]) -> Any:
        now = self.venue.clock.now_ms()
        key = authenticate_ws_api(
            self.venue.keys, Security.USER_DATA, params, now, session.product.value
        )
        assert key is not None
        if key.key_type is not KeyType.ED25519:
            code, message = LOGON_NEEDS_ED25519[session.product]
            raise VenueError(code, message)
        session.key = key
        session.authorized_since = now
        return self._status(session, params)

    def _status(self, session: _Session, params: dict[str, Any]) -> Any:
        now = self.venue.clock.now_ms()
        return {
            "apiKey": session.key.api_key if session.key else None,
            "authorizedSince": session.authorized_since,
            "connectedSince": session.connected_since,
            "returnRateLimits": session.return_rate_limits,
            "serverTime": now,
            "userDataStream": bool(session.subscriptions),
        }

    def _logout(self, session: _Session, params: dict[str, Any]) -> Any:
        # Logging out ends the subscription made on the logged-on key, not the
        # ``.signature`` ones.
        for subscription_id in sorted(session.logon_subscriptions):
            self._end_subscription(session, subscription_id)
        session.key = None
        session.authorized_since = None
        return self._status(session, params)

    # --- user data (Spot: subscriptions on this connection; futures: listen keys) ----------

    def _spot_only(self, session: _Session) -> None:
        if session.product is not Product.SPOT:
            raise VenueError.unsupported_operation(product=session.product.value)

    def _futures_only(self, session: _Session) -> None:
        if session.product is Product.SPOT:
            raise VenueError.unsupported_operation(product=session.product.value)

    def _start_subscription(self, session: _Session, key: ApiKey, *, logon: bool) -> Any:
        account = key.api_key
        if any(sub.account == account for sub in session.subscriptions.values()):
            raise VenueError(*SUBSCRIPTION_ACTIVE)
        subscription_id = session.next_subscription_id
        session.next_subscription_id += 1

        def deliver(event: dict[str, Any]) -> bool:
            return session.push({"subscriptionId": subscription_id, "event": event})

        subscriber = self.venue.user_data.add(
            Subscriber(
                session.product,
                account,
                deliver,
                terminate=lambda: self._end_subscription(
                    session, subscription_id, in_request=False
                ),
            )
        )
        session.subscriptions[subscription_id] = subscriber
        if logon:
            session.logon_subscriptions.add(subscription_id)
        return {"subscriptionId": subscription_id}

    def _end_subscription(
        self, session: _Session, subscription_id: int, *, in_request: bool = True
    ) -> None:
        subscriber = session.subscriptions.pop(subscription_id, None)
        if subscriber is None:
            return
        session.logon_subscriptions.discard(subscription_id)
        self.venue.user_data.remove(subscriber)
        terminated = {
            "subscriptionId": subscription_id,
            "event": {"e": "eventStreamTerminated", "E": self.venue.clock.now_ms()},
        }
        if in_request:
            session.after_reply.append(terminated)
        else:
            session.push(terminated)

    def _subscribe(self, session: _Session, params: dict[str, Any]) -> Any:
        """``userDataStream.subscribe``: the logged-on account's events on this connection."""
        self._spot_only(session)
        if session.key is None:
            raise VenueError(-1002, "You are not authorized to execute this request.")
        return self._start_subscription(session, session.key, logon=True)

    def _subscribe_signature(self, session: _Session, params: dict[str, Any]) -> Any:
        """``userDataStream.subscribe.signature``: any key type, signed per request."""
        self._spot_only(session)
        key = authenticate_ws_api(
            self.venue.keys,
            Security.USER_DATA,
            params,
            self.venue.clock.now_ms(),
            session.product.value,
        )
        assert key is not None
        return self._start_subscription(session, key, logon=False)

    def _unsubscribe(self, session: _Session, params: dict[str, Any]) -> Any:
        """``userDataStream.unsubscribe``: one subscription, or all of them without an id."""
        self._spot_only(session)
        wanted = params.get("subscriptionId")
        if wanted is None:
            if not session.subscriptions:
                raise VenueError(*SUBSCRIPTION_INACTIVE)
            for subscription_id in sorted(session.subscriptions):
                self._end_subscription(session, subscription_id)
            return {}
        if isinstance(wanted, bool) or not isinstance(wanted, int | str):
            raise VenueError.invalid_parameter("subscriptionId")
        try:
            subscription_id = int(wanted)
        except ValueError:
            raise VenueError.invalid_parameter("subscriptionId") from None
        if subscription_id not in session.subscriptions:
            raise VenueError(*SUBSCRIPTION_INACTIVE)
        self._end_subscription(session, subscription_id)
        return {}

    def _subscriptions(self, session: _Session, params: dict[str, Any]) -> Any:
        self._spot_only(session)
        return [{"subscriptionId": subscription_id} for subscription_id in session.subscriptions]

    def _listen_key_account(self, session: _Session, params: dict[str, Any]) -> str:
        self._futures_only(session)
        key = self._authenticate(session, Security.USER_STREAM, params, self.venue.clock.now_ms())
        assert key is not None
        return key.api_key

    def _listen_key_start(self, session: _Session, params: dict[str, Any]) -> Any:
        account = self._listen_key_account(session, params)
        now = self.venue.clock.now_ms()
        return {"listenKey": self.venue.user_data.start(session.product, account, now)}

    def _listen_key_ping(self, session: _Session, params: dict[str, Any]) -> Any:
        account = self._listen_key_account(session, params)
        now = self.venue.clock.now_ms()
        return {"listenKey": self.venue.user_data.keepalive(session.product, account, now)}

    def _listen_key_stop(self, session: _Session, params: dict[str, Any]) -> Any:
        account = self._listen_key_account(session, params)
        self.venue.user_data.stop(session.product, account)
        return {}


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
