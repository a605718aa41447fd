"""The control API under ``/_venue/``: not Binance, a handle for scenarios and tests.

Every call takes and returns JSON. ``docs/venue.md`` shows each with an example.

=======  ==========================  ======================================================
method   path                        effect
=======  ==========================  ======================================================
GET      /_venue/state               venue time, connections, subscriptions, request count
GET      /_venue/book                the venue's own book: ``product``, ``symbol``, ``depth``
POST     /_venue/price               walk the market to ``price``
POST     /_venue/activity            pause (``{"paused": true}``) or resume market activity
POST     /_venue/liquidity           add ``quantity`` at ``price`` on ``side`` (BID / ASK)
DELETE   /_venue/liquidity           remove ``quantity`` (or the level) at ``price``
POST     /_venue/force-order         publish a liquidation (``forceOrder``) of a futures symbol
POST     /_venue/faults/endpoint     delay / stall / fail requests to ``path``
POST     /_venue/faults/depth        skip / repeat / reorder diff-depth events of a symbol
POST     /_venue/faults/rate-limit   the next ``count`` requests of a product get HTTP 429
POST     /_venue/faults/ban          ban the client's IP for ``seconds`` (HTTP 418)
POST     /_venue/faults/clock        skew the venue clock by ``skew_ms``
POST     /_venue/faults/close        server-initiated close of every stream connection
POST     /_venue/faults/refuse       refuse (``true``) or accept new stream connections
DELETE   /_venue/faults              clear every fault
POST     /_venue/listen-key/expire   expire ``listenKey`` now (``listenKeyExpired`` is sent)
POST     /_venue/user-stream/terminate  end ``account``'s user streams on ``product``
GET      /_venue/listen-keys         the live futures listen keys
POST     /_venue/<product>/<action>  an engine's action: fund, fee_tier, orders, fills, ...
=======  ==========================  ======================================================
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import attrs
import orjson

from scenarios.venue import payloads
from scenarios.venue.faults import DepthFault, EndpointFault
from scenarios.venue.feeds import precision_of
from scenarios.venue.http import Response, parse_params, read_body, send_response
from scenarios.venue.instruments import Product
from scenarios.venue.market import BookSide

if TYPE_CHECKING:
    from scenarios.venue.server import Venue


class ControlError(Exception):
    """A bad control request: answered with HTTP 400 and ``{"error": message}``."""


class ControlApi:
    def __init__(self, venue: Venue) -> None:
        self.venue = venue

    async def handle(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        method = scope["method"].upper()
        path = scope["path"]
        body = await read_body(receive)
        try:
            data = orjson.loads(body) if body.strip() else {}
            if not isinstance(data, dict):
                raise ControlError("the body must be a JSON object")
            query = parse_params(scope.get("query_string", b""), b"", "")
            data = {**query, **data}
            handler = self._routes().get((method, path)) or self._engine_action(method, path)
            if handler is None:
                response = Response.json(
                    {"error": f"no control endpoint {method} {path}"}, status=404
                )
            else:
                response = Response.json(handler(data))
        except (ControlError, orjson.JSONDecodeError, ValueError, TypeError) as error:
            # ValueError also carries the market's refusals (a price that would cross the
            # book, removing a side's last level).
            response = Response.json({"error": str(error)}, status=400)
        await send_response(send, response)

    def _routes(self) -> dict[tuple[str, str], Any]:
        return {
            ("GET", "/_venue/state"): self.state,
            ("GET", "/_venue/book"): self.book,
            ("POST", "/_venue/price"): self.price,
            ("POST", "/_venue/activity"): self.activity,
            ("POST", "/_venue/liquidity"): self.add_liquidity,
            ("DELETE", "/_venue/liquidity"): self.remove_liquidity,
            ("POST", "/_venue/force-order"): self.force_order,
            ("POST", "/_venue/faults/endpoint"): self.endpoint_fault,
            ("POST", "/_venue/faults/depth"): self.depth_fault,
            ("POST", "/_venue/faults/rate-limit"): self.rate_limit_fault,
            ("POST", "/_venue/faults/ban"): self.ban,
            ("POST", "/_venue/faults/clock"): self.clock,
            ("POST", "/_venue/faults/close"): self.close_streams,
            ("POST", "/_venue/faults/refuse"): self.refuse_streams,
            ("DELETE", "/_venue/faults"): self.clear,
            ("POST", "/_venue/listen-key/expire"): self.expire_listen_key,
            ("POST", "/_venue/user-stream/terminate"): self.terminate_user_stream,
            ("GET", "/_venue/listen-keys"): self.listen_keys,
        }

    def _engine_action(self, method: str, path: str) -> Any:
        """``POST /_venue/<product>/<action>``: an engine's own control action."""
        parts = path.split("/")
        if method != "POST" or len(parts) != 4:
            return None
        try:
            product = Product(parts[2])
        except ValueError:
            return None
        return self.venue.engines[product].control_actions().get(parts[3])

    # --- helpers --------------------------------------------------------------------------

    def _market(self, data: dict[str, Any]) -> tuple[Product, str, Any]:
        try:
            product = Product(data.get("product", "spot"))
        except ValueError:
            raise ControlError("product must be spot, usdm or coinm") from None
        symbol = str(data.get("symbol", "")).upper()
        market = self.venue.markets.get((product, symbol))
        if market is None:
            raise ControlError(f"no {product.value} market {symbol!r}")
        return product, symbol, market

    @staticmethod
    def _flag(data: dict[str, Any], name: str) -> bool:
        """A true/false option: JSON booleans, or ``true``/``false`` in a query string."""
        value = data.get(name, False)
        if value in (True, "true"):
            return True
        if value in (False, "false"):
            return False
        raise ControlError(f"{name} must be true or false, got {value!r}")

    @staticmethod
    def _decimal(data: dict[str, Any], name: str) -> Decimal:
        raw = data.get(name)
        try:
            value = Decimal(raw) if isinstance(raw, str) else None
        except InvalidOperation:
            value = None
        if value is None or not value.is_finite() or value <= 0:
            raise ControlError(f"{name} must be a positive decimal string, got {raw!r}")
        return value

    @staticmethod
    def _number(data: dict[str, Any], name: str, default: float | None = None) -> float:
        raw = data.get(name, default)
        try:
            return float(raw)  # control-plane durations and counts, never money
        except (TypeError, ValueError):
            raise ControlError(f"{name} must be a number, got {raw!r}") from None

    def _side(self, data: dict[str, Any]) -> BookSide:
        side = str(data.get("side", "")).upper()
        for member in BookSide:
            if member.name == side or str(member.value).upper() == side:
                return member
        raise ControlError(f"side must be BID or ASK, got {side!r}")

    def _publish(self, product: Product, symbol: str, events: list[Any]) -> None:
        self.venue.on_market(product, symbol, events)

    # --- state and market -----------------------------------------------------------------

    def state(self, data: dict[str, Any]) -> dict[str, Any]:
        hub = self.venue.hub
        return {
            "time": self.venue.clock.now_ms(),
            "skew_ms": self.venue.clock.skew_ms,
            "connections": len(hub.connections),
            "subscriptions": [f"{p.value}:{s}" for p, s in hub.streams()],
            "messages_sent": hub.messages_sent,
            "requests": self.venue.rest.requests,
            "errors": list(self.venue.errors),
        }

    def book(self, data: dict[str, Any]) -> dict[str, Any]:
        _, _, market = self._market(data)
        levels = int(self._number(data, "depth", 10))
        last_update_id, bids, asks = market.depth(levels)
        return {
            "lastUpdateId": last_update_id,
            "bids": [[str(p), str(q)] for p, q in bids],
            "asks": [[str(p), str(q)] for p, q in asks],
        }

    def price(self, data: dict[str, Any]) -> dict[str, Any]:
        product, symbol, market = self._market(data)
        events = market.set_price(self._decimal(data, "price"), self.venue.clock.now_ms())
        self._publish(product, symbol, events)
        return {"updateId": market.update_id, "events": len(events)}

    def activity(self, data: dict[str, Any]) -> dict[str, Any]:
        paused = data.get("paused", True)
        if not isinstance(paused, bool):
            raise ControlError("paused must be true or false")
        self.venue.paused = paused
        return {"paused": paused}

    def add_liquidity(self, data: dict[str, Any]) -> dict[str, Any]:
        product, symbol, market = self._market(data)
        update = market.add_liquidity(
            self._side(data),
            self._decimal(data, "price"),
            self._decimal(data, "quantity"),
            self.venue.clock.now_ms(),
        )
        self._publish(product, symbol, [update])
        return {"updateId": market.update_id}

    def remove_liquidity(self, data: dict[str, Any]) -> dict[str, Any]:
        product, symbol, market = self._market(data)
        quantity = self._decimal(data, "quantity") if data.get("quantity") else None
        update = market.remove_liquidity(
            self._side(data), self._decimal(data, "price"), quantity, self.venue.clock.now_ms()
        )
        if update is not None:
            self._publish(product, symbol, [update])
        return {"updateId": market.update_id, "changed": update is not None}

    def force_order(self, data: dict[str, Any]) -> dict[str, Any]:
        """Publish a liquidation order on ``<symbol>@forceOrder`` and ``!forceOrder@arr``."""
        product, symbol, market = self._market(data)
        if product is Product.SPOT:
            raise ControlError("liquidations exist on usdm and coinm only")
        side = str(data.get("side", "SELL")).upper()
        if side not in ("BUY", "SELL"):
            raise ControlError(f"side must be BUY or SELL, got {side!r}")
        quantity = self._decimal(data, "quantity")
        price = self._decimal(data, "price") if data.get("price") else market.last_price
        now = self.venue.clock.now_ms()
        event = payloads.force_order_event(
            product.value,
            symbol=symbol,
            event_time=now,
            side=side,
            quantity=quantity,
            price=price,
            average_price=price,
            last_filled_quantity=quantity,
            filled_quantity=quantity,
            trade_time=now,
            precision=precision_of(market.instrument),
            pair=market.instrument.pair if product is Product.COINM else None,
        )
        hub = self.venue.hub
        hub.publish(product, f"{symbol.lower()}@forceOrder", event)
        hub.publish(product, "!forceOrder@arr", event)
        return {"published": event}

    # --- faults ---------------------------------------------------------------------------

    def endpoint_fault(self, data: dict[str, Any]) -> dict[str, Any]:
        path = data.get("path")
        if not isinstance(path, str) or not path.startswith("/"):
            raise ControlError("path must be an endpoint path such as /api/v3/depth")
        count = data.get("count")
        fault = EndpointFault(
            delay_s=self._number(data, "delay_s", 0.0),
            http_status=int(data["http_status"]) if data.get("http_status") else None,
            code=int(data["code"]) if data.get("code") is not None else None,
            msg=data.get("msg"),
            remaining=int(count) if count is not None else None,
            executed=self._flag(data, "executed"),
        )
        self.venue.faults.endpoints[path] = fault
        return {"path": path, "fault": _describe(fault)}

    def depth_fault(self, data: dict[str, Any]) -> dict[str, Any]:
        product, symbol, _ = self._market(data)
        fault = DepthFault(
            skip=int(self._number(data, "skip", 0)),
            repeat=int(self._number(data, "repeat", 0)),
            reorder=int(self._number(data, "reorder", 0)),
        )
        self.venue.faults.depth[(product.value, symbol)] = fault
        return {"symbol": symbol, "fault": _describe(fault)}

    def rate_limit_fault(self, data: dict[str, Any]) -> dict[str, Any]:
        try:
            product = Product(data.get("product", "spot"))
        except ValueError:
            raise ControlError("product must be spot, usdm or coinm") from None
        count = int(self._number(data, "count", 1))
        self.venue.limiter.force_429(product.value, count)
        return {"product": product.value, "count": count}

    def ban(self, data: dict[str, Any]) -> dict[str, Any]:
        ip = str(data.get("ip", "127.0.0.1"))
        until = self.venue.clock.now_ms() + int(self._number(data, "seconds", 120) * 1000)
        self.venue.limiter.force_ban(ip, until)
        return {"ip": ip, "until": until}

    def clock(self, data: dict[str, Any]) -> dict[str, Any]:
        self.venue.clock.skew_ms = int(self._number(data, "skew_ms", 0))
        return {"skew_ms": self.venue.clock.skew_ms, "time": self.venue.clock.now_ms()}

    def close_streams(self, data: dict[str, Any]) -> dict[str, Any]:
        code = int(self._number(data, "code", 1001))
        return {"closed": self.venue.hub.close_all(code, str(data.get("reason", "")))}

    def refuse_streams(self, data: dict[str, Any]) -> dict[str, Any]:
        refuse = data.get("refuse", True)
        if not isinstance(refuse, bool):
            raise ControlError("refuse must be true or false")
        self.venue.faults.refuse_streams = refuse
        return {"refuse": refuse}

    def expire_listen_key(self, data: dict[str, Any]) -> dict[str, Any]:
        key = data.get("listenKey")
        if not isinstance(key, str):
            raise ControlError("listenKey must be a listen key")
        if not self.venue.user_data.expire(key, self.venue.clock.now_ms()):
            raise ControlError(f"no listen key {key}")
        return {"expired": key}

    def terminate_user_stream(self, data: dict[str, Any]) -> dict[str, Any]:
        try:
            product = Product(data.get("product", "spot"))
        except ValueError:
            raise ControlError("product must be spot, usdm or coinm") from None
        account = data.get("account", self.venue.first_key.api_key)
        count = self.venue.user_data.terminate(product, str(account))
        return {"terminated": count}

    def listen_keys(self, data: dict[str, Any]) -> dict[str, Any]:
        return {
            "listenKeys": [
                {
                    "listenKey": key.key,
                    "product": key.product.value,
                    "account": key.account,
                    "expiresAt": key.expires_ms,
                }
                for key in self.venue.user_data.listen_keys.values()
            ]
        }

    def clear(self, data: dict[str, Any]) -> dict[str, Any]:
        self.venue.faults.clear()
        self.venue.clock.skew_ms = 0
        return {"cleared": True}


def _describe(fault: Any) -> dict[str, Any]:
    return {key: value for key, value in attrs.asdict(fault).items() if value not in (None, 0)}
