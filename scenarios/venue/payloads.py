"""Binance's exact JSON payloads for market data, built from plain values.

Pure functions: each takes primitives (a product name, a symbol, ``Decimal`` prices and
quantities, integer ids and epoch-millisecond times, ``(price, quantity)`` level tuples) and
returns a dict or list ready for ``orjson.dumps``, shaped exactly as Binance shapes it, so
unmodified clients (ccxt, python-binance) parse the venue's output.

Conventions, following ``binance-protocol.md`` sections 4, 7, 8 and 10:

* ``product`` is ``"spot"``, ``"usdm"`` (USDⓈ-M futures) or ``"coinm"`` (COIN-M futures).
  One builder serves every product that has the payload; it emits that product's keys.
* Prices and quantities are JSON strings padded to the instrument's fixed number of decimals
  (``Precision``); ids, counts and times are JSON integers; flags are JSON booleans. A value
  with more decimals than the instrument allows is rounded half-even, never via ``float``.
* Spot renders every price, quantity and quote amount with 8 decimals (``SPOT_PRECISION``).
  Futures use the symbol's ``pricePrecision``/``quantityPrecision``. Mark, index and settle
  prices and all rates always carry 8 decimals; change percentages carry 3.
* COIN-M quantities are numbers of contracts. Where Binance shows a second amount (``quoteQty``
  on spot and USD-M, ``baseQty``/``baseVolume`` on COIN-M) it is called the *notional* here
  and is formatted with ``Precision.notional``.
* Futures streams that gained ``st`` (symbol type, 1 = USD-M, 2 = COIN-M) in the 2026 CM-UM
  migration carry it; COIN-M payloads carry the ``pair`` as Binance does (``pair`` or ``ps``).
  The pair defaults to the symbol up to its first ``_`` (``BTCUSD_PERP`` -> ``BTCUSD``).
* The venue has no RPI (retail price improvement) orders, so USD-M ``isRPITrade`` is always
  false and ``nq`` (quantity without RPI trades) always equals ``q``.

Every builder raises ``ValueError`` for an unknown product, a product that has no such
payload, or a non-finite value, and ``TypeError`` for a float (or any non-``Decimal``) where a
``Decimal`` belongs.
"""

from __future__ import annotations

import decimal
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Final, Literal

import attrs

__all__ = [
    "CHANGE_PERCENT_DECIMALS",
    "INVALID_JSON",
    "INVALID_REQUEST",
    "INVALID_VALUE_TYPE",
    "MARK_PRICE_DECIMALS",
    "PRODUCTS",
    "RATE_DECIMALS",
    "SPOT_PRECISION",
    "UNKNOWN_PROPERTY",
    "Precision",
    "Product",
    "aggregate_trade_entry",
    "aggregate_trade_event",
    "average_price",
    "book_ticker",
    "book_ticker_event",
    "combined",
    "control_error",
    "control_result",
    "depth_snapshot",
    "depth_update_event",
    "force_order_event",
    "format_decimal",
    "format_levels",
    "funding_info_entry",
    "funding_rate_entry",
    "invalid_json",
    "invalid_request",
    "invalid_value_type",
    "kline_event",
    "kline_row",
    "mark_price_event",
    "mini_ticker_event",
    "open_interest",
    "pair_of",
    "partial_depth_event",
    "ping",
    "premium_index",
    "rate_limit",
    "server_time",
    "ticker_24hr",
    "ticker_24hr_event",
    "ticker_price",
    "trade_entry",
    "trade_event",
    "unknown_property",
    "ws_api_error",
    "ws_api_response",
]

#: One of Binance's three product lines.
Product = Literal["spot", "usdm", "coinm"]
#: Every product name, for validation and tests.
PRODUCTS: Final = ("spot", "usdm", "coinm")

#: A ``(price, quantity)`` order book level.
Level = tuple[Decimal, Decimal]
#: A JSON object as built here (keys are Binance's field names).
JsonObject = dict[str, Any]
#: The id of a stream control or WS-API request: echoed back verbatim.
RequestId = int | str | None

#: Decimals of mark, index and estimated settle prices (``"11793.63104562"``).
MARK_PRICE_DECIMALS: Final = 8
#: Decimals of funding and interest rates and funding caps (``"0.00010000"``).
RATE_DECIMALS: Final = 8
#: Decimals of ``priceChangePercent`` / ``P`` (``"-95.960"``).
CHANGE_PERCENT_DECIMALS: Final = 3

#: Stream control error: ``SET_PROPERTY``/``GET_PROPERTY`` named an unknown property.
UNKNOWN_PROPERTY: Final = 0
#: Stream control error: a property value of the wrong type.
INVALID_VALUE_TYPE: Final = 1
#: Stream control error: a well-formed JSON request that is not a valid request.
INVALID_REQUEST: Final = 2
#: Stream control error: the frame is not JSON.
INVALID_JSON: Final = 3

_FUTURES: Final = ("usdm", "coinm")
_SYMBOL_TYPE: Final = {"usdm": 1, "coinm": 2}


def _non_negative(instance: object, attribute: attrs.Attribute, value: object) -> None:
    if type(value) is not int or value < 0:
        raise ValueError(f"{attribute.name} decimals must be a non-negative int, got {value!r}")


@attrs.frozen(kw_only=True)
class Precision:
    """How many decimals an instrument's payloads show.

    Attributes:
        price: Decimals of prices (spot: 8; futures: the symbol's ``pricePrecision``).
        quantity: Decimals of quantities (spot: 8; futures: ``quantityPrecision``; COIN-M
            quantities are contracts, usually 0 decimals).
        notional: Decimals of the second amount: the quote-asset amount on spot and USD-M
            (``quoteQty``, ``quoteVolume``), the base-asset amount on COIN-M (``baseQty``,
            ``baseVolume``).
    """

    price: int = attrs.field(validator=_non_negative)
    quantity: int = attrs.field(validator=_non_negative)
    notional: int = attrs.field(validator=_non_negative)


#: Spot shows every price, quantity and quote amount with 8 decimals.
SPOT_PRECISION: Final = Precision(price=8, quantity=8, notional=8)


# --- formatting ----------------------------------------------------------------------------


#: Quanta and a context built once: formatting runs for every price on every payload.
_QUANTA: Final = tuple(Decimal(1).scaleb(-places) for places in range(19))
_WIDE_CONTEXT: Final = decimal.Context(prec=100, rounding=decimal.ROUND_HALF_EVEN)


def format_decimal(value: Decimal, decimals: int) -> str:
    """Render a Decimal as Binance does: fixed point, exactly ``decimals`` decimals.

    Never uses exponent notation (``Decimal("1E+3")`` with 2 decimals gives ``"1000.00"``)
    and never renders a negative zero. Extra decimals are rounded half-even.

    Args:
        value: The amount; must be a finite ``Decimal`` (floats are refused).
        decimals: How many digits follow the point; 0 renders an integer string.

    Returns:
        The fixed-point string, e.g. ``"0.01000000"``.

    Raises:
        TypeError: ``value`` is not a ``Decimal``.
        ValueError: ``value`` is not finite or ``decimals`` is negative.
    """
    if type(value) is not Decimal:
        raise TypeError(f"a payload amount must be a Decimal, got {type(value).__name__} {value!r}")
    if not value.is_finite():
        raise ValueError(f"a payload amount must be finite, got {value!r}")
    if type(decimals) is not int or decimals < 0:
        raise ValueError(f"decimals must be a non-negative int, got {decimals!r}")
    exponent = _QUANTA[decimals] if decimals < len(_QUANTA) else Decimal(1).scaleb(-decimals)
    digits_needed = max(value.adjusted(), 0) + decimals + 2
    context = (
        _WIDE_CONTEXT
        if digits_needed <= _WIDE_CONTEXT.prec
        else decimal.Context(prec=digits_needed, rounding=decimal.ROUND_HALF_EVEN)
    )
    quantized = value.quantize(exponent, context=context)
    if quantized.is_zero():
        quantized = abs(quantized)
    return f"{quantized:f}"


def format_levels(levels: Sequence[Level], precision: Precision) -> list[list[str]]:
    """Render order book levels as Binance's ``[["price", "quantity"], ...]`` arrays.

    Args:
        levels: ``(price, quantity)`` pairs in the order they are to appear (bids best
            first, i.e. descending; asks ascending). A quantity of zero means "remove".
        precision: The instrument's decimals.

    Returns:
        A list of two-string lists.
    """
    return [
        [format_decimal(price, precision.price), format_decimal(quantity, precision.quantity)]
        for price, quantity in levels
    ]


def pair_of(symbol: str) -> str:
    """The futures pair of a symbol: everything before the first ``_``.

    Args:
        symbol: ``BTCUSDT``, ``BTCUSDT_250627``, ``BTCUSD_PERP`` ...

    Returns:
        ``BTCUSDT``, ``BTCUSDT``, ``BTCUSD`` ...
    """
    return symbol.split("_", 1)[0]


def _check_product(product: str, allowed: tuple[str, ...]) -> None:
    if product not in PRODUCTS:
        raise ValueError(f"unknown product {product!r}; expected one of {PRODUCTS}")
    if product not in allowed:
        raise ValueError(f"{product!r} has no such payload; only {allowed} do")


def _price(value: Decimal, precision: Precision) -> str:
    return format_decimal(value, precision.price)


def _quantity(value: Decimal, precision: Precision) -> str:
    return format_decimal(value, precision.quantity)


def _notional(value: Decimal, precision: Precision) -> str:
    return format_decimal(value, precision.notional)


def _optional_rate(value: Decimal | None) -> str:
    """A rate, or ``""`` where Binance shows none (COIN-M delivery contracts)."""
    return "" if value is None else format_decimal(value, RATE_DECIMALS)


def _change_figures(
    open_price: Decimal, last_price: Decimal, precision: Precision
) -> tuple[str, str]:
    """``(priceChange, priceChangePercent)`` over a rolling window."""
    change = last_price - open_price
    percent = Decimal(0) if open_price.is_zero() else change * 100 / open_price
    return _price(change, precision), format_decimal(percent, CHANGE_PERCENT_DECIMALS)


# --- REST: general -------------------------------------------------------------------------


def ping() -> JsonObject:
    """``GET /api/v3/ping``, ``/fapi/v1/ping``, ``/dapi/v1/ping``: an empty object."""
    return {}


def server_time(time: int) -> JsonObject:
    """``GET .../time``.

    Args:
        time: Server time, epoch ms.

    Returns:
        ``{"serverTime": time}``.
    """
    return {"serverTime": time}


# --- REST: market data ---------------------------------------------------------------------


def depth_snapshot(
    product: Product,
    *,
    symbol: str,
    last_update_id: int,
    bids: Sequence[Level],
    asks: Sequence[Level],
    event_time: int,
    transaction_time: int,
    precision: Precision,
    pair: str | None = None,
) -> JsonObject:
    """``GET .../depth``: an order book snapshot.

    Spot: ``{lastUpdateId, bids, asks}``. USD-M adds ``E`` and ``T``; COIN-M also adds
    ``symbol`` and ``pair``.

    Args:
        product: The product line.
        symbol: The symbol (shown by COIN-M only).
        last_update_id: The book's update id at the snapshot.
        bids: Bid levels, best (highest) first.
        asks: Ask levels, best (lowest) first.
        event_time: Message output time, epoch ms (futures only).
        transaction_time: Matching-engine time, epoch ms (futures only).
        precision: The instrument's decimals.
        pair: The COIN-M pair; derived from ``symbol`` when omitted.

    Returns:
        The snapshot object.
    """
    _check_product(product, PRODUCTS)
    if product == "spot":
        return {
            "lastUpdateId": last_update_id,
            "bids": format_levels(bids, precision),
            "asks": format_levels(asks, precision),
        }
    payload: JsonObject = {"lastUpdateId": last_update_id}
    if product == "coinm":
        payload["symbol"] = symbol
        payload["pair"] = pair or pair_of(symbol)
    payload["E"] = event_time
    payload["T"] = transaction_time
    payload["bids"] = format_levels(bids, precision)
    payload["asks"] = format_levels(asks, precision)
    return payload


def trade_entry(
    product: Product,
    *,
    trade_id: int,
    price: Decimal,
    quantity: Decimal,
    time: int,
    is_buyer_maker: bool,
    precision: Precision,
    notional: Decimal | None = None,
) -> JsonObject:
    """One element of ``GET .../trades`` or ``GET .../historicalTrades`` (same shape).

    Spot: ``{id, price, qty, quoteQty, time, isBuyerMaker, isBestMatch}``. USD-M replaces
    ``isBestMatch`` with ``isRPITrade``. COIN-M: ``{id, price, qty, baseQty, time,
    isBuyerMaker}``.

    Args:
        product: The product line.
        trade_id: The trade id.
        price: Trade price.
        quantity: Trade quantity (contracts on COIN-M).
        time: Trade time, epoch ms.
        is_buyer_maker: Whether the buyer was the resting (maker) side.
        precision: The instrument's decimals.
        notional: ``quoteQty`` on spot and USD-M (default ``price * quantity``); ``baseQty``
            on COIN-M, where it is required (``contracts * contractSize / price``).

    Returns:
        The trade object.

    Raises:
        ValueError: COIN-M without ``notional``.
    """
    _check_product(product, PRODUCTS)
    if notional is None:
        if product == "coinm":
            raise ValueError("a COIN-M trade needs its notional (baseQty)")
        notional = price * quantity
    payload: JsonObject = {
        "id": trade_id,
        "price": _price(price, precision),
        "qty": _quantity(quantity, precision),
    }
    payload["baseQty" if product == "coinm" else "quoteQty"] = _notional(notional, precision)
    payload["time"] = time
    payload["isBuyerMaker"] = is_buyer_maker
    if product == "spot":
        payload["isBestMatch"] = True
    elif product == "usdm":
        payload["isRPITrade"] = False
    return payload


def aggregate_trade_entry(
    product: Product,
    *,
    aggregate_id: int,
    price: Decimal,
    quantity: Decimal,
    first_trade_id: int,
    last_trade_id: int,
    time: int,
    is_buyer_maker: bool,
    precision: Precision,
) -> JsonObject:
    """One element of ``GET .../aggTrades``.

    ``{a, p, q, f, l, T, m}`` on every product; spot adds ``M`` (always true) and USD-M adds
    ``nq`` (equal to ``q``: the venue has no RPI orders).

    Args:
        product: The product line.
        aggregate_id: The aggregate trade id.
        price: The price shared by the aggregated fills.
        quantity: Their total quantity.
        first_trade_id: First trade id in the aggregate.
        last_trade_id: Last trade id in the aggregate.
        time: Time of the last fill, epoch ms.
        is_buyer_maker: Whether the buyer was the maker.
        precision: The instrument's decimals.

    Returns:
        The aggregate trade object.
    """
    _check_product(product, PRODUCTS)
    payload: JsonObject = {
        "a": aggregate_id,
        "p": _price(price, precision),
        "q": _quantity(quantity, precision),
    }
    if product == "usdm":
        payload["nq"] = payload["q"]
    payload.update(f=first_trade_id, l=last_trade_id, T=time, m=is_buyer_maker)
    if product == "spot":
        payload["M"] = True
    return payload


def kline_row(
    *,
    open_time: int,
    close_time: int,
    open_price: Decimal,
    high_price: Decimal,
    low_price: Decimal,
    close_price: Decimal,
    volume: Decimal,
    notional_volume: Decimal,
    trade_count: int,
    taker_buy_volume: Decimal,
    taker_buy_notional_volume: Decimal,
    precision: Precision,
) -> list[Any]:
    """One element of ``GET .../klines`` (also continuous, mark and index price klines).

    The same 12-element array on every product: ``[openTime, open, high, low, close,
    volume, closeTime, quoteVolume, count, takerBuyVolume, takerBuyQuoteVolume, "0"]``
    (COIN-M: the notional columns are base-asset volumes).

    Args:
        open_time: Kline open time, epoch ms.
        close_time: Kline close time, epoch ms (open time + interval - 1).
        open_price: First trade price.
        high_price: Highest trade price.
        low_price: Lowest trade price.
        close_price: Last trade price.
        volume: Traded quantity.
        notional_volume: Traded notional (quote asset; base asset on COIN-M).
        trade_count: Number of trades.
        taker_buy_volume: Quantity bought by takers.
        taker_buy_notional_volume: Notional bought by takers.
        precision: The instrument's decimals.

    Returns:
        The 12-element row.
    """
    return [
        open_time,
        _price(open_price, precision),
        _price(high_price, precision),
        _price(low_price, precision),
        _price(close_price, precision),
        _quantity(volume, precision),
        close_time,
        _notional(notional_volume, precision),
        trade_count,
        _quantity(taker_buy_volume, precision),
        _notional(taker_buy_notional_volume, precision),
        "0",
    ]


def ticker_24hr(
    product: Product,
    *,
    symbol: str,
    open_price: Decimal,
    high_price: Decimal,
    low_price: Decimal,
    last_price: Decimal,
    last_quantity: Decimal,
    previous_close_price: Decimal,
    bid_price: Decimal,
    bid_quantity: Decimal,
    ask_price: Decimal,
    ask_quantity: Decimal,
    volume: Decimal,
    notional_volume: Decimal,
    weighted_average_price: Decimal,
    open_time: int,
    close_time: int,
    first_trade_id: int,
    last_trade_id: int,
    trade_count: int,
    precision: Precision,
    pair: str | None = None,
) -> JsonObject:
    """``GET .../ticker/24hr`` for one symbol (a list of these for several).

    Spot (``type=FULL``) shows previous close and the best bid and ask; USD-M omits them;
    COIN-M also omits them, adds ``pair`` and shows ``baseVolume`` instead of
    ``quoteVolume``. ``priceChange`` and ``priceChangePercent`` are computed from the open
    and last prices.

    Args:
        product: The product line.
        symbol: The symbol.
        open_price: First price of the window.
        high_price: Highest price of the window.
        low_price: Lowest price of the window.
        last_price: Latest trade price.
        last_quantity: Latest trade quantity.
        previous_close_price: Price of the last trade before the window (spot only).
        bid_price: Best bid price (spot only).
        bid_quantity: Best bid quantity (spot only).
        ask_price: Best ask price (spot only).
        ask_quantity: Best ask quantity (spot only).
        volume: Traded quantity over the window.
        notional_volume: Traded notional over the window.
        weighted_average_price: Volume-weighted average price over the window.
        open_time: Window start, epoch ms.
        close_time: Window end, epoch ms.
        first_trade_id: First trade id in the window (-1 when there was none).
        last_trade_id: Last trade id in the window (-1 when there was none).
        trade_count: Number of trades in the window.
        precision: The instrument's decimals.
        pair: The COIN-M pair; derived from ``symbol`` when omitted.

    Returns:
        The ticker object.
    """
    _check_product(product, PRODUCTS)
    change, change_percent = _change_figures(open_price, last_price, precision)
    payload: JsonObject = {"symbol": symbol}
    if product == "coinm":
        payload["pair"] = pair or pair_of(symbol)
    payload["priceChange"] = change
    payload["priceChangePercent"] = change_percent
    payload["weightedAvgPrice"] = _price(weighted_average_price, precision)
    if product == "spot":
        payload["prevClosePrice"] = _price(previous_close_price, precision)
    payload["lastPrice"] = _price(last_price, precision)
    payload["lastQty"] = _quantity(last_quantity, precision)
    if product == "spot":
        payload["bidPrice"] = _price(bid_price, precision)
        payload["bidQty"] = _quantity(bid_quantity, precision)
        payload["askPrice"] = _price(ask_price, precision)
        payload["askQty"] = _quantity(ask_quantity, precision)
    payload["openPrice"] = _price(open_price, precision)
    payload["highPrice"] = _price(high_price, precision)
    payload["lowPrice"] = _price(low_price, precision)
    payload["volume"] = _quantity(volume, precision)
    payload["baseVolume" if product == "coinm" else "quoteVolume"] = _notional(
        notional_volume, precision
    )
    payload.update(
        openTime=open_time,
        closeTime=close_time,
        firstId=first_trade_id,
        lastId=last_trade_id,
        count=trade_count,
    )
    return payload


def ticker_price(
    product: Product,
    *,
    symbol: str,
    price: Decimal,
    time: int,
    precision: Precision,
    pair: str | None = None,
) -> JsonObject:
    """``GET /api/v3/ticker/price``, ``/fapi/v2/ticker/price``, ``/dapi/v1/ticker/price``.

    Spot: ``{symbol, price}``; USD-M adds ``time``; COIN-M: ``{symbol, ps, price, time}``.

    Args:
        product: The product line.
        symbol: The symbol.
        price: Latest trade price.
        time: Time of that price, epoch ms (futures only).
        precision: The instrument's decimals.
        pair: The COIN-M pair (key ``ps``); derived from ``symbol`` when omitted.

    Returns:
        The price ticker object.
    """
    _check_product(product, PRODUCTS)
    payload: JsonObject = {"symbol": symbol}
    if product == "coinm":
        payload["ps"] = pair or pair_of(symbol)
    payload["price"] = _price(price, precision)
    if product != "spot":
        payload["time"] = time
    return payload


def book_ticker(
    product: Product,
    *,
    symbol: str,
    last_update_id: int,
    bid_price: Decimal,
    bid_quantity: Decimal,
    ask_price: Decimal,
    ask_quantity: Decimal,
    time: int,
    precision: Precision,
    pair: str | None = None,
) -> JsonObject:
    """``GET .../ticker/bookTicker``: the best bid and ask.

    Spot: ``{symbol, bidPrice, bidQty, askPrice, askQty}``; USD-M adds ``time``; COIN-M
    also shows ``lastUpdateId`` and ``pair``.

    Args:
        product: The product line.
        symbol: The symbol.
        last_update_id: The book's update id (shown by COIN-M only).
        bid_price: Best bid price.
        bid_quantity: Quantity at the best bid.
        ask_price: Best ask price.
        ask_quantity: Quantity at the best ask.
        time: Matching-engine time, epoch ms (futures only).
        precision: The instrument's decimals.
        pair: The COIN-M pair; derived from ``symbol`` when omitted.

    Returns:
        The book ticker object.
    """
    _check_product(product, PRODUCTS)
    payload: JsonObject = {}
    if product == "coinm":
        payload["lastUpdateId"] = last_update_id
    payload["symbol"] = symbol
    if product == "coinm":
        payload["pair"] = pair or pair_of(symbol)
    payload["bidPrice"] = _price(bid_price, precision)
    payload["bidQty"] = _quantity(bid_quantity, precision)
    payload["askPrice"] = _price(ask_price, precision)
    payload["askQty"] = _quantity(ask_quantity, precision)
    if product != "spot":
        payload["time"] = time
    return payload


def average_price(
    *, minutes: int, price: Decimal, close_time: int, precision: Precision
) -> JsonObject:
    """``GET /api/v3/avgPrice`` (spot only).

    Args:
        minutes: The averaging window in minutes (Binance: 5).
        price: The average price.
        close_time: Time of the last trade in the window, epoch ms.
        precision: The instrument's decimals.

    Returns:
        ``{mins, price, closeTime}``.
    """
    return {"mins": minutes, "price": _price(price, precision), "closeTime": close_time}


def premium_index(
    product: Product,
    *,
    symbol: str,
    mark_price: Decimal,
    index_price: Decimal,
    estimated_settle_price: Decimal,
    last_funding_rate: Decimal | None,
    interest_rate: Decimal | None,
    next_funding_time: int,
    time: int,
    pair: str | None = None,
) -> JsonObject:
    """``GET /fapi/v1/premiumIndex`` / ``/dapi/v1/premiumIndex`` for one symbol (futures).

    Prices and rates carry 8 decimals. COIN-M adds ``pair``; for its delivery contracts
    Binance shows ``""`` for both rates and ``0`` for ``nextFundingTime``.

    Args:
        product: ``"usdm"`` or ``"coinm"``.
        symbol: The symbol.
        mark_price: Mark price.
        index_price: Index price.
        estimated_settle_price: Estimated settle price.
        last_funding_rate: Latest funding rate; ``None`` renders ``""`` (delivery).
        interest_rate: Interest rate; ``None`` renders ``""`` (delivery).
        next_funding_time: Next funding time, epoch ms (0 for delivery).
        time: Update time, epoch ms.
        pair: The COIN-M pair; derived from ``symbol`` when omitted.

    Returns:
        The premium index object.
    """
    _check_product(product, _FUTURES)
    payload: JsonObject = {"symbol": symbol}
    if product == "coinm":
        payload["pair"] = pair or pair_of(symbol)
    payload.update(
        markPrice=format_decimal(mark_price, MARK_PRICE_DECIMALS),
        indexPrice=format_decimal(index_price, MARK_PRICE_DECIMALS),
        estimatedSettlePrice=format_decimal(estimated_settle_price, MARK_PRICE_DECIMALS),
        lastFundingRate=_optional_rate(last_funding_rate),
        interestRate=_optional_rate(interest_rate),
        nextFundingTime=next_funding_time,
        time=time,
    )
    return payload


def funding_rate_entry(
    product: Product,
    *,
    symbol: str,
    funding_rate: Decimal,
    funding_time: int,
    mark_price: Decimal,
) -> JsonObject:
    """One element of ``GET /fapi/v1/fundingRate`` / ``/dapi/v1/fundingRate`` (futures).

    USD-M: ``{symbol, fundingRate, fundingTime, markPrice}``; COIN-M: ``{symbol,
    fundingTime, fundingRate}``.

    Args:
        product: ``"usdm"`` or ``"coinm"``.
        symbol: The symbol.
        funding_rate: The rate charged at ``funding_time``.
        funding_time: Funding time, epoch ms.
        mark_price: Mark price at the funding (USD-M only).

    Returns:
        The funding rate object.
    """
    _check_product(product, _FUTURES)
    rate = format_decimal(funding_rate, RATE_DECIMALS)
    if product == "coinm":
        return {"symbol": symbol, "fundingTime": funding_time, "fundingRate": rate}
    return {
        "symbol": symbol,
        "fundingRate": rate,
        "fundingTime": funding_time,
        "markPrice": format_decimal(mark_price, MARK_PRICE_DECIMALS),
    }


def funding_info_entry(
    *,
    symbol: str,
    adjusted_funding_rate_cap: Decimal,
    adjusted_funding_rate_floor: Decimal,
    funding_interval_hours: int,
    disclaimer: bool = False,
) -> JsonObject:
    """One element of ``GET /fapi/v1/fundingInfo`` / ``/dapi/v1/fundingInfo`` (same shape).

    Args:
        symbol: The symbol.
        adjusted_funding_rate_cap: Funding rate cap.
        adjusted_funding_rate_floor: Funding rate floor.
        funding_interval_hours: Hours between fundings.
        disclaimer: Binance's disclaimer flag.

    Returns:
        ``{symbol, adjustedFundingRateCap, adjustedFundingRateFloor, fundingIntervalHours,
        disclaimer}``.
    """
    return {
        "symbol": symbol,
        "adjustedFundingRateCap": format_decimal(adjusted_funding_rate_cap, RATE_DECIMALS),
        "adjustedFundingRateFloor": format_decimal(adjusted_funding_rate_floor, RATE_DECIMALS),
        "fundingIntervalHours": funding_interval_hours,
        "disclaimer": disclaimer,
    }


def open_interest(
    product: Product,
    *,
    symbol: str,
    open_interest: Decimal,
    time: int,
    precision: Precision,
    pair: str | None = None,
    contract_type: str | None = None,
) -> JsonObject:
    """``GET /fapi/v1/openInterest`` / ``/dapi/v1/openInterest`` (futures).

    USD-M: ``{openInterest, symbol, time}``; COIN-M: ``{symbol, pair, openInterest,
    contractType, time}``.

    Args:
        product: ``"usdm"`` or ``"coinm"``.
        symbol: The symbol.
        open_interest: Open interest (contracts on COIN-M).
        time: Time, epoch ms.
        precision: The instrument's decimals (quantity decimals apply).
        pair: The COIN-M pair; derived from ``symbol`` when omitted.
        contract_type: The COIN-M contract type; ``PERPETUAL`` for a ``*_PERP`` symbol
            when omitted, required otherwise.

    Returns:
        The open interest object.

    Raises:
        ValueError: A COIN-M delivery symbol without ``contract_type``.
    """
    _check_product(product, _FUTURES)
    amount = _quantity(open_interest, precision)
    if product == "usdm":
        return {"openInterest": amount, "symbol": symbol, "time": time}
    if contract_type is None:
        if not symbol.endswith("_PERP"):
            raise ValueError(f"the contract type of {symbol!r} must be given")
        contract_type = "PERPETUAL"
    return {
        "symbol": symbol,
        "pair": pair or pair_of(symbol),
        "openInterest": amount,
        "contractType": contract_type,
        "time": time,
    }


# --- streams -------------------------------------------------------------------------------


def combined(stream: str, data: Any) -> JsonObject:
    """Wrap an event as a combined stream (``/stream?streams=...``) delivers it.

    Args:
        stream: The stream name as subscribed, e.g. ``"btcusdt@aggTrade"``.
        data: The event payload.

    Returns:
        ``{"stream": stream, "data": data}``.
    """
    return {"stream": stream, "data": data}


def depth_update_event(
    product: Product,
    *,
    symbol: str,
    event_time: int,
    transaction_time: int,
    first_update_id: int,
    final_update_id: int,
    previous_final_update_id: int,
    bids: Sequence[Level],
    asks: Sequence[Level],
    precision: Precision,
    pair: str | None = None,
) -> JsonObject:
    """A diff depth event (``<symbol>@depth[@100ms|@500ms]``).

    Spot: ``{e, E, s, U, u, b, a}``. Futures: ``{e, E, T, s, ps, st, U, u, pu, b, a}``;
    clients chain spot on ``U == previous u + 1`` and futures on ``pu == previous u``.

    Args:
        product: The product line.
        symbol: The symbol.
        event_time: Event time, epoch ms.
        transaction_time: Matching-engine time, epoch ms (futures only).
        first_update_id: ``U``, the first update id in the event.
        final_update_id: ``u``, the last update id in the event.
        previous_final_update_id: ``pu``, the previous event's ``u`` (futures only).
        bids: Changed bid levels (absolute quantities; zero removes the level).
        asks: Changed ask levels.
        precision: The instrument's decimals.
        pair: The futures pair; derived from ``symbol`` when omitted.

    Returns:
        The ``depthUpdate`` event.
    """
    _check_product(product, PRODUCTS)
    payload: JsonObject = {"e": "depthUpdate", "E": event_time}
    if product == "spot":
        payload["s"] = symbol
    else:
        payload.update(
            T=transaction_time, s=symbol, ps=pair or pair_of(symbol), st=_SYMBOL_TYPE[product]
        )
    payload["U"] = first_update_id
    payload["u"] = final_update_id
    if product != "spot":
        payload["pu"] = previous_final_update_id
    payload["b"] = format_levels(bids, precision)
    payload["a"] = format_levels(asks, precision)
    return payload


def partial_depth_event(
    product: Product,
    *,
    symbol: str,
    event_time: int,
    transaction_time: int,
    first_update_id: int,
    final_update_id: int,
    previous_final_update_id: int,
    bids: Sequence[Level],
    asks: Sequence[Level],
    precision: Precision,
    pair: str | None = None,
) -> JsonObject:
    """A partial book depth event (``<symbol>@depth5|10|20[...]``): the top N levels.

    Spot sends a bare snapshot ``{lastUpdateId, bids, asks}`` (``lastUpdateId`` is
    ``final_update_id``; the other ids and times are not shown). Futures send a
    ``depthUpdate``-shaped object, identical to ``depth_update_event``, that is still a
    snapshot of the top levels rather than a diff.

    Args:
        product: The product line.
        symbol: The symbol (futures only).
        event_time: Event time, epoch ms (futures only).
        transaction_time: Matching-engine time, epoch ms (futures only).
        first_update_id: ``U`` (futures only).
        final_update_id: ``u``; spot's ``lastUpdateId``.
        previous_final_update_id: ``pu`` (futures only).
        bids: The top bid levels, best first.
        asks: The top ask levels, best first.
        precision: The instrument's decimals.
        pair: The futures pair; derived from ``symbol`` when omitted.

    Returns:
        The partial depth payload.
    """
    _check_product(product, PRODUCTS)
    if product == "spot":
        return {
            "lastUpdateId": final_update_id,
            "bids": format_levels(bids, precision),
            "asks": format_levels(asks, precision),
        }
    return depth_update_event(
        product,
        symbol=symbol,
        event_time=event_time,
        transaction_time=transaction_time,
        first_update_id=first_update_id,
        final_update_id=final_update_id,
        previous_final_update_id=previous_final_update_id,
        bids=bids,
        asks=asks,
        precision=precision,
        pair=pair,
    )


def trade_event(
    product: Product,
    *,
    symbol: str,
    event_time: int,
    trade_id: int,
    price: Decimal,
    quantity: Decimal,
    trade_time: int,
    is_buyer_maker: bool,
    precision: Precision,
) -> JsonObject:
    """A trade stream event (``<symbol>@trade``).

    Spot: ``{e, E, s, t, p, q, T, m, M}`` (``M`` is always true; the buyer and seller
    order ids ``b``/``a`` were removed by Binance). Futures: the same without ``M``; the
    futures docs publish no ``@trade`` stream, so this follows the shape the reference
    fixture derives from the aggTrade example.

    Args:
        product: The product line.
        symbol: The symbol.
        event_time: Event time, epoch ms.
        trade_id: The trade id.
        price: Trade price.
        quantity: Trade quantity.
        trade_time: Trade time, epoch ms.
        is_buyer_maker: Whether the buyer was the maker.
        precision: The instrument's decimals.

    Returns:
        The ``trade`` event.
    """
    _check_product(product, PRODUCTS)
    payload: JsonObject = {
        "e": "trade",
        "E": event_time,
        "s": symbol,
        "t": trade_id,
        "p": _price(price, precision),
        "q": _quantity(quantity, precision),
        "T": trade_time,
        "m": is_buyer_maker,
    }
    if product == "spot":
        payload["M"] = True
    return payload


def aggregate_trade_event(
    product: Product,
    *,
    symbol: str,
    event_time: int,
    aggregate_id: int,
    price: Decimal,
    quantity: Decimal,
    first_trade_id: int,
    last_trade_id: int,
    trade_time: int,
    is_buyer_maker: bool,
    precision: Precision,
) -> JsonObject:
    """An aggregate trade event (``<symbol>@aggTrade``).

    Spot: ``{e, E, s, a, p, q, f, l, T, m, M}``. Futures: no ``M``, plus ``st``; USD-M also
    ``nq`` (equal to ``q``).

    Args:
        product: The product line.
        symbol: The symbol.
        event_time: Event time, epoch ms.
        aggregate_id: The aggregate trade id.
        price: The price shared by the aggregated fills.
        quantity: Their total quantity.
        first_trade_id: First trade id in the aggregate.
        last_trade_id: Last trade id in the aggregate.
        trade_time: Time of the last fill, epoch ms.
        is_buyer_maker: Whether the buyer was the maker.
        precision: The instrument's decimals.

    Returns:
        The ``aggTrade`` event.
    """
    _check_product(product, PRODUCTS)
    price_text = _price(price, precision)
    quantity_text = _quantity(quantity, precision)
    if product == "spot":
        return {
            "e": "aggTrade",
            "E": event_time,
            "s": symbol,
            "a": aggregate_id,
            "p": price_text,
            "q": quantity_text,
            "f": first_trade_id,
            "l": last_trade_id,
            "T": trade_time,
            "m": is_buyer_maker,
            "M": True,
        }
    payload: JsonObject = {
        "e": "aggTrade",
        "E": event_time,
        "a": aggregate_id,
        "s": symbol,
        "p": price_text,
        "q": quantity_text,
    }
    if product == "usdm":
        payload["nq"] = quantity_text
    payload.update(
        f=first_trade_id,
        l=last_trade_id,
        T=trade_time,
        m=is_buyer_maker,
        st=_SYMBOL_TYPE[product],
    )
    return payload


def book_ticker_event(
    product: Product,
    *,
    symbol: str,
    update_id: int,
    event_time: int,
    transaction_time: int,
    bid_price: Decimal,
    bid_quantity: Decimal,
    ask_price: Decimal,
    ask_quantity: Decimal,
    precision: Precision,
    pair: str | None = None,
) -> JsonObject:
    """A best bid/ask event (``<symbol>@bookTicker``).

    Spot: ``{u, s, b, B, a, A}`` with no event type or time. Futures: ``{e, u, E, T, s,
    b, B, a, A, st, ps}``.

    Args:
        product: The product line.
        symbol: The symbol.
        update_id: The book's update id.
        event_time: Event time, epoch ms (futures only).
        transaction_time: Matching-engine time, epoch ms (futures only).
        bid_price: Best bid price.
        bid_quantity: Quantity at the best bid.
        ask_price: Best ask price.
        ask_quantity: Quantity at the best ask.
        precision: The instrument's decimals.
        pair: The futures pair; derived from ``symbol`` when omitted.

    Returns:
        The book ticker event.
    """
    _check_product(product, PRODUCTS)
    quotes = {
        "b": _price(bid_price, precision),
        "B": _quantity(bid_quantity, precision),
        "a": _price(ask_price, precision),
        "A": _quantity(ask_quantity, precision),
    }
    if product == "spot":
        return {"u": update_id, "s": symbol, **quotes}
    return {
        "e": "bookTicker",
        "u": update_id,
        "E": event_time,
        "T": transaction_time,
        "s": symbol,
        **quotes,
        "st": _SYMBOL_TYPE[product],
        "ps": pair or pair_of(symbol),
    }


def kline_event(
    *,
    symbol: str,
    event_time: int,
    interval: str,
    open_time: int,
    close_time: int,
    first_trade_id: int,
    last_trade_id: int,
    open_price: Decimal,
    close_price: Decimal,
    high_price: Decimal,
    low_price: Decimal,
    volume: Decimal,
    trade_count: int,
    is_closed: bool,
    notional_volume: Decimal,
    taker_buy_volume: Decimal,
    taker_buy_notional_volume: Decimal,
    precision: Precision,
) -> JsonObject:
    """A kline event (``<symbol>@kline_<interval>``), the same shape on every product.

    ``{e, E, s, k: {t, T, s, i, f, L, o, c, h, l, v, n, x, q, V, Q, B}}``; ``B`` is
    Binance's ignored field, always ``"0"``.

    Args:
        symbol: The symbol.
        event_time: Event time, epoch ms.
        interval: The interval name, e.g. ``"1m"``.
        open_time: Kline open time, epoch ms.
        close_time: Kline close time, epoch ms.
        first_trade_id: First trade id in the kline (-1 when none).
        last_trade_id: Last trade id in the kline (-1 when none).
        open_price: First trade price.
        close_price: Last trade price so far.
        high_price: Highest trade price.
        low_price: Lowest trade price.
        volume: Traded quantity.
        trade_count: Number of trades.
        is_closed: Whether this kline is final.
        notional_volume: Traded notional.
        taker_buy_volume: Quantity bought by takers.
        taker_buy_notional_volume: Notional bought by takers.
        precision: The instrument's decimals.

    Returns:
        The ``kline`` event.
    """
    return {
        "e": "kline",
        "E": event_time,
        "s": symbol,
        "k": {
            "t": open_time,
            "T": close_time,
            "s": symbol,
            "i": interval,
            "f": first_trade_id,
            "L": last_trade_id,
            "o": _price(open_price, precision),
            "c": _price(close_price, precision),
            "h": _price(high_price, precision),
            "l": _price(low_price, precision),
            "v": _quantity(volume, precision),
            "n": trade_count,
            "x": is_closed,
            "q": _notional(notional_volume, precision),
            "V": _quantity(taker_buy_volume, precision),
            "Q": _notional(taker_buy_notional_volume, precision),
            "B": "0",
        },
    }


def ticker_24hr_event(
    product: Product,
    *,
    symbol: str,
    event_time: int,
    open_price: Decimal,
    high_price: Decimal,
    low_price: Decimal,
    last_price: Decimal,
    last_quantity: Decimal,
    previous_close_price: Decimal,
    bid_price: Decimal,
    bid_quantity: Decimal,
    ask_price: Decimal,
    ask_quantity: Decimal,
    volume: Decimal,
    notional_volume: Decimal,
    weighted_average_price: Decimal,
    open_time: int,
    close_time: int,
    first_trade_id: int,
    last_trade_id: int,
    trade_count: int,
    precision: Precision,
    pair: str | None = None,
) -> JsonObject:
    """A rolling 24h ticker event (``<symbol>@ticker``).

    Spot: ``{e, E, s, p, P, w, x, c, Q, b, B, a, A, o, h, l, v, q, O, C, F, L, n}``.
    Futures omit ``x``, ``b``, ``B``, ``a``, ``A`` and add ``st``; COIN-M also ``ps``.

    Args:
        product: The product line.
        symbol: The symbol.
        event_time: Event time, epoch ms.
        open_price: First price of the window.
        high_price: Highest price of the window.
        low_price: Lowest price of the window.
        last_price: Latest trade price.
        last_quantity: Latest trade quantity.
        previous_close_price: Price of the last trade before the window (spot only).
        bid_price: Best bid price (spot only).
        bid_quantity: Best bid quantity (spot only).
        ask_price: Best ask price (spot only).
        ask_quantity: Best ask quantity (spot only).
        volume: Traded quantity over the window.
        notional_volume: Traded notional over the window.
        weighted_average_price: Volume-weighted average price.
        open_time: Window start, epoch ms.
        close_time: Window end, epoch ms.
        first_trade_id: First trade id in the window.
        last_trade_id: Last trade id in the window.
        trade_count: Number of trades in the window.
        precision: The instrument's decimals.
        pair: The COIN-M pair; derived from ``symbol`` when omitted.

    Returns:
        The ``24hrTicker`` event.
    """
    _check_product(product, PRODUCTS)
    change, change_percent = _change_figures(open_price, last_price, precision)
    payload: JsonObject = {"e": "24hrTicker", "E": event_time, "s": symbol}
    if product == "coinm":
        payload["ps"] = pair or pair_of(symbol)
    payload.update(p=change, P=change_percent, w=_price(weighted_average_price, precision))
    if product == "spot":
        payload["x"] = _price(previous_close_price, precision)
    payload["c"] = _price(last_price, precision)
    payload["Q"] = _quantity(last_quantity, precision)
    if product == "spot":
        payload["b"] = _price(bid_price, precision)
        payload["B"] = _quantity(bid_quantity, precision)
        payload["a"] = _price(ask_price, precision)
        payload["A"] = _quantity(ask_quantity, precision)
    payload.update(
        o=_price(open_price, precision),
        h=_price(high_price, precision),
        l=_price(low_price, precision),
        v=_quantity(volume, precision),
        q=_notional(notional_volume, precision),
        O=open_time,
        C=close_time,
        F=first_trade_id,
        L=last_trade_id,
        n=trade_count,
    )
    if product != "spot":
        payload["st"] = _SYMBOL_TYPE[product]
    return payload


def mini_ticker_event(
    product: Product,
    *,
    symbol: str,
    event_time: int,
    open_price: Decimal,
    high_price: Decimal,
    low_price: Decimal,
    last_price: Decimal,
    volume: Decimal,
    notional_volume: Decimal,
    precision: Precision,
    pair: str | None = None,
) -> JsonObject:
    """A rolling 24h mini ticker event (``<symbol>@miniTicker``).

    Spot: ``{e, E, s, c, o, h, l, v, q}``; futures add ``st``; COIN-M also ``ps``.

    Args:
        product: The product line.
        symbol: The symbol.
        event_time: Event time, epoch ms.
        open_price: First price of the window.
        high_price: Highest price of the window.
        low_price: Lowest price of the window.
        last_price: Latest trade price.
        volume: Traded quantity over the window.
        notional_volume: Traded notional over the window.
        precision: The instrument's decimals.
        pair: The COIN-M pair; derived from ``symbol`` when omitted.

    Returns:
        The ``24hrMiniTicker`` event.
    """
    _check_product(product, PRODUCTS)
    payload: JsonObject = {"e": "24hrMiniTicker", "E": event_time, "s": symbol}
    if product == "coinm":
        payload["ps"] = pair or pair_of(symbol)
    payload.update(
        c=_price(last_price, precision),
        o=_price(open_price, precision),
        h=_price(high_price, precision),
        l=_price(low_price, precision),
        v=_quantity(volume, precision),
        q=_notional(notional_volume, precision),
    )
    if product != "spot":
        payload["st"] = _SYMBOL_TYPE[product]
    return payload


def mark_price_event(
    product: Product,
    *,
    symbol: str,
    event_time: int,
    mark_price: Decimal,
    index_price: Decimal,
    estimated_settle_price: Decimal,
    funding_rate: Decimal | None,
    next_funding_time: int,
) -> JsonObject:
    """A mark price event (``<symbol>@markPrice[@1s]``; futures only).

    ``{e, E, s, p, i, P, r, T, st}`` on both futures products; prices and the rate carry
    8 decimals. COIN-M delivery contracts show ``r: ""`` and ``T: 0``.

    Args:
        product: ``"usdm"`` or ``"coinm"``.
        symbol: The symbol.
        event_time: Event time, epoch ms.
        mark_price: Mark price.
        index_price: Index price.
        estimated_settle_price: Estimated settle price.
        funding_rate: Current funding rate; ``None`` renders ``""`` (delivery).
        next_funding_time: Next funding time, epoch ms (0 for delivery).

    Returns:
        The ``markPriceUpdate`` event.
    """
    _check_product(product, _FUTURES)
    return {
        "e": "markPriceUpdate",
        "E": event_time,
        "s": symbol,
        "p": format_decimal(mark_price, MARK_PRICE_DECIMALS),
        "i": format_decimal(index_price, MARK_PRICE_DECIMALS),
        "P": format_decimal(estimated_settle_price, MARK_PRICE_DECIMALS),
        "r": _optional_rate(funding_rate),
        "T": next_funding_time,
        "st": _SYMBOL_TYPE[product],
    }


def force_order_event(
    product: Product,
    *,
    symbol: str,
    event_time: int,
    side: str,
    quantity: Decimal,
    price: Decimal,
    average_price: Decimal,
    last_filled_quantity: Decimal,
    filled_quantity: Decimal,
    trade_time: int,
    precision: Precision,
    order_type: str = "LIMIT",
    time_in_force: str = "IOC",
    status: str = "FILLED",
    pair: str | None = None,
) -> JsonObject:
    """A liquidation order event (``<symbol>@forceOrder``, ``!forceOrder@arr``; futures).

    ``{e, E, o: {s, S, o, f, q, p, ap, X, l, z, T}}``; COIN-M adds ``ps`` to ``o``.

    Args:
        product: ``"usdm"`` or ``"coinm"``.
        symbol: The symbol.
        event_time: Event time, epoch ms.
        side: ``"BUY"`` or ``"SELL"``.
        quantity: Original quantity.
        price: Order price.
        average_price: Average fill price.
        last_filled_quantity: Quantity of the latest fill.
        filled_quantity: Accumulated filled quantity.
        trade_time: Time of the latest fill, epoch ms.
        precision: The instrument's decimals.
        order_type: Order type (Binance: ``LIMIT``).
        time_in_force: Time in force (Binance: ``IOC``).
        status: Order status (Binance: ``FILLED``).
        pair: The COIN-M pair; derived from ``symbol`` when omitted.

    Returns:
        The ``forceOrder`` event.
    """
    _check_product(product, _FUTURES)
    order: JsonObject = {"s": symbol}
    if product == "coinm":
        order["ps"] = pair or pair_of(symbol)
    order.update(
        S=side,
        o=order_type,
        f=time_in_force,
        q=_quantity(quantity, precision),
        p=_price(price, precision),
        ap=_price(average_price, precision),
        X=status,
        l=_quantity(last_filled_quantity, precision),
        z=_quantity(filled_quantity, precision),
        T=trade_time,
    )
    return {"e": "forceOrder", "E": event_time, "o": order}


# --- stream control replies ----------------------------------------------------------------


def control_result(request_id: RequestId, result: bool | list[str] | None = None) -> JsonObject:
    """The reply to a stream control request.

    ``SUBSCRIBE``, ``UNSUBSCRIBE`` and ``SET_PROPERTY`` reply ``null``;
    ``LIST_SUBSCRIPTIONS`` replies the stream names; ``GET_PROPERTY`` the property value.

    Args:
        request_id: The request's ``id``, echoed verbatim.
        result: ``None``, the list of stream names, or a property value.

    Returns:
        ``{"result": result, "id": request_id}``.
    """
    return {"result": result, "id": request_id}


def control_error(request_id: RequestId, code: int, message: str) -> JsonObject:
    """An error reply to a stream control request.

    Args:
        request_id: The request's ``id`` (``None`` when it could not be read).
        code: ``UNKNOWN_PROPERTY``, ``INVALID_VALUE_TYPE``, ``INVALID_REQUEST`` or
            ``INVALID_JSON``.
        message: Binance's message text.

    Returns:
        ``{"error": {"code": code, "msg": message}, "id": request_id}``.
    """
    return {"error": {"code": code, "msg": message}, "id": request_id}


def invalid_request(request_id: RequestId, reason: str) -> JsonObject:
    """Error 2: a JSON request that is not a valid control request.

    Args:
        request_id: The request's ``id``.
        reason: What is wrong, as Binance words it, e.g. ``"invalid stream"``,
            ``"request ID must be an unsigned integer"``, ``"too many parameters"``.

    Returns:
        The error reply with message ``"Invalid request: <reason>"``.
    """
    return control_error(request_id, INVALID_REQUEST, f"Invalid request: {reason}")


def invalid_json(reason: str) -> JsonObject:
    """Error 3: the frame is not JSON, so no id could be read.

    Args:
        reason: The parser's complaint, e.g. ``"expected value at line 1 column 1"``.

    Returns:
        The error reply with message ``"Invalid JSON: <reason>"`` and a null id.
    """
    return control_error(None, INVALID_JSON, f"Invalid JSON: {reason}")


def unknown_property(request_id: RequestId) -> JsonObject:
    """Error 0: ``SET_PROPERTY``/``GET_PROPERTY`` named a property other than ``combined``.

    Args:
        request_id: The request's ``id``.

    Returns:
        The error reply with message ``"Unknown property"``.
    """
    return control_error(request_id, UNKNOWN_PROPERTY, "Unknown property")


def invalid_value_type(request_id: RequestId) -> JsonObject:
    """Error 1: ``SET_PROPERTY combined`` with a value that is not a boolean.

    Args:
        request_id: The request's ``id``.

    Returns:
        The error reply with message ``"Invalid value type: expected Boolean"``.
    """
    return control_error(request_id, INVALID_VALUE_TYPE, "Invalid value type: expected Boolean")


# --- WebSocket API envelope ----------------------------------------------------------------


def rate_limit(
    *, rate_limit_type: str, interval: str, interval_number: int, limit: int, count: int
) -> JsonObject:
    """One element of a WS-API ``rateLimits`` array.

    Args:
        rate_limit_type: ``"REQUEST_WEIGHT"``, ``"ORDERS"`` or ``"RAW_REQUESTS"``.
        interval: ``"SECOND"``, ``"MINUTE"`` or ``"DAY"``.
        interval_number: How many intervals the window spans.
        limit: The limit over the window.
        count: Usage so far in the window.

    Returns:
        ``{rateLimitType, interval, intervalNum, limit, count}``.
    """
    return {
        "rateLimitType": rate_limit_type,
        "interval": interval,
        "intervalNum": interval_number,
        "limit": limit,
        "count": count,
    }


def ws_api_response(
    request_id: RequestId,
    result: Any,
    *,
    rate_limits: Sequence[JsonObject] | None = None,
    status: int = 200,
) -> JsonObject:
    """A successful WS-API response.

    Args:
        request_id: The request's ``id``, echoed verbatim.
        result: The method's result object or array (the REST body).
        rate_limits: ``rate_limit`` elements; ``None`` omits the key (as Binance does for
            ``returnRateLimits=false``).
        status: The HTTP-like status (200).

    Returns:
        ``{"id", "status", "result"[, "rateLimits"]}``.
    """
    payload: JsonObject = {"id": request_id, "status": status, "result": result}
    if rate_limits is not None:
        payload["rateLimits"] = list(rate_limits)
    return payload


def ws_api_error(
    request_id: RequestId,
    *,
    status: int,
    code: int,
    message: str,
    data: JsonObject | None = None,
    rate_limits: Sequence[JsonObject] | None = None,
) -> JsonObject:
    """A failed WS-API response: ``result`` is replaced by ``error``.

    Args:
        request_id: The request's ``id``, echoed verbatim (``None`` if unreadable).
        status: The HTTP-like status (400, 403, 409, 418, 429, 5xx).
        code: Binance's error code, e.g. ``-2010``.
        message: Binance's error message.
        data: Extra error data, e.g. ``{"retryAfter": ms}`` on 418/429; ``None`` omits it.
        rate_limits: ``rate_limit`` elements; ``None`` omits the key.

    Returns:
        ``{"id", "status", "error": {"code", "msg"[, "data"]}[, "rateLimits"]}``.
    """
    error: JsonObject = {"code": code, "msg": message}
    if data is not None:
        error["data"] = data
    payload: JsonObject = {"id": request_id, "status": status, "error": error}
    if rate_limits is not None:
        payload["rateLimits"] = list(rate_limits)
    return payload
