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

from scenarios.venue import payloads
from scenarios.venue.app import reject_handshake
from scenarios.venue.auth import ApiKey, KeyType, Security, authenticate_ws_api
from scenarios.venue.errors import VenueError
from scenarios.venue.http import Request
from scenarios.venue.instruments import Product
from scenarios.venue.limits import weight_for
from scenarios.venue.rest import Call, depth, exchange_info

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
}
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
        while True:
            incoming = await receive()
            if incoming["type"] == "websocket.disconnect":
                return
            text = incoming.get("text")
            if text is None and incoming.get("bytes") is not None:
                text = incoming["bytes"].decode("utf-8", "replace")
            try:
                reply = self.answer(session, text or "")
            except Exception as exc:  # a venue bug: answer like Binance's 500, keep the session
                reply = payloads.ws_api_error(
                    None,
                    status=500,
                    code=-1000,
                    message=f"An unknown error occurred while processing the request. ({exc})",
                )
            await send({"type": "websocket.send", "text": orjson.dumps(reply).decode()})

    def answer(self, session: _Session, text: str) -> dict[str, Any]:
        """One request in, one response out."""
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

    def _limits(self, session: _Session, now: int) -> list[dict[str, Any]]:
        """The request-weight limits with their counts (order limits come with orders)."""
        pool = self.venue.limiter.pool(session.product.value)
        return [
            entry
            for entry in self.venue.limiter.report(pool, session.client, now)
            if entry["rateLimitType"] == "REQUEST_WEIGHT"
        ]

    def _call(self, session: _Session, params: dict[str, Any]) -> Call:
        flat = {name: _text(value) for name, value in params.items()}
        request = Request("GET", "", b"", b"", flat, {}, session.client)
        return Call(self.venue, request, session.product, self.venue.clock.now_ms())

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
            "userDataStream": False,
        }

    def _logout(self, session: _Session, params: dict[str, Any]) -> Any:
        session.key = None
        session.authorized_since = None
        return self._status(session, params)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
