"""Every Binance request tern may send, with what it costs against Binance's limits.

One table, :data:`ENDPOINTS`, holds the REST endpoints of Spot (``/api/v3``), USD-M
(``/fapi/v1``, ``/v2``, ``/v3``) and COIN-M (``/dapi/v1``, ``/v2``); :data:`WS_API_METHODS`
holds the WebSocket API methods. Each row gives Binance's security type (which decides the
``X-MBX-APIKEY`` header and the signature), the request weight (a number, or a rule over the
params where Binance's weight depends on ``limit``, ``symbol``, ``symbols``...), the orders it
places (counted on the account's ORDERS windows) and the :class:`~actors.binance.costs.Priority`
it queues with. A request that is not in the table is an error: tern does not send what it
cannot account for.

Weights are what a request costs when it is admitted, before its outcome is known: since
2026-04-02 a *successful* Spot order or cancel costs 0 weight, but a failed one costs the
documented weight, so that is what is reserved. Where sources disagree the higher value is
used (e.g. ``historicalTrades`` 200 per the 2026 SDK, 20 per older futures docs); Binance's
``X-MBX-USED-WEIGHT-*`` headers remain the truth the limiter corrects itself with.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Protocol

import attrs
import orjson

from actors.binance.costs import Cost, Pool, Priority
from actors.config import AccountType

__all__ = [
    "ENDPOINTS",
    "WS_API_METHODS",
    "ByLimit",
    "BySymbols",
    "Endpoint",
    "Fixed",
    "PerSymbol",
    "Security",
    "UnknownEndpoint",
    "Weight",
    "WithParam",
    "WsApiMethod",
    "cost",
    "endpoint",
    "security",
    "ws_api_connect_cost",
    "ws_api_cost",
    "ws_api_method",
    "ws_api_security",
]


class Security(enum.Enum):
    """Binance's endpoint security types."""

    NONE = "NONE"
    MARKET_DATA = "MARKET_DATA"
    USER_STREAM = "USER_STREAM"
    TRADE = "TRADE"
    USER_DATA = "USER_DATA"

    @property
    def needs_key(self) -> bool:
        """Whether the request carries the API key (``X-MBX-APIKEY`` or ``apiKey``)."""
        return self is not Security.NONE

    def signed(self, account_type: AccountType) -> bool:
        """Whether the request needs ``timestamp`` and ``signature``.

        TRADE and USER_DATA always do. Spot's current docs sign every non-NONE endpoint;
        futures USER_STREAM and MARKET_DATA take the key only.
        """
        if self is Security.NONE:
            return False
        return account_type is AccountType.SPOT or self in (Security.TRADE, Security.USER_DATA)


class UnknownEndpoint(LookupError):
    """A request tern has no cost for (or one Binance retired): it must not be sent."""


class Weight(Protocol):
    """A request weight, possibly depending on the request's params."""

    @property
    def maximum(self) -> int:
        """The most this weight can be."""
        ...

    def __call__(self, params: Mapping[str, str]) -> int: ...


@attrs.frozen
class Fixed:
    """The same weight whatever the params."""

    weight: int

    @property
    def maximum(self) -> int:
        return self.weight

    def __call__(self, params: Mapping[str, str]) -> int:
        return self.weight


@attrs.frozen
class WithParam:
    """``present`` when the params hold ``name`` (equal to ``value``, if given), else
    ``absent``. E.g. a ticker for one ``symbol`` versus the whole market."""

    name: str
    present: int
    absent: int
    value: str | None = None

    @property
    def maximum(self) -> int:
        return max(self.present, self.absent)

    def __call__(self, params: Mapping[str, str]) -> int:
        given = params.get(self.name)
        if given and (self.value is None or given.lower() == self.value):
            return self.present
        return self.absent


@attrs.frozen
class ByLimit:
    """A weight by the ``limit`` param: the first tier whose bound is at least the limit
    (Binance's default limit when absent; beyond the last bound, the last weight)."""

    default: int
    tiers: tuple[tuple[int, int], ...]

    @property
    def maximum(self) -> int:
        return self.tiers[-1][1]

    def __call__(self, params: Mapping[str, str]) -> int:
        raw = params.get("limit")
        try:
            limit = self.default if raw is None else int(raw)
        except ValueError:
            raise ValueError(f"limit must be an integer, got {raw!r}") from None
        for bound, weight in self.tiers:
            if limit <= bound:
                return weight
        return self.tiers[-1][1]


@attrs.frozen
class BySymbols:
    """Spot ``ticker/24hr``: ``one`` for a ``symbol``, by count tiers for ``symbols`` (a JSON
    array), ``whole`` for the whole market (also when ``symbols`` cannot be read)."""

    one: int
    whole: int
    tiers: tuple[tuple[int, int], ...]

    @property
    def maximum(self) -> int:
        return max(self.whole, *(weight for _, weight in self.tiers))

    def __call__(self, params: Mapping[str, str]) -> int:
        if params.get("symbol"):
            return self.one
        count = _symbol_count(params)
        if count is None:
            return self.whole
        for bound, weight in self.tiers:
            if count <= bound:
                return weight
        return self.whole


@attrs.frozen
class PerSymbol:
    """``each`` per symbol (``symbol`` or a ``symbols`` JSON array) up to ``cap``; ``cap``
    without either (e.g. ``ticker``: 4 per symbol, 200 from 51 symbols)."""

    each: int
    cap: int

    @property
    def maximum(self) -> int:
        return self.cap

    def __call__(self, params: Mapping[str, str]) -> int:
        if params.get("symbol"):
            return self.each
        count = _symbol_count(params)
        return self.cap if count is None else min(self.each * count, self.cap)


def _symbol_count(params: Mapping[str, str]) -> int | None:
    raw = params.get("symbols")
    if not raw:
        return None
    try:
        symbols = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return len(symbols) if isinstance(symbols, list) and symbols else None


def _weight(value: int | Weight) -> Weight:
    return Fixed(value) if isinstance(value, int) else value


@attrs.frozen
class Endpoint:
    """One REST endpoint.

    Attributes:
        method: HTTP method.
        path: full path (``/api/v3/order``); its prefix names the product.
        security: Binance's security type.
        weight: request weight, fixed or by params.
        priority: queue priority when the limiter makes requests wait.
        orders: orders placed (each ORDERS window of the account counts them).
    """

    method: str
    path: str
    security: Security
    weight: Weight = attrs.field(converter=_weight)
    priority: Priority
    orders: int = 0

    @property
    def account_type(self) -> AccountType:
        return _product(self.path)

    def cost(self, params: Mapping[str, str]) -> Cost:
        """What this request costs with ``params``."""
        return Cost(
            pool=_pool(self.account_type),
            weight=self.weight(params),
            orders=self.orders,
            priority=self.priority,
        )


@attrs.frozen
class WsApiMethod:
    """One WebSocket API method of one product; fields as :class:`Endpoint`'s."""

    account_type: AccountType
    method: str
    security: Security
    weight: Weight = attrs.field(converter=_weight)
    priority: Priority
    orders: int = 0

    def cost(self, params: Mapping[str, str]) -> Cost:
        """What this request costs with ``params``."""
        return Cost(
            pool=_pool(self.account_type),
            weight=self.weight(params),
            orders=self.orders,
            priority=self.priority,
        )


NONE = Security.NONE
MARKET = Security.MARKET_DATA
STREAM = Security.USER_STREAM
TRADE = Security.TRADE
USER = Security.USER_DATA
CANCEL = Priority.CANCEL
ORDER = Priority.ORDER
ACCOUNT = Priority.ACCOUNT
DATA = Priority.MARKET_DATA
BACKGROUND = Priority.BACKGROUND

SPOT = AccountType.SPOT
USDM = AccountType.USDT_FUTURES
COINM = AccountType.COIN_FUTURES

_SPOT_DEPTH = ByLimit(100, ((100, 5), (500, 25), (1000, 50), (5000, 250)))
_SPOT_24HR = BySymbols(one=2, whole=80, tiers=((20, 2), (100, 40)))
_FUTURES_DEPTH = ByLimit(500, ((50, 2), (100, 5), (500, 10), (1000, 20)))
_FUTURES_KLINES = ByLimit(500, ((99, 1), (499, 2), (1000, 5), (1500, 10)))
_SYMBOL_TICKER = WithParam("symbol", 2, 4)
_COMMISSION_TEST = WithParam("computeCommissionRates", 20, 1, value="true")

E = Endpoint


def _futures_market_data(prefix: str, *, premium_index: int | Weight) -> tuple[Endpoint, ...]:
    """The market-data endpoints USD-M and COIN-M share (``prefix``: ``/fapi/v1`` or
    ``/dapi/v1``); only ``premiumIndex`` weighs differently."""
    return (
        E("GET", f"{prefix}/ping", NONE, 1, DATA),
        E("GET", f"{prefix}/time", NONE, 1, DATA),
        E("GET", f"{prefix}/exchangeInfo", NONE, 1, DATA),
        E("GET", f"{prefix}/depth", NONE, _FUTURES_DEPTH, DATA),
        E("GET", f"{prefix}/trades", NONE, 5, DATA),
        E("GET", f"{prefix}/historicalTrades", MARKET, 200, DATA),  # 20 in the Nov-2025 docs
        E("GET", f"{prefix}/aggTrades", NONE, 20, DATA),
        *(
            E("GET", f"{prefix}/{name}", NONE, _FUTURES_KLINES, DATA)
            for name in (
                "klines",
                "continuousKlines",
                "indexPriceKlines",
                "markPriceKlines",
                "premiumIndexKlines",
            )
        ),
        E("GET", f"{prefix}/premiumIndex", NONE, premium_index, DATA),
        # fundingRate and fundingInfo share Binance's separate 500/5min/IP bucket.
        E("GET", f"{prefix}/fundingRate", NONE, 1, DATA),
        E("GET", f"{prefix}/fundingInfo", NONE, 1, DATA),
        E("GET", f"{prefix}/ticker/24hr", NONE, WithParam("symbol", 1, 40), DATA),
        E("GET", f"{prefix}/ticker/bookTicker", NONE, WithParam("symbol", 2, 5), DATA),
        E("GET", f"{prefix}/ticker/price", NONE, WithParam("symbol", 1, 2), DATA),
        E("GET", f"{prefix}/openInterest", NONE, 1, DATA),
    )


#: Every REST endpoint tern may call. binance-protocol.md sections 3.1, 3.2, 4.1-4.3, plus the
#: REST twins of the Spot WS-API methods of section 10.
ENDPOINTS: tuple[Endpoint, ...] = (
    # --- Spot: general and market data -------------------------------------------------
    E("GET", "/api/v3/ping", NONE, 1, DATA),
    E("GET", "/api/v3/time", NONE, 1, DATA),
    E("GET", "/api/v3/exchangeInfo", NONE, 20, DATA),
    E("GET", "/api/v3/executionRules", NONE, PerSymbol(2, 40), DATA),
    E("GET", "/api/v3/depth", NONE, _SPOT_DEPTH, DATA),
    E("GET", "/api/v3/trades", NONE, 25, DATA),
    E("GET", "/api/v3/historicalTrades", NONE, 25, DATA),
    E("GET", "/api/v3/aggTrades", NONE, 4, DATA),
    E("GET", "/api/v3/klines", NONE, 2, DATA),
    E("GET", "/api/v3/uiKlines", NONE, 2, DATA),
    E("GET", "/api/v3/avgPrice", NONE, 2, DATA),
    E("GET", "/api/v3/referencePrice", NONE, 2, DATA),
    E("GET", "/api/v3/referencePrice/calculation", NONE, 2, DATA),
    E("GET", "/api/v3/ticker/24hr", NONE, _SPOT_24HR, DATA),
    E("GET", "/api/v3/ticker/tradingDay", NONE, PerSymbol(4, 200), DATA),
    E("GET", "/api/v3/ticker", NONE, PerSymbol(4, 200), DATA),
    E("GET", "/api/v3/ticker/price", NONE, _SYMBOL_TICKER, DATA),
    E("GET", "/api/v3/ticker/bookTicker", NONE, _SYMBOL_TICKER, DATA),
    # --- Spot: trading ------------------------------------------------------------------
    E("POST", "/api/v3/order", TRADE, 1, ORDER, orders=1),
    E("POST", "/api/v3/order/test", TRADE, _COMMISSION_TEST, ACCOUNT),
    E("DELETE", "/api/v3/order", TRADE, 1, CANCEL),
    E("DELETE", "/api/v3/openOrders", TRADE, 1, CANCEL),
    E("POST", "/api/v3/order/cancelReplace", TRADE, 1, ORDER, orders=1),
    E("PUT", "/api/v3/order/amend/keepPriority", TRADE, 4, ORDER),
    E("POST", "/api/v3/order/oco", TRADE, 1, ORDER, orders=2),  # deprecated OCO
    E("POST", "/api/v3/orderList/oco", TRADE, 1, ORDER, orders=2),
    E("POST", "/api/v3/orderList/oto", TRADE, 1, ORDER, orders=2),
    E("POST", "/api/v3/orderList/otoco", TRADE, 1, ORDER, orders=3),
    E("POST", "/api/v3/orderList/opo", TRADE, 1, ORDER, orders=2),
    E("POST", "/api/v3/orderList/opoco", TRADE, 1, ORDER, orders=3),
    E("DELETE", "/api/v3/orderList", TRADE, 1, CANCEL),
    E("POST", "/api/v3/sor/order", TRADE, 1, ORDER, orders=1),
    E("POST", "/api/v3/sor/order/test", TRADE, _COMMISSION_TEST, ACCOUNT),
    # --- Spot: account ------------------------------------------------------------------
    E("GET", "/api/v3/order", USER, 4, ACCOUNT),
    E("GET", "/api/v3/openOrders", USER, WithParam("symbol", 6, 80), ACCOUNT),
    E("GET", "/api/v3/allOrders", USER, 20, ACCOUNT),
    E("GET", "/api/v3/orderList", USER, 4, ACCOUNT),
    E("GET", "/api/v3/openOrderList", USER, 6, ACCOUNT),
    E("GET", "/api/v3/allOrderList", USER, 20, ACCOUNT),
    E("GET", "/api/v3/order/amendments", USER, 4, ACCOUNT),
    E("GET", "/api/v3/myTrades", USER, WithParam("orderId", 5, 20), ACCOUNT),
    E("GET", "/api/v3/myPreventedMatches", USER, WithParam("preventedMatchId", 2, 20), ACCOUNT),
    E("GET", "/api/v3/myAllocations", USER, 20, ACCOUNT),
    E("GET", "/api/v3/myFilters", USER, 40, ACCOUNT),
    E("GET", "/api/v3/account", USER, 20, ACCOUNT),
    E("GET", "/api/v3/account/commission", USER, 20, ACCOUNT),
    E("GET", "/api/v3/rateLimit/order", USER, 40, ACCOUNT),
    # --- USD-M: general and market data --------------------------------------------------
    *_futures_market_data("/fapi/v1", premium_index=WithParam("symbol", 1, 10)),
    E("GET", "/fapi/v2/ticker/price", NONE, WithParam("symbol", 1, 2), DATA),
    # --- USD-M: trading --------------------------------------------------------------------
    E("POST", "/fapi/v1/order", TRADE, 0, ORDER, orders=1),
    E("POST", "/fapi/v1/order/test", TRADE, 1, ACCOUNT),
    E("PUT", "/fapi/v1/order", TRADE, 0, ORDER, orders=1),
    E("POST", "/fapi/v1/batchOrders", TRADE, 5, ORDER, orders=5),
    E("PUT", "/fapi/v1/batchOrders", TRADE, 5, ORDER, orders=5),
    E("DELETE", "/fapi/v1/order", TRADE, 1, CANCEL),
    E("DELETE", "/fapi/v1/batchOrders", TRADE, 1, CANCEL),
    E("DELETE", "/fapi/v1/allOpenOrders", TRADE, 1, CANCEL),
    E("POST", "/fapi/v1/countdownCancelAll", TRADE, 10, CANCEL),
    E("POST", "/fapi/v1/algoOrder", TRADE, 0, ORDER, orders=1),
    E("DELETE", "/fapi/v1/algoOrder", TRADE, 1, CANCEL),
    E("DELETE", "/fapi/v1/algoOpenOrders", TRADE, 1, CANCEL),
    E("POST", "/fapi/v1/positionSide/dual", TRADE, 1, ACCOUNT),
    E("POST", "/fapi/v1/leverage", TRADE, 1, ACCOUNT),
    E("POST", "/fapi/v1/marginType", TRADE, 1, ACCOUNT),
    E("POST", "/fapi/v1/multiAssetsMargin", TRADE, 1, ACCOUNT),
    E("POST", "/fapi/v1/positionMargin", TRADE, 1, ACCOUNT),
    # --- USD-M: account and user data ------------------------------------------------------
    E("GET", "/fapi/v1/order", USER, 1, ACCOUNT),
    E("GET", "/fapi/v1/openOrder", USER, 1, ACCOUNT),
    E("GET", "/fapi/v1/openOrders", USER, WithParam("symbol", 1, 40), ACCOUNT),
    E("GET", "/fapi/v1/allOrders", USER, 5, ACCOUNT),
    E("GET", "/fapi/v1/userTrades", USER, 5, ACCOUNT),
    E("GET", "/fapi/v1/orderAmendment", USER, 1, ACCOUNT),
    E("GET", "/fapi/v1/algoOrder", USER, 1, ACCOUNT),
    E("GET", "/fapi/v1/openAlgoOrders", USER, WithParam("symbol", 1, 40), ACCOUNT),
    E("GET", "/fapi/v1/allAlgoOrders", USER, 5, ACCOUNT),
    E("GET", "/fapi/v1/forceOrders", USER, WithParam("symbol", 20, 50), ACCOUNT),
    E("GET", "/fapi/v2/account", USER, 5, ACCOUNT),
    E("GET", "/fapi/v3/account", USER, 5, ACCOUNT),
    E("GET", "/fapi/v2/balance", USER, 5, ACCOUNT),
    E("GET", "/fapi/v3/balance", USER, 5, ACCOUNT),
    E("GET", "/fapi/v2/positionRisk", USER, 5, ACCOUNT),
    E("GET", "/fapi/v3/positionRisk", USER, 5, ACCOUNT),
    E("GET", "/fapi/v1/adlQuantile", USER, 5, ACCOUNT),
    E("GET", "/fapi/v1/positionSide/dual", USER, 30, ACCOUNT),
    E("GET", "/fapi/v1/multiAssetsMargin", USER, 30, ACCOUNT),
    E("GET", "/fapi/v1/commissionRate", USER, 20, BACKGROUND),
    E("GET", "/fapi/v1/income", USER, 30, ACCOUNT),
    E("GET", "/fapi/v1/leverageBracket", USER, 1, ACCOUNT),
    E("GET", "/fapi/v1/rateLimit/order", USER, 1, ACCOUNT),
    E("POST", "/fapi/v1/listenKey", STREAM, 1, ACCOUNT),
    E("PUT", "/fapi/v1/listenKey", STREAM, 1, ACCOUNT),
    E("DELETE", "/fapi/v1/listenKey", STREAM, 1, ACCOUNT),
    # --- COIN-M: general and market data ---------------------------------------------------
    *_futures_market_data("/dapi/v1", premium_index=10),
    # --- COIN-M: trading -------------------------------------------------------------------
    E("POST", "/dapi/v1/order", TRADE, 0, ORDER, orders=1),
    E("PUT", "/dapi/v1/order", TRADE, 1, ORDER, orders=1),
    E("POST", "/dapi/v1/batchOrders", TRADE, 5, ORDER, orders=5),
    E("PUT", "/dapi/v1/batchOrders", TRADE, 5, ORDER, orders=5),
    E("DELETE", "/dapi/v1/order", TRADE, 1, CANCEL),
    E("DELETE", "/dapi/v1/batchOrders", TRADE, 1, CANCEL),
    E("DELETE", "/dapi/v1/allOpenOrders", TRADE, 1, CANCEL),
    E("POST", "/dapi/v1/countdownCancelAll", TRADE, 10, CANCEL),
    E("POST", "/dapi/v1/algoOrder", TRADE, 0, ORDER, orders=1),  # CM-UM integration
    E("DELETE", "/dapi/v1/algoOrder", TRADE, 1, CANCEL),
    E("DELETE", "/dapi/v1/algoOpenOrders", TRADE, 1, CANCEL),  # third-party evidence only
    E("POST", "/dapi/v1/positionSide/dual", TRADE, 1, ACCOUNT),
    E("POST", "/dapi/v1/leverage", TRADE, 1, ACCOUNT),
    E("POST", "/dapi/v1/marginType", TRADE, 1, ACCOUNT),
    E("POST", "/dapi/v1/positionMargin", TRADE, 1, ACCOUNT),
    # --- COIN-M: account and user data -----------------------------------------------------
    E("GET", "/dapi/v1/order", USER, 1, ACCOUNT),
    E("GET", "/dapi/v1/openOrder", USER, 1, ACCOUNT),
    E("GET", "/dapi/v1/openOrders", USER, WithParam("symbol", 1, 40), ACCOUNT),
    # 20 with symbol / 40 with pair before the CM-UM integration, 5 after it.
    E("GET", "/dapi/v1/allOrders", USER, WithParam("symbol", 20, 40), ACCOUNT),
    E("GET", "/dapi/v1/userTrades", USER, WithParam("symbol", 20, 40), ACCOUNT),
    E("GET", "/dapi/v1/orderAmendment", USER, 1, ACCOUNT),
    E("GET", "/dapi/v1/openAlgoOrders", USER, WithParam("symbol", 1, 40), ACCOUNT),
    E("GET", "/dapi/v1/forceOrders", USER, WithParam("symbol", 20, 50), ACCOUNT),
    E("GET", "/dapi/v1/account", USER, 5, ACCOUNT),
    E("GET", "/dapi/v1/balance", USER, 1, ACCOUNT),
    E("GET", "/dapi/v1/positionRisk", USER, 1, ACCOUNT),
    E("GET", "/dapi/v1/adlQuantile", USER, 5, ACCOUNT),
    E("GET", "/dapi/v1/positionSide/dual", USER, 30, ACCOUNT),
    E("GET", "/dapi/v1/commissionRate", USER, 20, BACKGROUND),
    E("GET", "/dapi/v1/income", USER, 20, ACCOUNT),
    E("GET", "/dapi/v1/leverageBracket", USER, 1, ACCOUNT),
    E("GET", "/dapi/v2/leverageBracket", USER, 1, ACCOUNT),
    E("POST", "/dapi/v1/listenKey", STREAM, 1, ACCOUNT),
    E("PUT", "/dapi/v1/listenKey", STREAM, 1, ACCOUNT),
    E("DELETE", "/dapi/v1/listenKey", STREAM, 1, ACCOUNT),
)


def _ws_rows(
    products: tuple[AccountType, ...], rows: tuple[tuple[object, ...], ...]
) -> tuple[WsApiMethod, ...]:
    """Rows ``(method, security, weight, priority[, orders])`` for each of ``products``."""
    return tuple(WsApiMethod(product, *row) for product in products for row in rows)


_SPOT_WS = (
    ("ping", NONE, 1, DATA),
    ("time", NONE, 1, DATA),
    ("exchangeInfo", NONE, 20, DATA),
    ("executionRules", NONE, PerSymbol(2, 40), DATA),
    ("depth", NONE, _SPOT_DEPTH, DATA),
    ("trades.recent", NONE, 25, DATA),
    ("trades.historical", NONE, 25, DATA),
    ("trades.aggregate", NONE, 4, DATA),
    ("blockTrades.historical", MARKET, 25, DATA),
    ("klines", NONE, 2, DATA),
    ("uiKlines", NONE, 2, DATA),
    ("avgPrice", NONE, 2, DATA),
    ("referencePrice", NONE, 2, DATA),
    ("referencePrice.calculation", NONE, 2, DATA),
    ("ticker.24hr", NONE, _SPOT_24HR, DATA),
    ("ticker.tradingDay", NONE, PerSymbol(4, 200), DATA),
    ("ticker", NONE, PerSymbol(4, 200), DATA),
    ("ticker.price", NONE, _SYMBOL_TICKER, DATA),
    ("ticker.book", NONE, _SYMBOL_TICKER, DATA),
    ("session.logon", USER, 2, ACCOUNT),
    ("session.status", NONE, 2, ACCOUNT),
    ("session.logout", NONE, 2, ACCOUNT),
    ("session.subscriptions", NONE, 2, ACCOUNT),
    ("order.place", TRADE, 1, ORDER, 1),
    ("order.test", TRADE, _COMMISSION_TEST, ACCOUNT),
    ("order.status", USER, 4, ACCOUNT),
    ("order.cancel", TRADE, 1, CANCEL),
    ("order.cancelReplace", TRADE, 1, ORDER, 1),
    ("order.amend.keepPriority", TRADE, 4, ORDER),
    ("order.amendments", USER, 4, ACCOUNT),
    ("openOrders.status", USER, WithParam("symbol", 6, 80), ACCOUNT),
    ("openOrders.cancelAll", TRADE, 1, CANCEL),
    ("orderList.place", TRADE, 1, ORDER, 2),  # deprecated OCO
    ("orderList.place.oco", TRADE, 1, ORDER, 2),
    ("orderList.place.oto", TRADE, 1, ORDER, 2),
    ("orderList.place.otoco", TRADE, 1, ORDER, 3),
    ("orderList.place.opo", TRADE, 1, ORDER, 2),
    ("orderList.place.opoco", TRADE, 1, ORDER, 3),
    ("orderList.cancel", TRADE, 1, CANCEL),
    ("orderList.status", USER, 4, ACCOUNT),
    ("openOrderLists.status", USER, 6, ACCOUNT),
    ("allOrders", USER, 20, ACCOUNT),
    ("allOrderLists", USER, 20, ACCOUNT),
    ("myTrades", USER, WithParam("orderId", 5, 20), ACCOUNT),
    ("myPreventedMatches", USER, WithParam("preventedMatchId", 2, 20), ACCOUNT),
    ("myAllocations", USER, 20, ACCOUNT),
    ("myFilters", USER, 40, ACCOUNT),
    ("account.status", USER, 20, ACCOUNT),
    ("account.rateLimits.orders", USER, 40, ACCOUNT),
    ("account.commission", USER, 20, ACCOUNT),
    ("sor.order.place", TRADE, 1, ORDER, 1),
    ("sor.order.test", TRADE, _COMMISSION_TEST, ACCOUNT),
    ("userDataStream.subscribe", STREAM, 2, ACCOUNT),
    ("userDataStream.subscribe.signature", STREAM, 2, ACCOUNT),
    ("userDataStream.unsubscribe", STREAM, 2, ACCOUNT),
)

_FUTURES_WS = (
    ("order.status", USER, 1, ACCOUNT),
    ("order.cancel", TRADE, 1, CANCEL),
    ("account.status", USER, 5, ACCOUNT),
    ("depth", NONE, _FUTURES_DEPTH, DATA),
    ("ticker.price", NONE, WithParam("symbol", 1, 2), DATA),
    ("ticker.book", NONE, WithParam("symbol", 2, 5), DATA),
    ("session.logon", USER, 2, ACCOUNT),
    ("session.status", NONE, 2, ACCOUNT),
    ("session.logout", NONE, 2, ACCOUNT),
    ("userDataStream.start", STREAM, 1, ACCOUNT),
    ("userDataStream.ping", STREAM, 1, ACCOUNT),
    ("userDataStream.stop", STREAM, 1, ACCOUNT),
)

#: Every WebSocket API method tern may call, per product (section 10).
WS_API_METHODS: tuple[WsApiMethod, ...] = (
    _ws_rows((SPOT,), _SPOT_WS)
    + _ws_rows((USDM, COINM), _FUTURES_WS)
    + _ws_rows(
        (USDM,),
        (
            ("order.place", TRADE, 0, ORDER, 1),
            ("order.modify", TRADE, 0, ORDER, 1),
            ("algoOrder.place", TRADE, 0, ORDER, 1),
            ("algoOrder.cancel", TRADE, 1, CANCEL),
            ("account.balance", USER, 5, ACCOUNT),
            ("account.position", USER, 5, ACCOUNT),
            ("v2/account.balance", USER, 5, ACCOUNT),
            ("v2/account.position", USER, 5, ACCOUNT),
            ("v2/account.status", USER, 5, ACCOUNT),
        ),
    )
    + _ws_rows(
        (COINM,),
        (
            ("order.place", TRADE, 0, ORDER, 1),
            ("order.modify", TRADE, 1, ORDER, 1),
            ("account.balance", USER, 1, ACCOUNT),
            ("account.position", USER, 1, ACCOUNT),
        ),
    )
)

#: Binance's weight for opening a WS-API connection (Spot 2; USD-M's handshake 5).
_WS_CONNECT_WEIGHT = {SPOT: 2, USDM: 5, COINM: 5}

_RETIRED: dict[tuple[str, str], str] = {
    (method, "/api/v3/userDataStream"): (
        "Spot listen keys stopped working on 2026-02-20; subscribe to user data on the "
        "WebSocket API (userDataStream.subscribe)"
    )
    for method in ("POST", "PUT", "DELETE")
}
_RETIRED_WS: dict[tuple[AccountType, str], str] = {
    (SPOT, method): ("Spot listen keys stopped working on 2026-02-20; use userDataStream.subscribe")
    for method in ("userDataStream.start", "userDataStream.ping", "userDataStream.stop")
}
_PREFIXES = (("/api/", SPOT), ("/fapi/", USDM), ("/dapi/", COINM))

_BY_ROUTE: dict[tuple[str, str], Endpoint] = {(e.method, e.path): e for e in ENDPOINTS}
_BY_WS: dict[tuple[AccountType, str], WsApiMethod] = {
    (m.account_type, m.method): m for m in WS_API_METHODS
}
if len(_BY_ROUTE) != len(ENDPOINTS) or len(_BY_WS) != len(WS_API_METHODS):
    raise RuntimeError("duplicate rows in the Binance endpoint tables")


def endpoint(account_type: AccountType, method: str, path: str) -> Endpoint:
    """The row for ``method path`` (``"GET"``, ``"/api/v3/depth"``) of ``account_type``.

    Raises:
        UnknownEndpoint: the path belongs to another product, Binance retired it, or it is
            not in the table (the message lists the methods the path does have).
    """
    verb = method.upper()
    if "?" in path:
        raise UnknownEndpoint(f"{path!r}: pass the path without its query string")
    if path.startswith("/api/v1/"):
        raise UnknownEndpoint(
            f"{verb} {path}: the Spot /api/v1 endpoints were retired on 2026-03-25; use /api/v3"
        )
    product = _product(path)
    if product is not account_type:
        raise UnknownEndpoint(
            f"{verb} {path} is a {product.value} endpoint, not {account_type.value}"
        )
    retired = _RETIRED.get((verb, path))
    if retired is not None:
        raise UnknownEndpoint(f"{verb} {path}: {retired}")
    row = _BY_ROUTE.get((verb, path))
    if row is None:
        others = sorted(m for (m, p) in _BY_ROUTE if p == path)
        known = f"; it has {', '.join(others)}" if others else ""
        raise UnknownEndpoint(
            f"{verb} {path} is not in tern's {account_type.value} endpoint table{known}; tern "
            "sends only requests it can account for"
        )
    return row


def cost(account_type: AccountType, method: str, path: str, params: Mapping[str, str]) -> Cost:
    """What ``method path`` with ``params`` costs against ``account_type``'s limits.

    Raises:
        UnknownEndpoint: as :func:`endpoint`.
        ValueError: a param the weight depends on is malformed (``limit=abc``).
    """
    return endpoint(account_type, method, path).cost(params)


def security(account_type: AccountType, method: str, path: str) -> Security:
    """Binance's security type of ``method path``.

    Raises:
        UnknownEndpoint: as :func:`endpoint`.
    """
    return endpoint(account_type, method, path).security


def ws_api_method(account_type: AccountType, method: str) -> WsApiMethod:
    """The row of WS-API ``method`` for ``account_type``. The optional version prefix of
    the current version (``v3/`` on Spot, ``v1/`` on futures) is accepted; other prefixes
    (``v2/account.status``) are methods of their own.

    Raises:
        UnknownEndpoint: the method is retired or not in the table.
    """
    current = "v3/" if account_type is SPOT else "v1/"
    name = method.removeprefix(current)
    retired = _RETIRED_WS.get((account_type, name))
    if retired is not None:
        raise UnknownEndpoint(f"WS-API {method}: {retired}")
    row = _BY_WS.get((account_type, name))
    if row is None:
        raise UnknownEndpoint(
            f"WS-API method {method!r} is not in tern's {account_type.value} table; tern "
            "sends only requests it can account for"
        )
    return row


def ws_api_cost(account_type: AccountType, method: str, params: Mapping[str, str]) -> Cost:
    """What WS-API ``method`` with ``params`` costs; the WS-API shares the REST limits.

    Raises:
        UnknownEndpoint: as :func:`ws_api_method`.
        ValueError: a param the weight depends on is malformed.
    """
    return ws_api_method(account_type, method).cost(params)


def ws_api_security(account_type: AccountType, method: str) -> Security:
    """Binance's security type of WS-API ``method``.

    Raises:
        UnknownEndpoint: as :func:`ws_api_method`.
    """
    return ws_api_method(account_type, method).security


def ws_api_connect_cost(account_type: AccountType) -> Cost:
    """What opening a WS-API connection costs (Spot 2 weight; the futures handshake 5)."""
    return Cost(pool=_pool(account_type), weight=_WS_CONNECT_WEIGHT[account_type], priority=ACCOUNT)


def _product(path: str) -> AccountType:
    for prefix, product in _PREFIXES:
        if path.startswith(prefix):
            return product
    raise UnknownEndpoint(
        f"{path!r} is not a Binance Spot (/api/v3), USD-M (/fapi) or COIN-M (/dapi) path"
    )


def _pool(account_type: AccountType) -> Pool:
    return Pool.SPOT if account_type is AccountType.SPOT else Pool.FUTURES
