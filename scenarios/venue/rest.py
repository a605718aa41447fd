"""Binance's REST API on the venue: routing, limits, authentication, market data.

Every request goes through the same pipeline, in Binance's order: find the endpoint (unknown
paths get HTTP 404), apply any injected fault, count its weight against the IP's pool (429 /
418 past the limits; the used-weight headers go on every reply), authenticate it per the
endpoint's security type, then answer.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs
import orjson
import trio

from scenarios.venue import payloads
from scenarios.venue.auth import ApiKey, Security, authenticate
from scenarios.venue.errors import VenueError
from scenarios.venue.faults import EndpointFault
from scenarios.venue.feeds import kline_arguments, precision_of, ticker_arguments
from scenarios.venue.http import Request, Response, parse_params, read_body, send_response
from scenarios.venue.instruments import Instrument, Product, exchange_info_json
from scenarios.venue.limits import EndpointCost, endpoint_cost
from scenarios.venue.market import (
    FUTURES_KLINE_INTERVALS,
    SPOT_KLINE_INTERVALS,
    MarketQueryError,
    MarketState,
)

if TYPE_CHECKING:
    from scenarios.venue.server import Venue

PREFIXES = {"/api/v3/": Product.SPOT, "/fapi/": Product.USDM, "/dapi/": Product.COINM}
_DIGITS = re.compile(r"^[0-9]{1,20}$")
SPOT_DEPTH_MAX = 5000
INT64_MAX = 2**63 - 1
#: Times beyond this (the year 9999) are refused as invalid rather than computed with.
TIME_MAX_MS = 253_402_300_799_999
FUTURES_DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000)

Handler = Callable[["Call"], Any]


@attrs.frozen
class Route:
    product: Product
    security: Security
    handler: Handler


@attrs.frozen
class Call:
    """What a handler gets: the venue, the request, the product and the venue time."""

    venue: Venue
    request: Request
    product: Product
    now_ms: int
    #: The authenticated key (None on endpoints that need none).
    key: ApiKey | None = None

    # --- parameters -----------------------------------------------------------------------

    def integer(self, name: str, default: int | None = None) -> int | None:
        value = self.request.get(name)
        if value is None:
            return default
        if not _DIGITS.match(value):
            raise VenueError.illegal_characters(name, "^[0-9]{1,20}$", product=self.product.value)
        number = int(value)
        if number > INT64_MAX:
            raise VenueError.invalid_parameter(name, product=self.product.value)
        return number

    def required(self, name: str) -> str:
        value = self.request.get(name)
        if value is None:
            raise VenueError.mandatory_param_empty_or_malformed(name, product=self.product.value)
        return value

    def instrument(self) -> Instrument:
        """The instrument named by the mandatory ``symbol`` parameter."""
        found = self.optional_instrument()
        if found is None:
            raise VenueError.mandatory_param_empty_or_malformed(
                "symbol", product=self.product.value
            )
        return found

    def optional_instrument(self) -> Instrument | None:
        """The instrument named by ``symbol``, or None when the parameter is absent."""
        symbol = self.request.get("symbol")
        if symbol is None:
            return None
        instrument = self.venue.instrument(self.product, symbol.upper())
        if instrument is None:
            raise VenueError.bad_symbol(product=self.product.value)
        return instrument

    def instruments(self) -> list[Instrument]:
        """``symbol``, ``symbols`` (a JSON array) or, with neither, every instrument."""
        single = self.optional_instrument()
        if single is not None:
            return [single]
        raw = self.request.get("symbols")
        if raw is None:
            return list(self.venue.instruments[self.product].values())
        try:
            names = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise VenueError.invalid_parameter("symbols", product=self.product.value) from None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise VenueError.invalid_parameter("symbols", product=self.product.value)
        found = []
        for name in names:
            instrument = self.venue.instrument(self.product, name.upper())
            if instrument is None:
                raise VenueError.bad_symbol(product=self.product.value)
            found.append(instrument)
        return found

    def market(self, instrument: Instrument) -> MarketState:
        return self.venue.markets[(instrument.product, instrument.symbol)]

    def times(self) -> tuple[int | None, int | None]:
        start, end = self.integer("startTime"), self.integer("endTime")
        for name, value in (("startTime", start), ("endTime", end)):
            if value is not None and value > TIME_MAX_MS:
                raise VenueError.invalid_parameter(name, product=self.product.value)
        if start is not None and end is not None and start > end:
            raise VenueError.start_time_greater_than_end_time(product=self.product.value)
        return start, end


# --- handlers ------------------------------------------------------------------------------


def ping(call: Call) -> Any:
    return payloads.ping()


def server_time(call: Call) -> Any:
    return payloads.server_time(call.now_ms)


def exchange_info(call: Call) -> Any:
    venue = call.venue
    instruments = (
        call.instruments() if call.request.get("symbol") or call.request.get("symbols") else None
    )
    pool = venue.limiter.pool(call.product.value)
    return exchange_info_json(
        call.product,
        instruments if instruments is not None else venue.instruments[call.product].values(),
        [limit.to_json() for limit in venue.limiter.limits(pool)],
        call.now_ms,
    )


def depth(call: Call) -> Any:
    instrument = call.instrument()
    if call.product is Product.SPOT:
        limit = min(call.integer("limit", 100) or 100, SPOT_DEPTH_MAX)
    else:
        wanted = call.integer("limit", 500) or 500
        limit = next((n for n in FUTURES_DEPTH_LIMITS if n >= wanted), FUTURES_DEPTH_LIMITS[-1])
    last_update_id, bids, asks = call.market(instrument).depth(limit)
    return payloads.depth_snapshot(
        call.product.value,
        symbol=instrument.symbol,
        last_update_id=last_update_id,
        bids=bids,
        asks=asks,
        event_time=call.now_ms,
        transaction_time=call.now_ms,
        precision=precision_of(instrument),
        pair=instrument.pair if call.product is Product.COINM else None,
    )


def _trade_rows(call: Call, instrument: Instrument, trades: list[Any]) -> list[Any]:
    precision = precision_of(instrument)
    return [
        payloads.trade_entry(
            call.product.value,
            trade_id=trade.trade_id,
            price=trade.price,
            quantity=trade.quantity,
            time=trade.time_ms,
            is_buyer_maker=trade.buyer_is_maker,
            precision=precision,
            notional=trade.quote_quantity,
        )
        for trade in trades
    ]


def trades(call: Call) -> Any:
    instrument = call.instrument()
    limit = min(call.integer("limit", 500) or 500, 1000)
    return _trade_rows(call, instrument, call.market(instrument).recent_trades(limit))


def historical_trades(call: Call) -> Any:
    instrument = call.instrument()
    spot = call.product is Product.SPOT
    limit = min(call.integer("limit", 500 if spot else 100) or 100, 1000 if spot else 500)
    found = call.market(instrument).historical_trades(call.integer("fromId"), limit)
    return _trade_rows(call, instrument, found)


def agg_trades(call: Call) -> Any:
    instrument = call.instrument()
    start, end = call.times()
    limit = min(call.integer("limit", 500) or 500, 1000)
    found = call.market(instrument).agg_trades(call.integer("fromId"), start, end, limit)
    precision = precision_of(instrument)
    return [
        payloads.aggregate_trade_entry(
            call.product.value,
            aggregate_id=item.agg_id,
            price=item.price,
            quantity=item.quantity,
            first_trade_id=item.first_trade_id,
            last_trade_id=item.last_trade_id,
            time=item.time_ms,
            is_buyer_maker=item.buyer_is_maker,
            precision=precision,
        )
        for item in found
    ]


def klines(call: Call) -> Any:
    instrument = call.instrument()
    interval = call.required("interval")
    allowed = SPOT_KLINE_INTERVALS if call.product is Product.SPOT else FUTURES_KLINE_INTERVALS
    if interval not in allowed:
        raise VenueError.bad_interval(product=call.product.value)
    start, end = call.times()
    maximum = 1000 if call.product is Product.SPOT else 1500
    limit = min(call.integer("limit", 500) or 500, maximum)
    rows = call.market(instrument).klines(interval, start, end, limit, now_ms=call.now_ms)
    precision = precision_of(instrument)
    return [payloads.kline_row(**kline_arguments(row), precision=precision) for row in rows]


def _one_or_many(call: Call, build: Callable[[Instrument], Any]) -> Any:
    if call.request.get("symbol") is not None:
        instrument = call.instrument()
        result = build(instrument)
        # COIN-M answers a list even for one symbol (pairs hold several contracts).
        return [result] if call.product is Product.COINM else result
    return [build(instrument) for instrument in call.instruments()]


#: Spot's ``type=MINI`` 24 h ticker keeps these fields of the full one.
MINI_TICKER_FIELDS = (
    "symbol",
    "openPrice",
    "highPrice",
    "lowPrice",
    "lastPrice",
    "volume",
    "quoteVolume",
    "openTime",
    "closeTime",
    "firstId",
    "lastId",
    "count",
)


def ticker_24hr(call: Call) -> Any:
    mini = False
    if call.product is Product.SPOT:
        kind = call.request.get("type") or "FULL"
        if kind not in ("FULL", "MINI"):
            raise VenueError.invalid_ticker_type(product=call.product.value)
        mini = kind == "MINI"

    def build(instrument: Instrument) -> Any:
        ticker = call.market(instrument).ticker_24hr(call.now_ms)
        full = payloads.ticker_24hr(
            call.product.value,
            symbol=instrument.symbol,
            **ticker_arguments(ticker),
            precision=precision_of(instrument),
            pair=instrument.pair if call.product is Product.COINM else None,
        )
        return {name: full[name] for name in MINI_TICKER_FIELDS} if mini else full

    return _one_or_many(call, build)


def ticker_price(call: Call) -> Any:
    def build(instrument: Instrument) -> Any:
        return payloads.ticker_price(
            call.product.value,
            symbol=instrument.symbol,
            price=call.market(instrument).last_price,
            time=call.now_ms,
            precision=precision_of(instrument),
            pair=instrument.pair if call.product is Product.COINM else None,
        )

    return _one_or_many(call, build)


def book_ticker(call: Call) -> Any:
    def build(instrument: Instrument) -> Any:
        top = call.market(instrument).best_bid_ask()
        return payloads.book_ticker(
            call.product.value,
            symbol=instrument.symbol,
            last_update_id=top.update_id,
            bid_price=top.bid_price,
            bid_quantity=top.bid_quantity,
            ask_price=top.ask_price,
            ask_quantity=top.ask_quantity,
            time=call.now_ms,
            precision=precision_of(instrument),
            pair=instrument.pair if call.product is Product.COINM else None,
        )

    return _one_or_many(call, build)


def avg_price(call: Call) -> Any:
    instrument = call.instrument()
    average = call.market(instrument).avg_price(call.now_ms)
    return payloads.average_price(
        minutes=average.mins,
        price=average.price,
        close_time=average.close_time_ms,
        precision=precision_of(instrument),
    )


def premium_index(call: Call) -> Any:
    def build(instrument: Instrument) -> Any:
        index = call.market(instrument).premium_index(call.now_ms)
        return payloads.premium_index(
            call.product.value,
            symbol=instrument.symbol,
            mark_price=index.mark_price,
            index_price=index.index_price,
            estimated_settle_price=index.estimated_settle_price,
            last_funding_rate=index.last_funding_rate,
            interest_rate=index.interest_rate,
            next_funding_time=index.next_funding_time_ms,
            time=index.time_ms,
            pair=instrument.pair if call.product is Product.COINM else None,
        )

    if call.request.get("symbol") is not None:
        instrument = call.instrument()
        return [build(instrument)] if call.product is Product.COINM else build(instrument)
    return [build(instrument) for instrument in call.venue.instruments[call.product].values()]


def funding_rate(call: Call) -> Any:
    start, end = call.times()
    limit = min(call.integer("limit", 100) or 100, 1000)
    instrument = call.instrument() if call.product is Product.COINM else call.optional_instrument()
    chosen = [instrument] if instrument else list(call.venue.instruments[call.product].values())
    rows = []
    for item in chosen:
        if not item.is_perpetual:
            continue
        for record in call.market(item).funding_history(start, end, limit):
            rows.append(
                (
                    record.funding_time_ms,
                    payloads.funding_rate_entry(
                        call.product.value,
                        symbol=item.symbol,
                        funding_rate=record.funding_rate,
                        funding_time=record.funding_time_ms,
                        mark_price=record.mark_price,
                    ),
                )
            )
    rows.sort(key=lambda row: row[0])
    return [row for _, row in rows[:limit]]


def funding_info(call: Call) -> Any:
    return [
        payloads.funding_info_entry(
            symbol=instrument.symbol,
            adjusted_funding_rate_cap=Decimal("0.02"),
            adjusted_funding_rate_floor=Decimal("-0.02"),
            funding_interval_hours=8,
        )
        for instrument in call.venue.instruments[call.product].values()
        if instrument.is_perpetual
    ]


def open_interest(call: Call) -> Any:
    instrument = call.instrument()
    return payloads.open_interest(
        call.product.value,
        symbol=instrument.symbol,
        open_interest=call.market(instrument).open_interest(),
        time=call.now_ms,
        precision=precision_of(instrument),
        pair=instrument.pair if call.product is Product.COINM else None,
        contract_type=instrument.contract_type if call.product is Product.COINM else None,
    )


def _market_routes() -> dict[tuple[str, str], Route]:
    routes: dict[tuple[str, str], Route] = {}

    def add(product: Product, paths: list[str], handler: Handler) -> None:
        for path in paths:
            routes[("GET", path)] = Route(product, Security.NONE, handler)

    spot, usdm, coinm = Product.SPOT, Product.USDM, Product.COINM
    common: list[tuple[str, Handler]] = [
        ("ping", ping),
        ("time", server_time),
        ("exchangeInfo", exchange_info),
        ("depth", depth),
        ("trades", trades),
        ("historicalTrades", historical_trades),
        ("aggTrades", agg_trades),
        ("klines", klines),
        ("ticker/24hr", ticker_24hr),
        ("ticker/price", ticker_price),
        ("ticker/bookTicker", book_ticker),
    ]
    for name, handler in common:
        add(spot, [f"/api/v3/{name}"], handler)
        add(usdm, [f"/fapi/v1/{name}"], handler)
        add(coinm, [f"/dapi/v1/{name}"], handler)
    for product, path in (
        (usdm, "/fapi/v1/historicalTrades"),
        (coinm, "/dapi/v1/historicalTrades"),
    ):
        routes[("GET", path)] = Route(product, Security.MARKET_DATA, historical_trades)
    add(spot, ["/api/v3/uiKlines"], klines)
    add(spot, ["/api/v3/avgPrice"], avg_price)
    add(usdm, ["/fapi/v2/ticker/price"], ticker_price)
    for product, prefix in ((usdm, "/fapi/v1"), (coinm, "/dapi/v1")):
        add(product, [f"{prefix}/premiumIndex"], premium_index)
        add(product, [f"{prefix}/fundingRate"], funding_rate)
        add(product, [f"{prefix}/fundingInfo"], funding_info)
        add(product, [f"{prefix}/openInterest"], open_interest)
    return routes


def _product_of(path: str) -> str:
    for prefix, product in PREFIXES.items():
        if path.startswith(prefix):
            return product.value
    return Product.SPOT.value


class RestServer:
    """The REST pipeline of one venue (see the module docstring)."""

    def __init__(self, venue: Venue) -> None:
        self.venue = venue
        self.routes: dict[tuple[str, str], Route] = _market_routes()
        for engine in venue.engines.values():
            self.routes.update(engine.routes())
        for route_key, route in venue.user_data.routes().items():
            self.routes[route_key] = route
        self.requests = 0

    async def handle(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.requests += 1
        path = scope["path"]
        if path.startswith("/_venue/"):
            await self.venue.control.handle(scope, receive, send)
            return
        try:
            response = await self._respond(scope, receive, path)
        except Exception as exc:  # a venue bug: answer as Binance does, keep serving
            response = Response.error(VenueError.unknown(product=_product_of(path)))
            response = attrs.evolve(response, headers=(("X-Venue-Error", type(exc).__name__),))
        await send_response(send, response)

    async def _respond(self, scope: dict[str, Any], receive: Any, path: str) -> Response:
        method = scope["method"].upper()
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in scope["headers"]
        }
        client = (scope.get("client") or ("unknown", 0))[0]
        route = self.routes.get((method, path))
        if route is None:
            known_path = any(known == path for _, known in self.routes)
            return Response(405 if known_path else 404, b"")
        product = route.product
        try:
            raw_body = await read_body(receive)
            raw_query = scope.get("query_string", b"")
            params = parse_params(raw_query, raw_body, headers.get("content-type", ""))
        except VenueError as error:
            return Response.error(error)
        request = Request(method, path, raw_query, raw_body, params, headers, client)
        venue = self.venue
        fault = venue.faults.endpoint(path, executed=False)
        if fault is not None:
            faulty = await _apply_fault(fault)
            if faulty is not None:
                return faulty
        now = venue.clock.now_ms()
        try:
            cost = endpoint_cost(product.value, method, path, params)
            # Spot order endpoints cost weight only when they fail (since 2026-04-02).
            upfront = 0 if cost.free_on_success else cost.weight
            rate_headers = venue.limiter.charge(
                product.value, client, upfront, 0, now, bucket=cost.bucket
            )
        except VenueError as error:
            return Response.error(error)
        try:
            return await self._work(request, route, product, cost, rate_headers, now)
        except VenueError as error:
            if cost.free_on_success and cost.weight:
                # Over the limit now? The failure being reported already is the answer.
                with contextlib.suppress(VenueError):
                    rate_headers = venue.limiter.charge(
                        product.value, client, cost.weight, 0, now, requests=0
                    )
            return Response.error(error, rate_headers)

    async def _work(
        self,
        request: Request,
        route: Route,
        product: Product,
        cost: EndpointCost,
        rate_headers: dict[str, str],
        now: int,
    ) -> Response:
        """Authenticate, count orders per account, run the handler, apply executed faults.

        Raises:
            VenueError: what the client is answered (the caller charges failed weight).
        """
        venue = self.venue
        headers, raw_query, raw_body, params = (
            request.headers,
            request.raw_query,
            request.raw_body,
            request.params,
        )
        key = authenticate(
            venue.keys, route.security, headers, raw_query, raw_body, params, now, product.value
        )
        if cost.orders:
            # Weight counts per IP; orders per account, known once authenticated.
            rate_headers = venue.limiter.charge(
                product.value,
                request.client,
                0,
                cost.orders,
                now,
                account=None if key is None else key.api_key,
                requests=0,
            )
        try:
            payload = route.handler(Call(venue, request, product, now, key))
        except MarketQueryError as error:
            raise VenueError(error.code, error.message) from None
        # An executed fault applies only to a request that did its work (an order placed):
        # the client then learns of a failure. Requests refused earlier leave it armed.
        fault = venue.faults.endpoint(request.path, executed=True)
        if fault is not None:
            faulty = await _apply_fault(fault)
            if faulty is not None:
                return faulty
        return Response.json(payload, headers=rate_headers)


async def _apply_fault(fault: EndpointFault) -> Response | None:
    """Delay, then the fault's error answer (None: the real answer follows the delay)."""
    if fault.delay_s:
        await trio.sleep(fault.delay_s)
    if fault.http_status is None:
        return None
    if fault.code is None:
        return Response(fault.http_status, b"")
    body = {"code": fault.code, "msg": fault.msg or ""}
    return Response.json(body, status=fault.http_status)
