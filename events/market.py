"""Instruments and market data: what strategies ask for and what they receive.

Instrument ids name one tradable thing on one product (:func:`instrument_id`):
``BTCUSDT.BINANCE`` (Spot), ``BTCUSDT-PERP.BINANCE`` (any perpetual, USD-M or COIN-M:
``BTCUSD_PERP`` becomes ``BTCUSD-PERP.BINANCE``), ``BTCUSDT_250926.BINANCE`` (a dated future).
Every market-data event carries the ``client`` it came from (the ``[[clients]]`` name), so
the same symbol on two accounts or environments never mixes.

Prices and sizes are exact Decimals parsed from Binance's strings; times are Binance's
milliseconds (``ts_event_ms``) where Binance gives one. Book events carry levels as
``(price, size)`` pairs; a size of 0 in :class:`BookDeltas` removes the level.
"""

from __future__ import annotations

import enum
from decimal import Decimal
from typing import ClassVar

import attrs

from events.base import Event

__all__ = [
    "VENUE_SUFFIX",
    "Bar",
    "BookDeltas",
    "BookResynced",
    "BookSnapshot",
    "BookStale",
    "BookSyncFailed",
    "DataKind",
    "FundingRate",
    "HistoryChunk",
    "HistoryDone",
    "IndexPrice",
    "Instrument",
    "InstrumentKind",
    "InstrumentSkipped",
    "InstrumentStatus",
    "InstrumentsUnavailable",
    "MarkPrice",
    "MarketStatus",
    "QuoteTick",
    "RequestHistory",
    "SubscribeMarketData",
    "Ticker",
    "TopOfBook",
    "TradeTick",
    "UnsubscribeMarketData",
    "instrument_id",
]

#: The venue part of every instrument id.
VENUE_SUFFIX = ".BINANCE"

Level = tuple[Decimal, Decimal]


def instrument_id(symbol: str, *, perpetual: bool) -> str:
    """The instrument id of a Binance ``symbol``: perpetuals end in ``-PERP`` (a COIN-M
    ``BTCUSD_PERP`` loses its ``_PERP``), dated futures keep their ``_YYMMDD``."""
    if perpetual:
        base = symbol[: -len("_PERP")] if symbol.endswith("_PERP") else symbol
        return f"{base}-PERP{VENUE_SUFFIX}"
    return f"{symbol}{VENUE_SUFFIX}"


class InstrumentKind(enum.Enum):
    SPOT = "SPOT"
    PERPETUAL = "PERPETUAL"
    DATED = "DATED"


class MarketStatus(enum.Enum):
    """Trading status, mapped from Binance's per-product status names."""

    PRE_OPEN = "PRE_OPEN"
    TRADING = "TRADING"
    PAUSE = "PAUSE"
    HALT = "HALT"
    CROSS = "CROSS"
    PRE_CLOSE = "PRE_CLOSE"
    POST_CLOSE = "POST_CLOSE"
    CLOSE = "CLOSE"
    SUSPEND = "SUSPEND"
    NOT_AVAILABLE_FOR_TRADING = "NOT_AVAILABLE_FOR_TRADING"


class DataKind(enum.Enum):
    """What a :class:`SubscribeMarketData` asks for."""

    TRADES = "TRADES"
    QUOTES = "QUOTES"
    BARS = "BARS"
    TICKER = "TICKER"
    MARK_PRICE = "MARK_PRICE"
    INDEX_PRICE = "INDEX_PRICE"
    FUNDING_RATE = "FUNDING_RATE"
    BOOK = "BOOK"


# ------------------------------------------------------------------------------ instruments


@attrs.frozen(kw_only=True)
class Instrument(Event):
    """One tradable instrument as ``exchangeInfo`` defines it (re-published on each reload).

    ``tick_size`` and ``step_size`` come from the ``PRICE_FILTER`` and ``LOT_SIZE`` filters,
    never from the precision fields; ``market_*`` from ``MARKET_LOT_SIZE`` when present.
    ``contract_size`` is 1 except on COIN-M, whose contracts are ``inverse`` (quoted in USD,
    margined in the base asset). ``expiry_ms`` is the delivery time of a dated future.
    Fees are fractions (``0.001`` = 10 bps), from the fee-tier table or Binance's answer.
    """

    TAG: ClassVar[str] = "instrument.definition"
    client: str
    instrument_id: str
    symbol: str
    product: str
    kind: InstrumentKind
    base_asset: str
    quote_asset: str
    settle_asset: str
    status: MarketStatus
    venue_status: str
    tick_size: Decimal
    step_size: Decimal
    price_precision: int
    size_precision: int
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    min_quantity: Decimal | None = None
    max_quantity: Decimal | None = None
    market_min_quantity: Decimal | None = None
    market_max_quantity: Decimal | None = None
    min_notional: Decimal | None = None
    max_notional: Decimal | None = None
    contract_size: Decimal = Decimal(1)
    inverse: bool = False
    expiry_ms: int | None = None
    onboard_ms: int | None = None
    maker_fee: Decimal
    taker_fee: Decimal
    fee_source: str


@attrs.frozen(kw_only=True)
class InstrumentSkipped(Event):
    """A symbol of ``exchangeInfo`` that could not be made an instrument, and why."""

    TAG: ClassVar[str] = "instrument.skipped"
    client: str
    symbol: str
    reason: str


@attrs.frozen(kw_only=True)
class InstrumentsUnavailable(Event):
    """``exchangeInfo`` of ``client`` could not be loaded (``reason``); it is asked again at
    the next reload (instruments already known stay as they were)."""

    TAG: ClassVar[str] = "instrument.unavailable"
    client: str
    reason: str


@attrs.frozen(kw_only=True)
class InstrumentStatus(Event):
    """An instrument's trading status changed (a later poll of ``exchangeInfo`` saw it);
    a symbol gone from ``exchangeInfo`` becomes ``NOT_AVAILABLE_FOR_TRADING``."""

    TAG: ClassVar[str] = "instrument.status"
    client: str
    instrument_id: str
    status: MarketStatus
    venue_status: str
    previous: MarketStatus


# ------------------------------------------------------------------------------- commands


@attrs.frozen(kw_only=True)
class SubscribeMarketData(Event):
    """``subscriber`` wants ``kind`` for ``instrument_id`` from ``client``.

    ``interval``: the bar interval (``1m``, ``1h``...) for BARS. For BOOK: ``depth`` 0 asks
    for the full book (diff stream + REST snapshot, ``snapshot_limit`` levels, default the
    product's maximum), 5/10/20 for partial-depth snapshots; ``speed_ms`` the stream speed
    (default 100 on Spot, 0 = Binance's fastest on futures).
    """

    TAG: ClassVar[str] = "market.subscribe"
    client: str
    subscriber: str
    instrument_id: str
    kind: DataKind
    interval: str | None = None
    depth: int = 0
    speed_ms: int | None = None
    snapshot_limit: int | None = None


@attrs.frozen(kw_only=True)
class UnsubscribeMarketData(Event):
    TAG: ClassVar[str] = "market.unsubscribe"
    client: str
    subscriber: str
    instrument_id: str
    kind: DataKind
    interval: str | None = None


@attrs.frozen(kw_only=True)
class RequestHistory(Event):
    """Bars (``kind`` BARS, with ``interval``) or aggregated trades (``kind`` TRADES) of
    ``instrument_id`` from ``start_ms`` to ``end_ms``, fetched page by page within the
    weight budget; answered by :class:`HistoryChunk` events and one :class:`HistoryDone`."""

    TAG: ClassVar[str] = "market.history_request"
    client: str
    subscriber: str
    request_id: str
    instrument_id: str
    kind: DataKind
    start_ms: int
    end_ms: int
    interval: str | None = None


# ---------------------------------------------------------------------------- market data


@attrs.frozen(kw_only=True)
class TradeTick(Event):
    """A trade (``@trade``) or an aggregated trade (``@aggTrade``, ``aggregated``: the
    ``trade_id`` is the aggregate id). ``aggressor`` is the taker's side (BUY when the buyer
    was not the maker)."""

    TAG: ClassVar[str] = "market.trade"
    client: str
    instrument_id: str
    price: Decimal
    size: Decimal
    aggressor: str
    trade_id: int
    aggregated: bool
    ts_event_ms: int


@attrs.frozen(kw_only=True)
class QuoteTick(Event):
    """Best bid and offer (``@bookTicker``). Spot sends no event time: ``ts_event_ms`` is
    then None and the journal time (``ts_init``) stands in."""

    TAG: ClassVar[str] = "market.quote"
    client: str
    instrument_id: str
    bid_price: Decimal
    bid_size: Decimal
    ask_price: Decimal
    ask_size: Decimal
    update_id: int
    ts_event_ms: int | None = None


@attrs.frozen(kw_only=True)
class Bar(Event):
    """A closed kline."""

    TAG: ClassVar[str] = "market.bar"
    client: str
    instrument_id: str
    interval: str
    open_ms: int
    close_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    quote_volume: Decimal
    trades: int
    taker_buy_volume: Decimal
    taker_buy_quote_volume: Decimal


@attrs.frozen(kw_only=True)
class Ticker(Event):
    """The rolling 24 h ticker (``@ticker``); Spot adds the best bid and ask."""

    TAG: ClassVar[str] = "market.ticker"
    client: str
    instrument_id: str
    last_price: Decimal
    last_size: Decimal
    open: Decimal
    high: Decimal
    low: Decimal
    volume: Decimal
    quote_volume: Decimal
    price_change: Decimal
    price_change_percent: Decimal
    weighted_average_price: Decimal
    open_ms: int
    close_ms: int
    first_trade_id: int
    last_trade_id: int
    trades: int
    ts_event_ms: int
    bid_price: Decimal | None = None
    bid_size: Decimal | None = None
    ask_price: Decimal | None = None
    ask_size: Decimal | None = None


@attrs.frozen(kw_only=True)
class MarkPrice(Event):
    TAG: ClassVar[str] = "market.mark_price"
    client: str
    instrument_id: str
    price: Decimal
    ts_event_ms: int


@attrs.frozen(kw_only=True)
class IndexPrice(Event):
    TAG: ClassVar[str] = "market.index_price"
    client: str
    instrument_id: str
    price: Decimal
    ts_event_ms: int


@attrs.frozen(kw_only=True)
class FundingRate(Event):
    """The current funding rate and the next funding time (``markPriceUpdate``); the
    funding interval is not in the stream (None)."""

    TAG: ClassVar[str] = "market.funding_rate"
    client: str
    instrument_id: str
    rate: Decimal
    next_funding_ms: int
    ts_event_ms: int
    interval_hours: int | None = None


@attrs.frozen(kw_only=True)
class HistoryChunk(Event):
    """One page of a :class:`RequestHistory`: bars or aggregated trades, in time order;
    ``progress`` is how far the request has come (``through_ms`` of ``end_ms``)."""

    TAG: ClassVar[str] = "market.history_chunk"
    client: str
    request_id: str
    instrument_id: str
    bars: tuple[Bar, ...] = ()
    trades: tuple[TradeTick, ...] = ()
    through_ms: int


@attrs.frozen(kw_only=True)
class HistoryDone(Event):
    """A :class:`RequestHistory` ended: ``ok`` with ``count`` items, or the reason it
    could not be completed (``error``)."""

    TAG: ClassVar[str] = "market.history_done"
    client: str
    request_id: str
    instrument_id: str
    count: int
    error: str = ""


# ----------------------------------------------------------------------------------- book


@attrs.frozen(kw_only=True)
class BookSnapshot(Event):
    """The whole book (or the top ``depth`` levels of a partial-depth stream) at
    ``update_id``: bids best first, asks best first."""

    TAG: ClassVar[str] = "book.snapshot"
    client: str
    instrument_id: str
    update_id: int
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    ts_event_ms: int | None = None


@attrs.frozen(kw_only=True)
class BookDeltas(Event):
    """One depth event applied: levels set to an absolute size (0 removes), in Binance's
    order; ``first_update_id``..``update_id`` is the event's ``U``..``u``."""

    TAG: ClassVar[str] = "book.deltas"
    client: str
    instrument_id: str
    first_update_id: int
    update_id: int
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    ts_event_ms: int | None = None


@attrs.frozen(kw_only=True)
class TopOfBook(Event):
    """The best bid and ask after a book change (None: that side is empty)."""

    TAG: ClassVar[str] = "book.top"
    client: str
    instrument_id: str
    update_id: int
    bid_price: Decimal | None = None
    bid_size: Decimal | None = None
    ask_price: Decimal | None = None
    ask_size: Decimal | None = None


@attrs.frozen(kw_only=True)
class BookStale(Event):
    """The book can no longer be trusted (a sequence gap, a failed or empty snapshot, a
    reconnect): stop using it until :class:`BookResynced`."""

    TAG: ClassVar[str] = "book.stale"
    client: str
    instrument_id: str
    reason: str
    update_id: int | None = None


@attrs.frozen(kw_only=True)
class BookResynced(Event):
    """The book is in sync again at ``update_id`` after ``attempts`` snapshots."""

    TAG: ClassVar[str] = "book.resynced"
    client: str
    instrument_id: str
    update_id: int
    attempts: int


@attrs.frozen(kw_only=True)
class BookSyncFailed(Event):
    """Resyncing keeps failing (``attempts`` so far, the last ``reason``); it goes on with
    capped backoff, and the book stays stale."""

    TAG: ClassVar[str] = "book.sync_failed"
    client: str
    instrument_id: str
    attempts: int
    reason: str
