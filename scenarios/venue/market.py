"""One instrument's public market: order book, trades, klines, tickers and funding.

A :class:`MarketState` is a pure, synchronous and deterministic model. Time only enters as an
explicit ``now_ms`` argument and randomness only from the ``random.Random`` the caller seeds,
so the same seed and the same calls give the same output, byte for byte.

**Book.** Each side maps a price level to a FIFO queue of synthetic maker orders; a level's
quantity is the sum of its queue. Prices and quantities are kept as integer multiples of the
instrument's tick and step and leave this module as ``Decimal``. Every change of the book is
one change-set with its own update id (the book's ``lastUpdateId`` counts up by exactly one):
a :class:`BookUpdate` lists the levels that changed with their *new* quantity, 0 meaning the
level is gone. A client that takes :meth:`MarketState.depth` and applies every later update
with a higher id reproduces the book exactly (Binance's local-book procedure, section 8 of
the protocol reference). A taker sweep is one change-set however many levels it consumes.

**Activity.** :meth:`MarketState.step` runs one round of a seeded generator: a hidden fair
price wanders by up to ``volatility_ticks`` per step, makers add and cancel orders near the
top, and takers cross the spread, leaning toward the fair price. The book never crosses and
never loses a side: sides that get thin are refilled away from the top, far levels are trimmed
(so the book stays bounded), and a wide spread is narrowed by a maker.

**Trades and aggregates.** Each fill against one maker order is one :class:`Trade`.
Consecutive trades of the same taker order at the same price (and so the same time and side)
form one :class:`AggTrade`, Binance's aggregation rule.

**Memory.** The last ``ActivityConfig.max_trades`` trades (and as many aggregates) are kept.
Klines are maintained incrementally for every interval as trades arrive, keeping the last
``ActivityConfig.max_klines`` non-empty candles per interval (at least 1441 one-minute
candles, which the rolling 24 h ticker reads); empty intervals are synthesised on query and
carry the previous close, as Binance does. Funding records are capped at
``ActivityConfig.max_funding_records``.

**Futures.** The index price is the book's mid divided by ``1 + premium``, where the premium
is a small bounded random walk; the mark price is Binance's median of (index adjusted by the
funding basis, mid, last price); the funding rate is Binance's formula
``premium + clamp(interest - premium, ±0.05 %)``. Perpetuals settle funding every 8 hours at
00:00, 08:00 and 16:00 UTC; each settlement passed by time (any call that advances ``now_ms``)
records a :class:`FundingRecord`.

Quantities on COIN-M are contracts; there, a trade's ``quote_quantity`` and the klines' and
ticker's quote volumes hold the *base-asset* amount (``contracts * contractSize / price``),
which Binance publishes as ``baseQty``/``baseVolume``.
"""

from __future__ import annotations

import bisect
import calendar
import collections
import datetime
import decimal
import enum
import functools
import itertools
import random
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any, Final, ParamSpec, TypeVar

import attrs

from scenarios.venue.instruments import Instrument, Product

__all__ = [
    "AGG_TRADES_MAX_WINDOW_MS",
    "FUNDING_INTERVAL_MS",
    "FUTURES_KLINE_INTERVALS",
    "SPOT_KLINE_INTERVALS",
    "ActivityConfig",
    "AggTrade",
    "AvgPrice",
    "BestBidAsk",
    "BookSide",
    "BookUpdate",
    "FundingRecord",
    "Kline",
    "Level",
    "MakerFill",
    "MarketEvent",
    "MarketQueryError",
    "MarketState",
    "MatchResult",
    "PremiumIndex",
    "Prevention",
    "Side",
    "StpAction",
    "Ticker24hr",
    "Trade",
    "kline_close_time",
    "kline_open_time",
    "next_kline_open_time",
]

_SECOND_MS: Final = 1_000
_MINUTE_MS: Final = 60_000
_HOUR_MS: Final = 3_600_000
_DAY_MS: Final = 86_400_000
#: Binance's funding interval for the default perpetuals: 8 hours (00:00, 08:00, 16:00 UTC).
FUNDING_INTERVAL_MS: Final = 8 * _HOUR_MS
#: ``aggTrades``: ``startTime`` and ``endTime`` may be at most one hour apart.
AGG_TRADES_MAX_WINDOW_MS: Final = _HOUR_MS
_TICKER_WINDOW_MS: Final = 24 * _HOUR_MS

_FIXED_INTERVALS_MS: Final = {
    "1s": _SECOND_MS,
    "1m": _MINUTE_MS,
    "3m": 3 * _MINUTE_MS,
    "5m": 5 * _MINUTE_MS,
    "15m": 15 * _MINUTE_MS,
    "30m": 30 * _MINUTE_MS,
    "1h": _HOUR_MS,
    "2h": 2 * _HOUR_MS,
    "4h": 4 * _HOUR_MS,
    "6h": 6 * _HOUR_MS,
    "8h": 8 * _HOUR_MS,
    "12h": 12 * _HOUR_MS,
    "1d": _DAY_MS,
    "3d": 3 * _DAY_MS,
    "1w": 7 * _DAY_MS,
}
#: 1970-01-01 was a Thursday; Binance's weekly klines open on Monday 00:00 UTC.
_WEEK_OFFSET_MS: Final = 4 * _DAY_MS
#: Every spot kline interval, shortest first.
SPOT_KLINE_INTERVALS: Final = (*_FIXED_INTERVALS_MS, "1M")
#: The futures kline intervals (spot's without ``1s``).
FUTURES_KLINE_INTERVALS: Final = tuple(name for name in SPOT_KLINE_INTERVALS if name != "1s")

_RATE_PLACES: Final = Decimal("0.00000001")
_PRICE_PLACES: Final = Decimal("0.00000001")
_PERCENT_PLACES: Final = Decimal("0.001")
_INTEREST_RATE: Final = Decimal("0.00010000")
_FUNDING_CLAMP: Final = Decimal("0.0005")
_FUNDING_CAP: Final = Decimal("0.0075")
_MIN_TICKER_CANDLES: Final = _TICKER_WINDOW_MS // _MINUTE_MS + 1

#: Arithmetic context for every computation here: wide enough that sums and products of
#: prices and quantities are exact; divisions are quantized explicitly.
_CONTEXT: Final = decimal.Context(
    prec=50,
    rounding=decimal.ROUND_HALF_EVEN,
    traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
)

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _in_context(function: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run ``function`` under :data:`_CONTEXT`."""

    @functools.wraps(function)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with decimal.localcontext(_CONTEXT):
            return function(*args, **kwargs)

    return wrapper


# --- records -------------------------------------------------------------------------------

#: A ``(price, quantity)`` book level.
Level = tuple[Decimal, Decimal]


class BookSide(enum.Enum):
    """A side of the order book."""

    BID = "BID"
    ASK = "ASK"


class Side(enum.Enum):
    """The side of a taker order: BUY consumes asks, SELL consumes bids."""

    BUY = "BUY"
    SELL = "SELL"


class MarketQueryError(ValueError):
    """A query Binance would reject; carries Binance's error code and message.

    Attributes:
        code: Binance's (negative) error code, e.g. -1127.
        message: Binance's message, e.g. ``"More than 1 hours between startTime and
            endTime."``.
    """

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@attrs.frozen(kw_only=True)
class BookUpdate:
    """One change-set of the order book.

    Attributes:
        update_id: The book's update id after this change (previous id + 1).
        time_ms: When the change happened, epoch ms.
        bids: Changed bid levels, best (highest) first, with their new quantity (0: removed).
        asks: Changed ask levels, best (lowest) first, with their new quantity (0: removed).
    """

    update_id: int
    time_ms: int
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]


@attrs.frozen(kw_only=True)
class Trade:
    """One fill of a taker order against one maker order.

    Attributes:
        trade_id: Trade id; consecutive integers.
        price: Fill price (the maker's price).
        quantity: Fill quantity (contracts on COIN-M).
        quote_quantity: ``price * quantity`` on spot and USD-M; the base-asset amount
            ``quantity * contractSize / price`` (8 decimals, rounded down) on COIN-M.
        time_ms: Trade time, epoch ms.
        buyer_is_maker: True when the taker sold.
        taker_order_id: The venue's id of the taker order (aggregation key).
    """

    trade_id: int
    price: Decimal
    quantity: Decimal
    quote_quantity: Decimal
    time_ms: int
    buyer_is_maker: bool
    taker_order_id: int


@attrs.frozen(kw_only=True)
class AggTrade:
    """Consecutive trades of one taker order at one price (Binance ``aggTrades``).

    Attributes:
        agg_id: Aggregate trade id; consecutive integers.
        price: The shared price.
        quantity: Total quantity.
        first_trade_id: First trade id.
        last_trade_id: Last trade id.
        time_ms: Trade time, epoch ms.
        buyer_is_maker: True when the taker sold.
    """

    agg_id: int
    price: Decimal
    quantity: Decimal
    first_trade_id: int
    last_trade_id: int
    time_ms: int
    buyer_is_maker: bool


@attrs.frozen(kw_only=True)
class Kline:
    """One candle. Empty intervals carry the previous close with zero volume.

    Attributes:
        open_time_ms: Open time, epoch ms.
        close_time_ms: Close time: the next open time - 1.
        open: First trade price.
        high: Highest trade price.
        low: Lowest trade price.
        close: Last trade price.
        volume: Traded quantity.
        quote_volume: Traded quote amount (base amount on COIN-M).
        trade_count: Number of trades.
        taker_buy_base_volume: Quantity bought by takers.
        taker_buy_quote_volume: Quote amount bought by takers (base amount on COIN-M).
        first_trade_id: First trade id, -1 when empty.
        last_trade_id: Last trade id, -1 when empty.
    """

    open_time_ms: int
    close_time_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    quote_volume: Decimal
    trade_count: int
    taker_buy_base_volume: Decimal
    taker_buy_quote_volume: Decimal
    first_trade_id: int
    last_trade_id: int


@attrs.frozen(kw_only=True)
class BestBidAsk:
    """The top of the book.

    Attributes:
        update_id: The book's update id.
        bid_price: Best bid price.
        bid_quantity: Quantity at the best bid.
        ask_price: Best ask price.
        ask_quantity: Quantity at the best ask.
    """

    update_id: int
    bid_price: Decimal
    bid_quantity: Decimal
    ask_price: Decimal
    ask_quantity: Decimal


@attrs.frozen(kw_only=True)
class Ticker24hr:
    """Rolling 24-hour statistics (Binance ``ticker/24hr``).

    The window is ``[close_time_ms - 24 h, close_time_ms]``, read from one-minute candles, so
    it may include up to 59 999 ms more at its start (Binance documents the same tolerance for
    its rolling windows). Without trades in the window the prices equal the last price, the
    volumes are 0, ``weighted_avg_price`` is 0 and the trade ids are -1.

    Attributes:
        price_change: ``last_price - open_price``.
        price_change_percent: Change in percent, 3 decimals.
        weighted_avg_price: Volume-weighted average price, 8 decimals.
        prev_close_price: Last price before the window (spot).
        last_price: Last trade price (the start price before any trade).
        last_quantity: Last trade quantity.
        bid_price: Best bid (spot).
        bid_quantity: Best bid quantity (spot).
        ask_price: Best ask (spot).
        ask_quantity: Best ask quantity (spot).
        open_price: First price of the window.
        high_price: Highest price.
        low_price: Lowest price.
        volume: Traded quantity.
        quote_volume: Traded quote amount (base amount on COIN-M).
        open_time_ms: Window start.
        close_time_ms: Window end (``now_ms``).
        first_trade_id: First trade id, -1 without trades.
        last_trade_id: Last trade id, -1 without trades.
        trade_count: Number of trades.
    """

    price_change: Decimal
    price_change_percent: Decimal
    weighted_avg_price: Decimal
    prev_close_price: Decimal
    last_price: Decimal
    last_quantity: Decimal
    bid_price: Decimal
    bid_quantity: Decimal
    ask_price: Decimal
    ask_quantity: Decimal
    open_price: Decimal
    high_price: Decimal
    low_price: Decimal
    volume: Decimal
    quote_volume: Decimal
    open_time_ms: int
    close_time_ms: int
    first_trade_id: int
    last_trade_id: int
    trade_count: int


@attrs.frozen(kw_only=True)
class AvgPrice:
    """Spot ``avgPrice``.

    Attributes:
        mins: The averaging window in minutes (the instrument's ``avgPriceMins``).
        price: Volume-weighted average of the window's trades, 8 decimals; the last price
            when the window has no trade.
        close_time_ms: Time of the last trade (the market's start without trades).
    """

    mins: int
    price: Decimal
    close_time_ms: int


@attrs.frozen(kw_only=True)
class FundingRecord:
    """One funding settlement of a perpetual (Binance ``fundingRate`` history).

    Attributes:
        funding_time_ms: Settlement time, epoch ms (a multiple of 8 hours).
        funding_rate: The rate applied, 8 decimals.
        mark_price: The mark price at settlement, 8 decimals.
    """

    funding_time_ms: int
    funding_rate: Decimal
    mark_price: Decimal


@attrs.frozen(kw_only=True)
class PremiumIndex:
    """Binance ``premiumIndex`` for one futures symbol.

    Attributes:
        mark_price: Mark price, 8 decimals.
        index_price: Index price, 8 decimals.
        estimated_settle_price: Estimated settle price, 8 decimals.
        last_funding_rate: The rate the next settlement will apply; ``None`` for delivery
            contracts (Binance shows ``""``).
        interest_rate: ``None`` for delivery contracts.
        next_funding_time_ms: Next settlement; 0 for delivery contracts.
        time_ms: The query time.
    """

    mark_price: Decimal
    index_price: Decimal
    estimated_settle_price: Decimal
    last_funding_rate: Decimal | None
    interest_rate: Decimal | None
    next_funding_time_ms: int
    time_ms: int


@attrs.frozen(kw_only=True)
class ActivityConfig:
    """Knobs of the market-activity generator and of retention.

    Each ``*_per_step`` is a mean: a step draws a count uniformly from ``0..2*mean``.

    Attributes:
        maker_adds_per_step: Mean number of maker orders added per step.
        maker_cancels_per_step: Mean number of maker orders cancelled per step.
        takers_per_step: Mean number of taker orders per step.
        volatility_ticks: The fair price moves by up to this many ticks per step.
        near_levels: Makers act within this many ticks of the top; also how far the fair
            price may lead the book.
        max_spread_ticks: A wider spread is narrowed by a maker at the end of a step.
        order_notional: Typical maker order size as a notional (quote asset; on COIN-M, in
            USD, converted to contracts); orders are 1 to 25 such lots, takers 1 to 30.
        max_levels: Levels kept per side (0: twice the depth); farther levels are trimmed.
        max_premium: Bound of the futures premium (index vs book), e.g. 0.001 = 0.1 %.
        premium_step: The premium's random-walk step.
        initial_open_interest_lots: Starting open interest, in lots.
        max_trades: Trades (and aggregate trades) kept.
        max_klines: Non-empty candles kept per interval.
        max_funding_records: Funding records kept.
    """

    maker_adds_per_step: int = 3
    maker_cancels_per_step: int = 2
    takers_per_step: int = 1
    volatility_ticks: int = 3
    near_levels: int = 10
    max_spread_ticks: int = 3
    order_notional: Decimal = Decimal(100)
    max_levels: int = 0
    max_premium: Decimal = Decimal("0.0010")
    premium_step: Decimal = Decimal("0.00002")
    initial_open_interest_lots: int = 1_000_000
    max_trades: int = 10_000
    max_klines: int = 1_500
    max_funding_records: int = 1_000

    def __attrs_post_init__(self) -> None:
        """Check the bounds."""
        for name in (
            "maker_adds_per_step",
            "maker_cancels_per_step",
            "takers_per_step",
            "volatility_ticks",
            "max_levels",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"ActivityConfig.{name} must not be negative")
        for name in ("near_levels", "max_spread_ticks", "max_trades", "max_klines"):
            if getattr(self, name) < 1:
                raise ValueError(f"ActivityConfig.{name} must be at least 1")
        if self.max_funding_records < 1 or self.initial_open_interest_lots < 1:
            raise ValueError("ActivityConfig counts must be at least 1")
        for name in ("order_notional", "max_premium", "premium_step"):
            value = getattr(self, name)
            if not isinstance(value, Decimal) or value < 0:
                raise ValueError(f"ActivityConfig.{name} must be a non-negative Decimal")


#: What :meth:`MarketState.step` and the control hooks return.
class StpAction(enum.Enum):
    """What self-trade prevention does when a taker meets a resting order of its own."""

    EXPIRE_TAKER = "EXPIRE_TAKER"
    EXPIRE_MAKER = "EXPIRE_MAKER"
    EXPIRE_BOTH = "EXPIRE_BOTH"
    DECREMENT = "DECREMENT"


@attrs.frozen(kw_only=True)
class MakerFill:
    """A resting user order filled, fully or partly, by a taker.

    Attributes:
        order: The handle the order was rested with (:meth:`MarketState.rest`).
        trade: The trade.
        remaining: The order's quantity still on the book, hidden iceberg part included
            (0: it has left the book).
    """

    order: Any
    trade: Trade
    remaining: Decimal


@attrs.frozen(kw_only=True)
class Prevention:
    """A match that self-trade prevention stopped.

    Attributes:
        order: The resting order's handle.
        price: Its price.
        quantity: The quantity that would have traded.
        remaining: The resting order's quantity left on the book (0: it was removed).
        action: What was done.
    """

    order: Any
    price: Decimal
    quantity: Decimal
    remaining: Decimal
    action: StpAction


@attrs.frozen(kw_only=True)
class MatchResult:
    """What one taker order did against the book (:meth:`MarketState.match`).

    Attributes:
        trades: The taker's fills, in order.
        makers: Parallel to ``trades``: the resting user order's handle, or None for
            background liquidity.
        maker_fills: The resting user orders that were hit.
        preventions: Matches self-trade prevention stopped.
        filled: Taker quantity filled.
        prevented: Taker quantity removed by self-trade prevention.
        stopped_by_stp: EXPIRE_TAKER or EXPIRE_BOTH ended the match.
        events: The trades and the book's change-set, for the public feeds.
    """

    trades: list[Trade]
    makers: list[Any]
    maker_fills: list[MakerFill]
    preventions: list[Prevention]
    filled: Decimal
    prevented: Decimal
    stopped_by_stp: bool
    events: list[MarketEvent]


MarketEvent = BookUpdate | Trade | MakerFill


# --- kline time arithmetic -----------------------------------------------------------------


def _month_start_ms(year: int, month: int) -> int:
    while month > 12:
        year, month = year + 1, month - 12
    while month < 1:
        year, month = year - 1, month + 12
    return calendar.timegm((year, month, 1, 0, 0, 0)) * 1000


def _check_interval(interval: str) -> None:
    if interval not in SPOT_KLINE_INTERVALS:
        raise MarketQueryError(-1120, "Invalid interval.")


def kline_open_time(interval: str, time_ms: int) -> int:
    """Open time of the ``interval`` candle containing ``time_ms``.

    Fixed intervals up to ``3d`` are aligned on the Unix epoch, ``1w`` on Monday 00:00 UTC
    and ``1M`` on the first day of the calendar month (UTC).

    Args:
        interval: A Binance kline interval (``1s`` ... ``1M``).
        time_ms: A time, epoch ms.

    Returns:
        The open time, epoch ms.

    Raises:
        MarketQueryError: -1120 for an unknown interval.
    """
    _check_interval(interval)
    if interval == "1M":
        moment = datetime.datetime.fromtimestamp(time_ms // 1000, tz=datetime.UTC)
        return _month_start_ms(moment.year, moment.month)
    length = _FIXED_INTERVALS_MS[interval]
    if interval == "1w":
        return (time_ms - _WEEK_OFFSET_MS) // length * length + _WEEK_OFFSET_MS
    return time_ms // length * length


def next_kline_open_time(interval: str, open_ms: int) -> int:
    """Open time of the candle after the one opening at ``open_ms``.

    Args:
        interval: A Binance kline interval.
        open_ms: A candle's open time, epoch ms.

    Returns:
        The next open time, epoch ms.
    """
    _check_interval(interval)
    if interval == "1M":
        moment = datetime.datetime.fromtimestamp(open_ms // 1000, tz=datetime.UTC)
        return _month_start_ms(moment.year, moment.month + 1)
    return open_ms + _FIXED_INTERVALS_MS[interval]


def _previous_open(interval: str, open_ms: int) -> int:
    if interval == "1M":
        return kline_open_time(interval, open_ms - 1)
    return open_ms - _FIXED_INTERVALS_MS[interval]


def kline_close_time(interval: str, open_ms: int) -> int:
    """Binance's close time of a candle: the next open time minus 1 ms.

    Args:
        interval: A Binance kline interval.
        open_ms: The candle's open time, epoch ms.

    Returns:
        The close time, epoch ms.
    """
    return next_kline_open_time(interval, open_ms) - 1


# --- internal state ------------------------------------------------------------------------


class _Maker:
    """One resting order: background liquidity (``order`` None) or a user order.

    ``steps`` is what the book shows; an iceberg keeps the rest in ``hidden`` and shows
    ``slice`` steps at a time.
    """

    __slots__ = ("hidden", "order", "slice", "steps")

    def __init__(self, steps: int, order: Any = None, hidden: int = 0, slice_: int = 0) -> None:
        self.steps = steps
        self.order = order
        self.hidden = hidden
        self.slice = slice_


class _Ladder:
    """One side of the book: price (in ticks) -> FIFO of resting orders (sizes in steps)."""

    __slots__ = ("_descending", "_orders", "_prices")

    def __init__(self, *, descending: bool) -> None:
        self._descending = descending
        self._prices: list[int] = []  # ascending
        self._orders: dict[int, list[_Maker]] = {}

    def __len__(self) -> int:
        return len(self._prices)

    def __contains__(self, ticks: int) -> bool:
        return ticks in self._orders

    def best(self) -> int | None:
        if not self._prices:
            return None
        return self._prices[-1] if self._descending else self._prices[0]

    def worst(self) -> int | None:
        if not self._prices:
            return None
        return self._prices[0] if self._descending else self._prices[-1]

    def best_first(self) -> Iterator[int]:
        return reversed(self._prices) if self._descending else iter(self._prices)

    def worst_first(self) -> Iterator[int]:
        return iter(self._prices) if self._descending else reversed(self._prices)

    def total(self, ticks: int) -> int:
        """The level's visible quantity."""
        return sum(maker.steps for maker in self._orders.get(ticks, ()))

    def reachable(self, ticks: int) -> int:
        """The level's quantity including hidden iceberg parts."""
        return sum(maker.steps + maker.hidden for maker in self._orders.get(ticks, ()))

    def total_steps(self) -> int:
        return sum(maker.steps for queue in self._orders.values() for maker in queue)

    def queue(self, ticks: int) -> list[_Maker]:
        return self._orders[ticks]

    def add(self, ticks: int, steps: int) -> None:
        """Rest background liquidity."""
        self.add_maker(ticks, _Maker(steps))

    def add_maker(self, ticks: int, maker: _Maker) -> None:
        queue = self._orders.get(ticks)
        if queue is None:
            bisect.insort(self._prices, ticks)
            self._orders[ticks] = [maker]
        else:
            queue.append(maker)

    def has_user_orders(self, ticks: int) -> bool:
        return any(maker.order is not None for maker in self._orders.get(ticks, ()))

    def remove_level(self, ticks: int) -> None:
        del self._orders[ticks]
        del self._prices[bisect.bisect_left(self._prices, ticks)]

    def prune(self, ticks: int) -> None:
        """Drop the level if its queue is empty."""
        if not self._orders[ticks]:
            self.remove_level(ticks)


class _ChangeSet:
    """The levels touched by one book change."""

    __slots__ = ("asks", "bids")

    def __init__(self) -> None:
        self.bids: set[int] = set()
        self.asks: set[int] = set()

    def touch(self, side: BookSide, ticks: int) -> None:
        (self.bids if side is BookSide.BID else self.asks).add(ticks)

    def __bool__(self) -> bool:
        return bool(self.bids or self.asks)


@attrs.define
class _KlineBuilder:
    open_time_ms: int
    close_time_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    quote_volume: Decimal
    trade_count: int
    taker_buy_base_volume: Decimal
    taker_buy_quote_volume: Decimal
    first_trade_id: int
    last_trade_id: int

    def add(self, trade: Trade) -> None:
        self.high = max(self.high, trade.price)
        self.low = min(self.low, trade.price)
        self.close = trade.price
        self.volume += trade.quantity
        self.quote_volume += trade.quote_quantity
        self.trade_count += 1
        if not trade.buyer_is_maker:
            self.taker_buy_base_volume += trade.quantity
            self.taker_buy_quote_volume += trade.quote_quantity
        self.last_trade_id = trade.trade_id

    def freeze(self) -> Kline:
        return Kline(**attrs.asdict(self, recurse=False))


class _KlineSeries:
    """The retained non-empty candles of one interval, oldest first."""

    __slots__ = ("candles", "evicted_close", "floor_ms", "interval", "limit")

    def __init__(self, interval: str, limit: int) -> None:
        self.interval = interval
        self.limit = limit
        self.candles: collections.OrderedDict[int, _KlineBuilder] = collections.OrderedDict()
        self.evicted_close: Decimal | None = None
        self.floor_ms: int | None = None  # no candle before this can be rebuilt

    def add(self, trade: Trade) -> None:
        open_ms = kline_open_time(self.interval, trade.time_ms)
        builder = self.candles.get(open_ms)
        if builder is None:
            builder = _KlineBuilder(
                open_time_ms=open_ms,
                close_time_ms=kline_close_time(self.interval, open_ms),
                open=trade.price,
                high=trade.price,
                low=trade.price,
                close=trade.price,
                volume=Decimal(0),
                quote_volume=Decimal(0),
                trade_count=0,
                taker_buy_base_volume=Decimal(0),
                taker_buy_quote_volume=Decimal(0),
                first_trade_id=trade.trade_id,
                last_trade_id=trade.trade_id,
            )
            self.candles[open_ms] = builder
            while len(self.candles) > self.limit:
                evicted_open, evicted = self.candles.popitem(last=False)
                self.evicted_close = evicted.close
                self.floor_ms = next_kline_open_time(self.interval, evicted_open)
        builder.add(trade)

    def close_before(self, open_ms: int, default: Decimal) -> Decimal:
        for candle_open in reversed(self.candles):
            if candle_open < open_ms:
                return self.candles[candle_open].close
        return self.evicted_close if self.evicted_close is not None else default


@attrs.define
class _AggBuilder:
    agg_id: int
    price: Decimal
    quantity: Decimal
    first_trade_id: int
    last_trade_id: int
    time_ms: int
    buyer_is_maker: bool
    taker_order_id: int

    def extends(self, trade: Trade) -> bool:
        return (
            trade.taker_order_id == self.taker_order_id
            and trade.price == self.price
            and trade.buyer_is_maker == self.buyer_is_maker
            and trade.time_ms == self.time_ms
            and trade.trade_id == self.last_trade_id + 1
        )

    def freeze(self) -> AggTrade:
        return AggTrade(
            agg_id=self.agg_id,
            price=self.price,
            quantity=self.quantity,
            first_trade_id=self.first_trade_id,
            last_trade_id=self.last_trade_id,
            time_ms=self.time_ms,
            buyer_is_maker=self.buyer_is_maker,
        )


class _Sweep:
    """What one sweep did (see :meth:`MarketState._sweep`)."""

    __slots__ = (
        "events",
        "filled",
        "maker_fills",
        "makers",
        "prevented",
        "preventions",
        "stopped",
        "stopped_by_budget",
        "trades",
    )

    def __init__(self) -> None:
        self.trades: list[Trade] = []
        self.makers: list[Any] = []
        self.maker_fills: list[MakerFill] = []
        self.preventions: list[Prevention] = []
        self.events: list[MarketEvent] = []
        self.filled = 0
        self.prevented = 0
        self.stopped = False
        self.stopped_by_budget = False


def _median(values: list[Decimal]) -> Decimal:
    return sorted(values)[len(values) // 2]


def _clamp(value: Decimal, low: Decimal, high: Decimal) -> Decimal:
    return max(low, min(high, value))


# --- the market ----------------------------------------------------------------------------


class MarketState:
    """The public market of one instrument. See the module docstring for the model.

    The market keeps its own clock: every call that takes ``now_ms`` moves it forward to
    ``now_ms`` (settling any funding that fell due) and never moves it back. A mutating call
    (:meth:`step`, :meth:`advance_time`, the control hooks) with a ``now_ms`` before the clock
    (say, under an injected clock skew) acts at the clock's time, so trade and update times
    never decrease.
    """

    @_in_context
    def __init__(
        self,
        instrument: Instrument,
        *,
        rng: random.Random,
        now_ms: int,
        depth_levels: int = 50,
        activity: ActivityConfig | None = None,
    ) -> None:
        """Open the market with a realistic book around ``instrument.start_price``.

        Args:
            instrument: The instrument (its filters are assumed valid).
            rng: The only source of randomness; seed it for reproducible markets.
            now_ms: The market's opening time, epoch ms.
            depth_levels: Levels per side the book is built and refilled to.
            activity: Generator and retention settings (defaults: :class:`ActivityConfig`).

        Raises:
            ValueError: ``depth_levels`` below 1, or no room for a book around the start
                price within the instrument's price bounds.
        """
        if depth_levels < 1:
            raise ValueError("depth_levels must be at least 1")
        self._instrument = instrument
        self._rng = rng
        self._activity = activity or ActivityConfig()
        self._depth_levels = depth_levels
        self._max_levels = max(self._activity.max_levels or 2 * depth_levels, depth_levels)
        self._min_levels = max(1, depth_levels // 2)
        self._tick = instrument.tick_size
        self._step = instrument.step_size
        self._min_ticks = max(1, int(_CONTEXT.divide(instrument.min_price, self._tick)))
        self._max_ticks = int(_CONTEXT.divide(instrument.max_price, self._tick))
        self._min_qty_steps = max(1, int(_CONTEXT.divide(instrument.min_qty, self._step)))
        self._max_qty_steps = int(_CONTEXT.divide(instrument.max_qty, self._step))
        self._is_coinm = instrument.product is Product.COINM
        self._is_futures = instrument.product is not Product.SPOT
        self._is_perpetual = self._is_futures and instrument.contract_type == "PERPETUAL"
        self._intervals = SPOT_KLINE_INTERVALS if not self._is_futures else FUTURES_KLINE_INTERVALS

        start_ticks = int(_CONTEXT.divide(instrument.start_price, self._tick))
        if start_ticks - 2 < self._min_ticks or start_ticks + 2 > self._max_ticks:
            raise ValueError(f"{instrument.symbol}: no room for a book around the start price")
        if self._is_coinm:
            lot_notional = instrument.contract_size * self._step
        else:
            lot_notional = instrument.start_price * self._step
        lot = int(_CONTEXT.divide(self._activity.order_notional, lot_notional))
        self._lot_steps = max(lot, self._min_qty_steps, 1)

        self._start_ms = now_ms
        self._now_ms = now_ms
        self._start_price = instrument.start_price
        self._update_id = 1_000_000_000 + rng.randrange(1_000_000_000)
        self._next_trade_id = 100_000_000 + rng.randrange(100_000_000)
        self._next_agg_id = 50_000_000 + rng.randrange(50_000_000)
        self._next_taker_order_id = 1
        self._fair_ticks = start_ticks
        self._premium = Decimal(0)
        self._open_interest_steps = self._activity.initial_open_interest_lots * self._lot_steps
        self._open_interest_floor = self._open_interest_steps // 2

        self._bids = _Ladder(descending=True)
        self._asks = _Ladder(descending=False)
        #: Resting user orders by ``id(handle)``: (handle, entry, side, price in ticks).
        self._resting: dict[int, tuple[Any, _Maker, BookSide, int]] = {}
        spread = rng.randint(1, 3)
        best_bid = start_ticks - spread // 2
        best_ask = best_bid + spread
        bid_ticks, ask_ticks = best_bid, best_ask
        for _ in range(depth_levels):
            if bid_ticks >= self._min_ticks:
                self._bids.add(bid_ticks, self._maker_steps())
            if ask_ticks <= self._max_ticks:
                self._asks.add(ask_ticks, self._maker_steps())
            bid_ticks -= rng.randint(1, 3)
            ask_ticks += rng.randint(1, 3)

        self._trades: collections.deque[Trade] = collections.deque(maxlen=self._activity.max_trades)
        self._aggs: collections.deque[_AggBuilder] = collections.deque(
            maxlen=self._activity.max_trades
        )
        self._klines = {
            interval: _KlineSeries(
                interval,
                max(self._activity.max_klines, _MIN_TICKER_CANDLES)
                if interval == "1m"
                else self._activity.max_klines,
            )
            for interval in self._intervals
        }
        self._last_trade: Trade | None = None
        self._funding: collections.deque[FundingRecord] = collections.deque(
            maxlen=self._activity.max_funding_records
        )

    # --- properties ------------------------------------------------------------------------

    @property
    def instrument(self) -> Instrument:
        """The instrument this market trades."""
        return self._instrument

    @property
    def update_id(self) -> int:
        """The book's current update id (``lastUpdateId``)."""
        return self._update_id

    @property
    def now_ms(self) -> int:
        """The latest time the market has seen, epoch ms."""
        return self._now_ms

    @property
    def start_ms(self) -> int:
        """When the market opened, epoch ms."""
        return self._start_ms

    @property
    def last_trade(self) -> Trade | None:
        """The latest trade, if any."""
        return self._last_trade

    @property
    def last_price(self) -> Decimal:
        """The latest trade price; the start price before the first trade."""
        return self._last_trade.price if self._last_trade is not None else self._start_price

    @property
    def kline_intervals(self) -> tuple[str, ...]:
        """The kline intervals this market serves (futures have no ``1s``)."""
        return self._intervals

    # --- conversions -----------------------------------------------------------------------

    def _price(self, ticks: int) -> Decimal:
        return Decimal(ticks) * self._tick

    def _quantity(self, steps: int) -> Decimal:
        return Decimal(steps) * self._step

    def _to_ticks(self, price: Decimal, what: str) -> int:
        if not isinstance(price, Decimal) or not price.is_finite():
            raise ValueError(f"{what} must be a finite Decimal, got {price!r}")
        if price <= 0 or price % self._tick != 0:
            raise ValueError(f"{what} {price} is not a positive multiple of tick {self._tick}")
        ticks = int(price / self._tick)
        if not self._min_ticks <= ticks <= self._max_ticks:
            raise ValueError(f"{what} {price} is outside the instrument's price filter")
        return ticks

    def _to_steps(self, quantity: Decimal, what: str) -> int:
        if not isinstance(quantity, Decimal) or not quantity.is_finite():
            raise ValueError(f"{what} must be a finite Decimal, got {quantity!r}")
        if quantity <= 0 or quantity % self._step != 0:
            raise ValueError(f"{what} {quantity} is not a positive multiple of step {self._step}")
        return int(quantity / self._step)

    def _top_ticks(self) -> tuple[int, int]:
        best_bid = self._bids.best()
        best_ask = self._asks.best()
        if best_bid is None or best_ask is None:  # the book never loses a side
            raise AssertionError("the order book lost a side")
        return best_bid, best_ask

    def _ladder(self, side: BookSide) -> _Ladder:
        return self._bids if side is BookSide.BID else self._asks

    def _levels(self, ladder: _Ladder, limit: int) -> list[Level]:
        return [
            (self._price(ticks), self._quantity(ladder.total(ticks)))
            for ticks in itertools.islice(ladder.best_first(), max(limit, 0))
        ]

    # --- time ------------------------------------------------------------------------------

    def _advance(self, now_ms: int) -> int:
        """Move the clock to ``now_ms`` (never backwards), settling funding that fell due.

        Returns the market's time afterwards, which stamps whatever happens next.
        """
        if now_ms <= self._now_ms:
            return self._now_ms
        if self._is_perpetual:
            first_due = (self._now_ms // FUNDING_INTERVAL_MS + 1) * FUNDING_INTERVAL_MS
            last_due = now_ms // FUNDING_INTERVAL_MS * FUNDING_INTERVAL_MS
            if first_due <= last_due:
                keep = self._activity.max_funding_records
                first_due = max(first_due, last_due - (keep - 1) * FUNDING_INTERVAL_MS)
                rate = self._funding_rate()
                for due in range(first_due, last_due + 1, FUNDING_INTERVAL_MS):
                    mark = self._mark(due)
                    self._funding.append(
                        FundingRecord(funding_time_ms=due, funding_rate=rate, mark_price=mark)
                    )
        self._now_ms = now_ms
        return now_ms

    @_in_context
    def advance_time(self, now_ms: int) -> None:
        """Let time pass without market activity (settles funding that falls due).

        Args:
            now_ms: The new time, epoch ms.

        An earlier ``now_ms`` than the market's clock changes nothing.
        """
        self._advance(now_ms)

    def _observe(self, now_ms: int) -> None:
        self._advance(now_ms)

    # --- change-sets -----------------------------------------------------------------------

    def _emit(self, change: _ChangeSet, now_ms: int) -> BookUpdate | None:
        if not change:
            return None
        self._update_id += 1
        bids = tuple(
            (self._price(ticks), self._quantity(self._bids.total(ticks)))
            for ticks in sorted(change.bids, reverse=True)
        )
        asks = tuple(
            (self._price(ticks), self._quantity(self._asks.total(ticks)))
            for ticks in sorted(change.asks)
        )
        return BookUpdate(update_id=self._update_id, time_ms=now_ms, bids=bids, asks=asks)

    def _maker_steps(self) -> int:
        steps = self._lot_steps * self._rng.randint(1, 5) * self._rng.randint(1, 5)
        return max(self._min_qty_steps, min(steps, self._max_qty_steps))

    def _refill(
        self, side: BookSide, change: _ChangeSet, target: int, *, beyond: int | None = None
    ) -> None:
        """Add levels beyond the worst one until the side has ``target`` levels.

        An empty side restarts near the last price, but never at or inside ``beyond`` (the
        limit of the taker that emptied it, which may rest there next), and never past the
        price filter's bounds: at a bound it restarts at the bound itself.
        """
        ladder = self._ladder(side)
        while len(ladder) < target:
            worst = ladder.worst()
            if worst is None:
                last = int(self.last_price / self._tick)
                if side is BookSide.BID:
                    opposite = self._asks.best()
                    start = last - 1 if opposite is None else min(last - 1, opposite - 1)
                    ticks = min(start, self._fair_ticks)
                    if beyond is not None:
                        ticks = min(ticks, beyond - 1)
                    ticks = max(ticks, self._min_ticks)
                    if opposite is not None and ticks >= opposite:
                        break  # no room for a bid below the asks
                else:
                    opposite = self._bids.best()
                    start = last + 1 if opposite is None else max(last + 1, opposite + 1)
                    ticks = max(start, self._fair_ticks)
                    if beyond is not None:
                        ticks = max(ticks, beyond + 1)
                    ticks = min(ticks, self._max_ticks)
                    if opposite is not None and ticks <= opposite:
                        break  # no room for an ask above the bids
            elif side is BookSide.BID:
                ticks = worst - self._rng.randint(1, 3)
            else:
                ticks = worst + self._rng.randint(1, 3)
            if not self._min_ticks <= ticks <= self._max_ticks:
                break
            ladder.add(ticks, self._maker_steps())
            change.touch(side, ticks)

    def _trim(self, side: BookSide, change: _ChangeSet) -> None:
        """Drop far levels beyond the maximum; a level holding user orders stays."""
        ladder = self._ladder(side)
        excess = len(ladder) - self._max_levels
        if excess <= 0:
            return
        doomed = []
        for ticks in ladder.worst_first():
            if len(doomed) == excess:
                break
            if not ladder.has_user_orders(ticks):
                doomed.append(ticks)
        for ticks in doomed:
            ladder.remove_level(ticks)
            change.touch(side, ticks)

    def _keep_depth(self, change: _ChangeSet) -> None:
        for side in (BookSide.BID, BookSide.ASK):
            if len(self._ladder(side)) < self._min_levels:
                self._refill(side, change, self._depth_levels)
            self._trim(side, change)

    # --- trades ----------------------------------------------------------------------------

    def _record_trade(
        self, ticks: int, steps: int, *, buyer_is_maker: bool, taker_order_id: int, now_ms: int
    ) -> Trade:
        price = self._price(ticks)
        quantity = self._quantity(steps)
        if self._is_coinm:
            base = (quantity * self._instrument.contract_size) / price
            notional = base.quantize(_PRICE_PLACES, rounding=decimal.ROUND_DOWN)
        else:
            notional = price * quantity
        trade = Trade(
            trade_id=self._next_trade_id,
            price=price,
            quantity=quantity,
            quote_quantity=notional,
            time_ms=now_ms,
            buyer_is_maker=buyer_is_maker,
            taker_order_id=taker_order_id,
        )
        self._next_trade_id += 1
        self._trades.append(trade)
        last_agg = self._aggs[-1] if self._aggs else None
        if last_agg is not None and last_agg.extends(trade):
            last_agg.quantity += quantity
            last_agg.last_trade_id = trade.trade_id
        else:
            self._aggs.append(
                _AggBuilder(
                    agg_id=self._next_agg_id,
                    price=price,
                    quantity=quantity,
                    first_trade_id=trade.trade_id,
                    last_trade_id=trade.trade_id,
                    time_ms=now_ms,
                    buyer_is_maker=buyer_is_maker,
                    taker_order_id=taker_order_id,
                )
            )
            self._next_agg_id += 1
        for series in self._klines.values():
            series.add(trade)
        self._last_trade = trade
        # Open interest: even trade ids open positions, odd ones close them.
        if trade.trade_id % 2 == 0:
            self._open_interest_steps += steps
        else:
            self._open_interest_steps = max(
                self._open_interest_floor, self._open_interest_steps - steps
            )
        return trade

    def _sweep(
        self,
        side: Side,
        steps: int,
        *,
        limit_ticks: int | None,
        change: _ChangeSet,
        now_ms: int,
        taker_order_id: int,
        quote_budget: Decimal | None = None,
        self_trade: Callable[[Any], StpAction | None] | None = None,
    ) -> _Sweep:
        """Match a taker order against the opposite side, FIFO within each level.

        Resting user orders trade like background liquidity; ``self_trade`` decides, for
        each user order met, whether self-trade prevention applies. With ``quote_budget``
        the taker spends (or receives) at most that much quote.
        """
        book_side = BookSide.ASK if side is Side.BUY else BookSide.BID
        ladder = self._ladder(book_side)
        sweep = _Sweep()
        remaining = steps
        budget = quote_budget
        while remaining > 0 and not sweep.stopped:
            best = ladder.best()
            if best is None:
                break
            if limit_ticks is not None and (
                (side is Side.BUY and best > limit_ticks)
                or (side is Side.SELL and best < limit_ticks)
            ):
                break
            queue = ladder.queue(best)
            price = self._price(best)
            step_value = price * self._step
            while remaining > 0 and queue:
                maker = queue[0]
                if maker.order is not None and self_trade is not None:
                    action = self_trade(maker.order)
                    if action is not None:
                        remaining -= self._prevent(sweep, queue, maker, action, price, remaining)
                        if sweep.stopped:
                            break
                        continue
                fill = min(maker.steps, remaining)
                if budget is not None:
                    fill = min(fill, int(budget / step_value))
                    if fill <= 0:
                        sweep.stopped_by_budget = True
                        break
                    budget -= step_value * fill
                maker.steps -= fill
                remaining -= fill
                sweep.filled += fill
                trade = self._record_trade(
                    best,
                    fill,
                    buyer_is_maker=side is Side.SELL,
                    taker_order_id=taker_order_id,
                    now_ms=now_ms,
                )
                sweep.trades.append(trade)
                sweep.makers.append(maker.order)
                sweep.events.append(trade)
                if maker.steps == 0:
                    queue.pop(0)
                    if maker.hidden > 0:
                        maker.steps = min(maker.slice, maker.hidden)
                        maker.hidden -= maker.steps
                        queue.append(maker)  # a new iceberg slice joins the back
                    elif maker.order is not None:
                        del self._resting[id(maker.order)]
                if maker.order is not None:
                    fill_event = MakerFill(
                        order=maker.order,
                        trade=trade,
                        remaining=self._quantity(maker.steps + maker.hidden),
                    )
                    sweep.maker_fills.append(fill_event)
                    sweep.events.append(fill_event)
            ladder.prune(best)
            change.touch(book_side, best)
            if sweep.stopped_by_budget:
                break
        return sweep

    def _prevent(
        self,
        sweep: _Sweep,
        queue: list[_Maker],
        maker: _Maker,
        action: StpAction,
        price: Decimal,
        remaining: int,
    ) -> int:
        """Apply self-trade prevention to ``maker``; returns the taker steps it removed."""
        resting = maker.steps + maker.hidden
        blocked = min(resting, remaining)
        taker_removed = 0
        if action is StpAction.DECREMENT:
            taken_visible = min(maker.steps, blocked)
            maker.steps -= taken_visible
            maker.hidden -= blocked - taken_visible
            taker_removed = blocked
            if maker.steps == 0 and maker.hidden > 0:
                maker.steps = min(maker.slice, maker.hidden)
                maker.hidden -= maker.steps
        if action in (StpAction.EXPIRE_MAKER, StpAction.EXPIRE_BOTH):
            maker.steps = maker.hidden = 0
        if action in (StpAction.EXPIRE_TAKER, StpAction.EXPIRE_BOTH):
            taker_removed = remaining
            sweep.stopped = True
        left = maker.steps + maker.hidden
        if left == 0:
            queue.remove(maker)
            del self._resting[id(maker.order)]
        sweep.prevented += taker_removed
        sweep.preventions.append(
            Prevention(
                order=maker.order,
                price=price,
                quantity=self._quantity(blocked),
                remaining=self._quantity(left),
                action=action,
            )
        )
        return taker_removed

    def _new_taker_order_id(self) -> int:
        taker_order_id = self._next_taker_order_id
        self._next_taker_order_id += 1
        return taker_order_id

    # --- the generator ---------------------------------------------------------------------

    @_in_context
    def step(self, now_ms: int) -> list[MarketEvent]:
        """Run one round of seeded market activity at ``now_ms``.

        Args:
            now_ms: The current time, epoch ms.

        Returns:
            The round's events in order: a :class:`BookUpdate` per maker add or cancel; for
            each taker, its trades followed by the :class:`BookUpdate` of its sweep.
        """
        now_ms = self._advance(now_ms)
        rng = self._rng
        activity = self._activity
        events: list[MarketEvent] = []
        if not self._bids or not self._asks:
            # Only a user sweep at the price filter's bounds can leave a side empty: refill
            # what fits and sit this round out until both sides are back.
            change = _ChangeSet()
            for book_side in (BookSide.BID, BookSide.ASK):
                if not self._ladder(book_side):
                    self._refill(book_side, change, self._depth_levels)
            update = self._emit(change, now_ms)
            if update is not None:
                events.append(update)
            if not self._bids or not self._asks:
                return events
        self._drift(now_ms)
        kinds = (
            ["add"] * rng.randint(0, 2 * activity.maker_adds_per_step)
            + ["cancel"] * rng.randint(0, 2 * activity.maker_cancels_per_step)
            + ["take"] * rng.randint(0, 2 * activity.takers_per_step)
        )
        rng.shuffle(kinds)
        for kind in kinds:
            if kind == "add":
                update = self._random_maker_add(now_ms)
                if update is not None:
                    events.append(update)
            elif kind == "cancel":
                update = self._random_cancel(now_ms)
                if update is not None:
                    events.append(update)
            else:
                events.extend(self._random_taker(now_ms))
        update = self._narrow_spread(now_ms)
        if update is not None:
            events.append(update)
        return events

    def _drift(self, now_ms: int) -> None:
        rng = self._rng
        activity = self._activity
        best_bid, best_ask = self._top_ticks()
        volatility = activity.volatility_ticks
        fair = self._fair_ticks + rng.randint(-volatility, volatility)
        fair = max(best_bid - activity.near_levels, min(best_ask + activity.near_levels, fair))
        self._fair_ticks = max(self._min_ticks + 1, min(self._max_ticks - 1, fair))
        if self._is_futures and activity.premium_step > 0:
            moved = self._premium + rng.randint(-1, 1) * activity.premium_step
            self._premium = _clamp(moved, -activity.max_premium, activity.max_premium)

    def _random_maker_add(self, now_ms: int) -> BookUpdate | None:
        rng = self._rng
        side = BookSide.BID if rng.randrange(2) == 0 else BookSide.ASK
        offset = rng.randint(0, self._activity.near_levels - 1)
        best_bid, best_ask = self._top_ticks()
        if side is BookSide.BID:
            ticks = min(self._fair_ticks - 1 - offset, best_ask - 1)
        else:
            ticks = max(self._fair_ticks + 1 + offset, best_bid + 1)
        steps = self._maker_steps()
        if not self._min_ticks <= ticks <= self._max_ticks:
            return None
        change = _ChangeSet()
        self._ladder(side).add(ticks, steps)
        change.touch(side, ticks)
        self._keep_depth(change)
        return self._emit(change, now_ms)

    def _random_cancel(self, now_ms: int) -> BookUpdate | None:
        rng = self._rng
        side = BookSide.BID if rng.randrange(2) == 0 else BookSide.ASK
        ladder = self._ladder(side)
        near = list(itertools.islice(ladder.best_first(), self._activity.near_levels))
        if not near:
            return None
        ticks = near[rng.randrange(len(near))]
        queue = ladder.queue(ticks)
        index = rng.randrange(len(queue))
        if queue[index].order is not None:
            return None  # only background liquidity cancels at random
        if len(queue) == 1 and len(ladder) <= self._min_levels:
            return None
        del queue[index]
        ladder.prune(ticks)
        change = _ChangeSet()
        change.touch(side, ticks)
        self._keep_depth(change)
        return self._emit(change, now_ms)

    def _random_taker(self, now_ms: int) -> list[MarketEvent]:
        rng = self._rng
        near = self._activity.near_levels
        best_bid, best_ask = self._top_ticks()
        lean = 2 * self._fair_ticks - best_bid - best_ask + rng.randint(-near, near)
        buy = lean > 0 or (lean == 0 and rng.randrange(2) == 0)
        side = Side.BUY if buy else Side.SELL
        steps = self._lot_steps * rng.randint(1, 5) * rng.randint(1, 6)
        ladder = self._asks if buy else self._bids
        worst = ladder.worst()
        assert worst is not None
        # Never consume a whole side: the deepest level always survives.
        steps = min(steps, ladder.total_steps() - ladder.total(worst))
        if steps <= 0:
            return []
        change = _ChangeSet()
        sweep = self._sweep(
            side,
            steps,
            limit_ticks=None,
            change=change,
            now_ms=now_ms,
            taker_order_id=self._new_taker_order_id(),
        )
        self._keep_depth(change)
        events = sweep.events
        update = self._emit(change, now_ms)
        if update is not None:
            events.append(update)
        return events

    def _narrow_spread(self, now_ms: int) -> BookUpdate | None:
        best_bid, best_ask = self._top_ticks()
        spread = best_ask - best_bid
        if spread <= self._activity.max_spread_ticks:
            return None
        inside = self._rng.randint(1, spread - 1)
        side = BookSide.BID if self._rng.randrange(2) == 0 else BookSide.ASK
        ticks = best_bid + inside
        change = _ChangeSet()
        self._ladder(side).add(ticks, self._maker_steps())
        change.touch(side, ticks)
        self._keep_depth(change)
        return self._emit(change, now_ms)

    # --- control hooks ---------------------------------------------------------------------

    @_in_context
    def take_liquidity(
        self,
        side: Side,
        quantity: Decimal,
        now_ms: int,
        *,
        limit_price: Decimal | None = None,
    ) -> list[MarketEvent]:
        """Match a taker order against the book (e.g. a market order of the matching engine).

        The order fills level by level, FIFO within each level, up to ``limit_price`` when
        given; what cannot fill is dropped (like an IOC order). A side emptied by the sweep is
        refilled in the same change-set.

        Args:
            side: The taker's side.
            quantity: Quantity to take (a positive multiple of the step).
            now_ms: The current time, epoch ms.
            limit_price: Worst acceptable price, or ``None`` for no limit.

        Returns:
            The trades, then the sweep's :class:`BookUpdate`; empty when nothing matched.

        Raises:
            ValueError: A badly aligned or non-positive quantity or price.
        """
        sweep, update = self._take(side, self._to_steps(quantity, "quantity"), now_ms, limit_price)
        events = sweep.events
        if update is not None:
            events.append(update)
        return events

    def _take(
        self,
        side: Side,
        steps: int,
        now_ms: int,
        limit_price: Decimal | None,
        *,
        quote_budget: Decimal | None = None,
        self_trade: Callable[[Any], StpAction | None] | None = None,
    ) -> tuple[_Sweep, BookUpdate | None]:
        """One taker sweep as its own change-set; a side it empties is refilled in it."""
        limit_ticks = None if limit_price is None else self._to_ticks(limit_price, "limit price")
        now_ms = self._advance(now_ms)
        change = _ChangeSet()
        sweep = self._sweep(
            side,
            steps,
            limit_ticks=limit_ticks,
            change=change,
            now_ms=now_ms,
            taker_order_id=self._new_taker_order_id(),
            quote_budget=quote_budget,
            self_trade=self_trade,
        )
        for book_side in (BookSide.BID, BookSide.ASK):
            if not self._ladder(book_side):
                self._refill(book_side, change, self._depth_levels, beyond=limit_ticks)
        return sweep, self._emit(change, now_ms)

    @_in_context
    def set_price(self, price: Decimal, now_ms: int) -> list[MarketEvent]:
        """Move the market so the book's mid becomes ``price``.

        With ``price`` on a tick the new best bid and ask are one tick either side; on a half
        tick they are the ticks around it. If the move crosses the book, a taker sweeps every
        level in the way and fills a last lot exactly at ``price`` (rounded toward where it
        came from), so the last price follows; a move within the spread trades nothing. The
        sides are then filled near the new top and trimmed, all in one change-set.

        Args:
            price: The new mid, a positive multiple of half a tick within the price filter.
            now_ms: The current time, epoch ms.

        Returns:
            The trades (if any), then the :class:`BookUpdate`.

        Raises:
            ValueError: A price off the half-tick grid or outside the price filter.
        """
        if not isinstance(price, Decimal) or not price.is_finite() or price <= 0:
            raise ValueError(f"price must be a positive finite Decimal, got {price!r}")
        doubled = price * 2 / self._tick
        if doubled != doubled.to_integral_value():
            raise ValueError(f"price {price} is not a multiple of half the tick {self._tick}")
        doubled_ticks = int(doubled)
        if doubled_ticks % 2 == 0:
            new_bid, new_ask = doubled_ticks // 2 - 1, doubled_ticks // 2 + 1
        else:
            new_bid = doubled_ticks // 2
            new_ask = new_bid + 1
        if new_bid < self._min_ticks or new_ask > self._max_ticks:
            raise ValueError(f"price {price} leaves no room for a book within the price filter")
        now_ms = self._advance(now_ms)
        change = _ChangeSet()
        trades: list[MarketEvent] = []
        best_bid, best_ask = self._top_ticks()
        if best_ask < new_ask or best_bid > new_bid:
            moving_up = best_ask < new_ask
            side = Side.BUY if moving_up else Side.SELL
            ladder = self._asks if moving_up else self._bids
            limit = new_ask - 1 if moving_up else new_bid + 1
            in_way = [
                ticks
                for ticks in ladder.best_first()
                if (ticks <= limit if moving_up else ticks >= limit)
            ]
            taker_order_id = self._new_taker_order_id()
            sweep = self._sweep(
                side,
                sum(ladder.reachable(ticks) for ticks in in_way),
                limit_ticks=limit,
                change=change,
                now_ms=now_ms,
                taker_order_id=taker_order_id,
            )
            trades = sweep.events
            # The last lot fills at the target itself (a maker there is filled entirely, so
            # the level never shows in the book).
            last_ticks = doubled_ticks // 2 if moving_up else (doubled_ticks + 1) // 2
            trades.append(
                self._record_trade(
                    last_ticks,
                    self._lot_steps,
                    buyer_is_maker=not moving_up,
                    taker_order_id=taker_order_id,
                    now_ms=now_ms,
                )
            )
        self._fair_ticks = doubled_ticks // 2
        for side_, ticks, direction in (
            (BookSide.BID, new_bid, -1),
            (BookSide.ASK, new_ask, 1),
        ):
            ladder = self._ladder(side_)
            for offset in range(self._activity.near_levels):
                level = ticks + direction * offset
                if not self._min_ticks <= level <= self._max_ticks:
                    break
                if level not in ladder and (offset == 0 or self._rng.randrange(3) != 0):
                    ladder.add(level, self._maker_steps())
                    change.touch(side_, level)
        self._keep_depth(change)
        events: list[MarketEvent] = list(trades)
        update = self._emit(change, now_ms)
        if update is not None:
            events.append(update)
        return events

    @_in_context
    def add_liquidity(
        self, side: BookSide, price: Decimal, quantity: Decimal, now_ms: int
    ) -> BookUpdate:
        """Rest a maker order of ``quantity`` at ``price``.

        Args:
            side: The book side.
            price: A tick-aligned price that does not cross the other side.
            quantity: A positive multiple of the step.
            now_ms: The current time, epoch ms.

        Returns:
            The change-set (the level with its new total).

        Raises:
            ValueError: Misaligned or out-of-range values, or a price that would cross the
                book.
        """
        ticks = self._to_ticks(price, "price")
        steps = self._to_steps(quantity, "quantity")
        if side is BookSide.BID:
            opposite = self._asks.best()
            if opposite is not None and ticks >= opposite:
                raise ValueError(f"bid {price} would cross the best ask {self._price(opposite)}")
        else:
            opposite = self._bids.best()
            if opposite is not None and ticks <= opposite:
                raise ValueError(f"ask {price} would cross the best bid {self._price(opposite)}")
        now_ms = self._advance(now_ms)
        self._ladder(side).add(ticks, steps)
        change = _ChangeSet()
        change.touch(side, ticks)
        update = self._emit(change, now_ms)
        assert update is not None
        return update

    @_in_context
    def remove_liquidity(
        self, side: BookSide, price: Decimal, quantity: Decimal | None, now_ms: int
    ) -> BookUpdate | None:
        """Remove resting quantity at ``price``, newest orders first.

        Args:
            side: The book side.
            price: The level's price.
            quantity: How much to remove (a multiple of the step), or ``None`` for the whole
                level. More than the level holds removes the level.
            now_ms: The current time, epoch ms.

        Returns:
            The change-set, or ``None`` when there is no such level.

        Raises:
            ValueError: Misaligned values, or removing the last level of a side (the book
                never loses a side).
        """
        ticks = self._to_ticks(price, "price")
        steps = None if quantity is None else self._to_steps(quantity, "quantity")
        ladder = self._ladder(side)
        if ticks not in ladder:
            return None
        queue = ladder.queue(ticks)
        background = sum(maker.steps for maker in queue if maker.order is None)
        if background == 0:
            return None  # only user orders rest there: they are not the control API's
        removes_level = (steps is None or steps >= background) and not ladder.has_user_orders(ticks)
        if removes_level and len(ladder) == 1:
            raise ValueError(f"cannot remove the last {side.value} level: a side never empties")
        now_ms = self._advance(now_ms)
        if removes_level:
            ladder.remove_level(ticks)
        else:
            left = background if steps is None else min(steps, background)
            for maker in reversed(list(queue)):
                if left == 0:
                    break
                if maker.order is not None:
                    continue
                taken = min(maker.steps, left)
                maker.steps -= taken
                left -= taken
                if maker.steps == 0:
                    queue.remove(maker)
        change = _ChangeSet()
        change.touch(side, ticks)
        return self._emit(change, now_ms)

    # --- user orders (the matching engine's interface) --------------------------------------

    @_in_context
    def match(
        self,
        side: Side,
        quantity: Decimal | None,
        now_ms: int,
        *,
        limit_price: Decimal | None = None,
        quote_budget: Decimal | None = None,
        self_trade: Callable[[Any], StpAction | None] | None = None,
    ) -> MatchResult:
        """Match a user's taker order against the book in price-time priority.

        Background liquidity and resting user orders trade alike. What cannot fill is left
        to the caller: nothing is rested here. A side emptied by the sweep is refilled with
        background liquidity in the same change-set.

        Args:
            side: The taker's side.
            quantity: Quantity to fill (a positive multiple of the step), or None to be
                bounded by ``quote_budget`` only.
            now_ms: The current time, epoch ms.
            limit_price: Worst acceptable price, or None for none.
            quote_budget: Most quote to spend (BUY) or receive (SELL); fills stay whole
                steps (Binance's ``quoteOrderQty``).
            self_trade: Called with each resting user order met; None trades with it, an
                :class:`StpAction` applies self-trade prevention instead.

        Returns:
            The :class:`MatchResult`.

        Raises:
            ValueError: A misaligned quantity or price, or neither quantity nor budget.
        """
        if quantity is None:
            if quote_budget is None or quote_budget <= 0:
                raise ValueError("a match needs a quantity or a positive quote budget")
            steps = 10**30
        else:
            steps = self._to_steps(quantity, "quantity")
        sweep, update = self._take(
            side, steps, now_ms, limit_price, quote_budget=quote_budget, self_trade=self_trade
        )
        events: list[MarketEvent] = list(sweep.trades)
        if update is not None:
            events.append(update)
        return MatchResult(
            trades=sweep.trades,
            makers=sweep.makers,
            maker_fills=sweep.maker_fills,
            preventions=sweep.preventions,
            filled=self._quantity(sweep.filled),
            prevented=self._quantity(sweep.prevented),
            stopped_by_stp=sweep.stopped,
            events=events,
        )

    def available(self, side: Side, limit_price: Decimal | None) -> Decimal:
        """The quantity a taker of ``side`` could reach within ``limit_price`` (hidden
        iceberg parts included; self-trade prevention not considered)."""
        ladder = self._asks if side is Side.BUY else self._bids
        limit_ticks = None if limit_price is None else limit_price / self._tick
        steps = 0
        for ticks in ladder.best_first():
            if limit_ticks is not None and (
                (side is Side.BUY and ticks > limit_ticks)
                or (side is Side.SELL and ticks < limit_ticks)
            ):
                break
            steps += ladder.reachable(ticks)
        return self._quantity(steps)

    @_in_context
    def rest(
        self,
        order: Any,
        side: Side,
        price: Decimal,
        quantity: Decimal,
        now_ms: int,
        *,
        visible: Decimal | None = None,
    ) -> BookUpdate:
        """Put a user order on the book, at the back of its level's queue.

        Args:
            order: The order's handle (compared by identity); it comes back in
                :class:`MakerFill` and :class:`Prevention` and names it to :meth:`withdraw`.
            side: BUY rests a bid, SELL an ask.
            price: A tick-aligned price within the price filter.
            quantity: The order's open quantity (a positive multiple of the step).
            now_ms: The current time, epoch ms.
            visible: An iceberg's displayed slice: the book shows this much at a time.

        Returns:
            The change-set.

        Raises:
            ValueError: Misaligned values, a price that would cross the book (match
                first), or a handle already resting.
        """
        ticks = self._to_ticks(price, "price")
        steps = self._to_steps(quantity, "quantity")
        slice_ = steps if visible is None else self._to_steps(visible, "visible quantity")
        if id(order) in self._resting:
            raise ValueError("this order is already resting")
        book_side = BookSide.BID if side is Side.BUY else BookSide.ASK
        if side is Side.BUY:
            opposite = self._asks.best()
            if opposite is not None and ticks >= opposite:
                raise ValueError(f"bid {price} would cross the best ask {self._price(opposite)}")
        else:
            opposite = self._bids.best()
            if opposite is not None and ticks <= opposite:
                raise ValueError(f"ask {price} would cross the best bid {self._price(opposite)}")
        now_ms = self._advance(now_ms)
        shown = min(slice_, steps)
        maker = _Maker(shown, order, steps - shown, slice_)
        self._ladder(book_side).add_maker(ticks, maker)
        self._resting[id(order)] = (order, maker, book_side, ticks)
        change = _ChangeSet()
        change.touch(book_side, ticks)
        update = self._emit(change, now_ms)
        assert update is not None
        return update

    @_in_context
    def withdraw(self, order: Any, now_ms: int) -> BookUpdate | None:
        """Take a resting user order off the book; None when it is not resting."""
        entry = self._resting.pop(id(order), None)
        if entry is None:
            return None
        _, maker, book_side, ticks = entry
        ladder = self._ladder(book_side)
        ladder.queue(ticks).remove(maker)
        ladder.prune(ticks)
        change = _ChangeSet()
        change.touch(book_side, ticks)
        if not ladder:
            self._refill(book_side, change, self._depth_levels)
        return self._emit(change, self._advance(now_ms))

    @_in_context
    def reduce(self, order: Any, remaining: Decimal, now_ms: int) -> BookUpdate | None:
        """Lower a resting order's open quantity, keeping its place in the queue.

        Returns:
            The change-set, or None when the order is not resting.

        Raises:
            ValueError: ``remaining`` misaligned, or not below the current quantity.
        """
        entry = self._resting.get(id(order))
        if entry is None:
            return None
        _, maker, book_side, ticks = entry
        steps = self._to_steps(remaining, "remaining quantity")
        if steps >= maker.steps + maker.hidden:
            raise ValueError("a reduction must lower the order's quantity")
        maker.steps = min(maker.steps, steps)
        maker.hidden = steps - maker.steps
        change = _ChangeSet()
        change.touch(book_side, ticks)
        return self._emit(change, self._advance(now_ms))

    def resting(self, order: Any) -> Decimal | None:
        """A resting order's open quantity (hidden part included); None if not resting."""
        entry = self._resting.get(id(order))
        if entry is None:
            return None
        maker = entry[1]
        return self._quantity(maker.steps + maker.hidden)

    def best(self, side: BookSide) -> Decimal | None:
        """The best price of a book side."""
        ticks = self._ladder(side).best()
        return None if ticks is None else self._price(ticks)

    def level(self, side: BookSide, n: int) -> Decimal | None:
        """The ``n``-th best price of a book side (``n`` = 1 is the best); None past the end."""
        if n < 1:
            raise ValueError("levels count from 1")
        ticks = next(itertools.islice(self._ladder(side).best_first(), n - 1, None), None)
        return None if ticks is None else self._price(ticks)

    def top(self, n: int) -> tuple[list[Level], list[Level]]:
        """The best ``n`` levels of each side.

        Args:
            n: Levels per side.

        Returns:
            ``(bids, asks)``, each best first.
        """
        return self._levels(self._bids, n), self._levels(self._asks, n)

    # --- book queries ----------------------------------------------------------------------

    def depth(self, limit: int) -> tuple[int, list[Level], list[Level]]:
        """A depth snapshot.

        Args:
            limit: Levels per side (the REST layer applies Binance's allowed values).

        Returns:
            ``(last_update_id, bids best first, asks best first)``.
        """
        bids, asks = self.top(limit)
        return self._update_id, bids, asks

    def best_bid_ask(self) -> BestBidAsk:
        """The top of the book with its update id."""
        best_bid, best_ask = self._top_ticks()
        return BestBidAsk(
            update_id=self._update_id,
            bid_price=self._price(best_bid),
            bid_quantity=self._quantity(self._bids.total(best_bid)),
            ask_price=self._price(best_ask),
            ask_quantity=self._quantity(self._asks.total(best_ask)),
        )

    def _mid(self) -> Decimal:
        best_bid, best_ask = self._top_ticks()
        return Decimal(best_bid + best_ask) * self._tick / 2

    # --- trade queries ---------------------------------------------------------------------

    @staticmethod
    def _check_limit(limit: int) -> None:
        if limit < 1:
            raise MarketQueryError(-1130, "Data sent for parameter 'limit' is not valid.")

    def recent_trades(self, limit: int = 500) -> list[Trade]:
        """The latest trades, oldest first.

        Args:
            limit: How many.

        Returns:
            Up to ``limit`` trades.
        """
        self._check_limit(limit)
        start = max(0, len(self._trades) - limit)
        return list(itertools.islice(self._trades, start, None))

    def historical_trades(self, from_id: int | None = None, limit: int = 500) -> list[Trade]:
        """Older trades by id (Binance ``historicalTrades``).

        Args:
            from_id: First trade id to return; ``None`` for the latest trades. Ids older than
                the retained trades start at the oldest retained one.
            limit: How many.

        Returns:
            Up to ``limit`` trades with ``trade_id >= from_id``, oldest first.
        """
        self._check_limit(limit)
        if from_id is None:
            return self.recent_trades(limit)
        if not self._trades:
            return []
        start = max(0, from_id - self._trades[0].trade_id)
        return list(itertools.islice(self._trades, start, start + limit))

    def agg_trades(
        self,
        from_id: int | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = 500,
    ) -> list[AggTrade]:
        """Aggregate trades (Binance ``aggTrades``).

        Selection, following Binance: with ``from_id``, aggregates from that id on (also
        bounded by the times when given); otherwise with ``start_ms``, the first ``limit`` at
        or after it (and at or before ``end_ms`` when given); with only ``end_ms``, the last
        ``limit`` at or before it; with nothing, the latest ``limit``. Both bounds are
        inclusive and may be at most :data:`AGG_TRADES_MAX_WINDOW_MS` apart.

        Args:
            from_id: First aggregate id, inclusive.
            start_ms: Earliest time, inclusive.
            end_ms: Latest time, inclusive.
            limit: How many.

        Returns:
            Up to ``limit`` aggregate trades, oldest first.

        Raises:
            MarketQueryError: -1127 when the times are more than an hour apart; -1130 for a
                limit below 1.
        """
        self._check_limit(limit)
        if start_ms is not None and end_ms is not None:
            if end_ms - start_ms > AGG_TRADES_MAX_WINDOW_MS:
                raise MarketQueryError(-1127, "More than 1 hours between startTime and endTime.")
            if start_ms > end_ms:
                return []
        aggs: Iterator[_AggBuilder] | list[_AggBuilder]
        if from_id is not None:
            first = self._aggs[0].agg_id if self._aggs else 0
            aggs = itertools.islice(self._aggs, max(0, from_id - first), None)
        else:
            aggs = self._aggs
        selected = [
            agg
            for agg in aggs
            if (start_ms is None or agg.time_ms >= start_ms)
            and (end_ms is None or agg.time_ms <= end_ms)
        ]
        latest = from_id is None and start_ms is None
        selected = selected[-limit:] if latest else selected[:limit]
        return [agg.freeze() for agg in selected]

    # --- klines and statistics -------------------------------------------------------------

    def klines(
        self,
        interval: str,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = 500,
        *,
        now_ms: int | None = None,
    ) -> list[Kline]:
        """Candles of ``interval`` (Binance ``klines``).

        Candles exist from the one containing the market's opening up to the one containing
        ``now_ms`` (still open). A candle is selected by its open time: at or after
        ``start_ms``, at or before ``end_ms``. With ``start_ms``, the first ``limit`` such
        candles; otherwise the last ``limit`` up to ``end_ms`` (or now). Intervals without
        trades carry the previous close as open, high, low and close, with zero volumes.
        Candles older than the retained ones (``ActivityConfig.max_klines``) are not served.

        Args:
            interval: ``1s`` (spot only), ``1m`` ... ``1M``.
            start_ms: Earliest open time, inclusive.
            end_ms: Latest open time, inclusive.
            limit: How many.
            now_ms: The current time; defaults to the latest time the market has seen.

        Returns:
            Up to ``limit`` candles, oldest first.

        Raises:
            MarketQueryError: -1120 for an interval this product does not have; -1130 for a
                limit below 1.
        """
        self._check_limit(limit)
        if interval not in self._intervals:
            raise MarketQueryError(-1120, "Invalid interval.")
        now = self._now_ms if now_ms is None else now_ms
        if now_ms is not None:
            self._observe(now_ms)
        series = self._klines[interval]
        first = kline_open_time(interval, self._start_ms)
        if series.floor_ms is not None:
            first = max(first, series.floor_ms)
        last = kline_open_time(interval, now)
        low = first
        if start_ms is not None:
            aligned = kline_open_time(interval, start_ms)
            if aligned < start_ms:
                aligned = next_kline_open_time(interval, aligned)
            low = max(low, aligned)
        high = last
        if end_ms is not None:
            high = min(high, kline_open_time(interval, end_ms))
        if low > high:
            return []
        opens: list[int] = []
        if start_ms is not None:
            cursor = low
            while cursor <= high and len(opens) < limit:
                opens.append(cursor)
                cursor = next_kline_open_time(interval, cursor)
        else:
            cursor = high
            while cursor >= low and len(opens) < limit:
                opens.append(cursor)
                cursor = _previous_open(interval, cursor)
            opens.reverse()
        previous_close = series.close_before(opens[0], self._start_price)
        candles: list[Kline] = []
        for open_ms in opens:
            builder = series.candles.get(open_ms)
            if builder is not None:
                candle = builder.freeze()
            else:
                zero = Decimal(0)
                candle = Kline(
                    open_time_ms=open_ms,
                    close_time_ms=kline_close_time(interval, open_ms),
                    open=previous_close,
                    high=previous_close,
                    low=previous_close,
                    close=previous_close,
                    volume=zero,
                    quote_volume=zero,
                    trade_count=0,
                    taker_buy_base_volume=zero,
                    taker_buy_quote_volume=zero,
                    first_trade_id=-1,
                    last_trade_id=-1,
                )
            previous_close = candle.close
            candles.append(candle)
        return candles

    @_in_context
    def ticker_24hr(self, now_ms: int) -> Ticker24hr:
        """Rolling 24-hour statistics ending at ``now_ms`` (see :class:`Ticker24hr`).

        Args:
            now_ms: The window's end, epoch ms.

        Returns:
            The statistics.
        """
        self._observe(now_ms)
        window_start = now_ms - _TICKER_WINDOW_MS
        first_open = kline_open_time("1m", window_start)
        series = self._klines["1m"]
        candles = [
            candle for open_ms, candle in series.candles.items() if first_open <= open_ms <= now_ms
        ]
        last_price = self.last_price
        last_quantity = self._last_trade.quantity if self._last_trade else Decimal(0)
        prev_close = series.close_before(first_open, self._start_price)
        top = self.best_bid_ask()
        zero = Decimal(0)
        if candles:
            open_price = candles[0].open
            high = max(candle.high for candle in candles)
            low = min(candle.low for candle in candles)
            volume = sum((candle.volume for candle in candles), zero)
            quote_volume = sum((candle.quote_volume for candle in candles), zero)
            count = sum(candle.trade_count for candle in candles)
            first_id, last_id = candles[0].first_trade_id, candles[-1].last_trade_id
            close = candles[-1].close
            if self._is_coinm:
                contracts_value = volume * self._instrument.contract_size
                weighted = contracts_value / quote_volume if quote_volume else zero
            else:
                weighted = quote_volume / volume if volume else zero
        else:
            open_price = high = low = close = last_price
            volume = quote_volume = weighted = zero
            count, first_id, last_id = 0, -1, -1
        change = close - open_price
        percent = change * 100 / open_price if open_price else zero
        return Ticker24hr(
            price_change=change,
            price_change_percent=percent.quantize(_PERCENT_PLACES),
            weighted_avg_price=weighted.quantize(_PRICE_PLACES),
            prev_close_price=prev_close,
            last_price=close,
            last_quantity=last_quantity,
            bid_price=top.bid_price,
            bid_quantity=top.bid_quantity,
            ask_price=top.ask_price,
            ask_quantity=top.ask_quantity,
            open_price=open_price,
            high_price=high,
            low_price=low,
            volume=volume,
            quote_volume=quote_volume,
            open_time_ms=window_start,
            close_time_ms=now_ms,
            first_trade_id=first_id,
            last_trade_id=last_id,
            trade_count=count,
        )

    @_in_context
    def avg_price(self, now_ms: int) -> AvgPrice:
        """Spot ``avgPrice``: the volume-weighted price of the last ``avgPriceMins`` minutes.

        Computed from the retained trades.

        Args:
            now_ms: The current time, epoch ms.

        Returns:
            The average (see :class:`AvgPrice`).
        """
        self._observe(now_ms)
        mins = self._instrument.avg_price_mins
        since = now_ms - mins * _MINUTE_MS
        volume = Decimal(0)
        notional = Decimal(0)
        for trade in reversed(self._trades):
            if trade.time_ms <= since:
                break
            if trade.time_ms <= now_ms:
                volume += trade.quantity
                notional += trade.price * trade.quantity
        if volume:
            price = (notional / volume).quantize(_PRICE_PLACES)
        else:
            price = self.last_price.quantize(_PRICE_PLACES)
        close_time = self._last_trade.time_ms if self._last_trade else self._start_ms
        return AvgPrice(mins=mins, price=price, close_time_ms=close_time)

    # --- futures ---------------------------------------------------------------------------

    def _require_futures(self) -> None:
        if not self._is_futures:
            raise ValueError(f"{self._instrument.symbol} is a spot instrument: no futures data")

    def _funding_rate(self) -> Decimal:
        premium = self._premium
        rate = premium + _clamp(_INTEREST_RATE - premium, -_FUNDING_CLAMP, _FUNDING_CLAMP)
        return _clamp(rate, -_FUNDING_CAP, _FUNDING_CAP).quantize(_RATE_PLACES)

    def _index(self) -> Decimal:
        return (self._mid() / (1 + self._premium)).quantize(_PRICE_PLACES)

    def _mark(self, now_ms: int) -> Decimal:
        index = self._index()
        if self._is_perpetual:
            remaining = self._next_funding(now_ms) - now_ms
            basis = self._funding_rate() * remaining / FUNDING_INTERVAL_MS
            first = index * (1 + basis)
        else:
            first = index
        mark = _median([first, self._mid(), self.last_price])
        return mark.quantize(_PRICE_PLACES)

    @staticmethod
    def _next_funding(now_ms: int) -> int:
        return (now_ms // FUNDING_INTERVAL_MS + 1) * FUNDING_INTERVAL_MS

    @_in_context
    def index_price(self, now_ms: int) -> Decimal:
        """The index price: the book's mid over ``1 + premium``, 8 decimals.

        Args:
            now_ms: The current time, epoch ms.

        Returns:
            The index price.

        Raises:
            ValueError: On a spot instrument.
        """
        self._require_futures()
        self._observe(now_ms)
        return self._index()

    @_in_context
    def mark_price(self, now_ms: int) -> Decimal:
        """Binance's mark price: median of (index x (1 + rate x time to funding / 8 h), mid,
        last price), 8 decimals (delivery contracts use the plain index).

        Args:
            now_ms: The current time, epoch ms.

        Returns:
            The mark price.

        Raises:
            ValueError: On a spot instrument.
        """
        self._require_futures()
        self._observe(now_ms)
        return self._mark(now_ms)

    @_in_context
    def estimated_settle_price(self, now_ms: int) -> Decimal:
        """The estimated settle price (the index price), 8 decimals.

        Args:
            now_ms: The current time, epoch ms.

        Returns:
            The estimate.

        Raises:
            ValueError: On a spot instrument.
        """
        return self.index_price(now_ms)

    @_in_context
    def last_funding_rate(self, now_ms: int) -> Decimal | None:
        """The funding rate the next settlement will apply (Binance's ``lastFundingRate``).

        Args:
            now_ms: The current time, epoch ms.

        Returns:
            The rate, 8 decimals; ``None`` for delivery contracts.

        Raises:
            ValueError: On a spot instrument.
        """
        self._require_futures()
        self._observe(now_ms)
        return self._funding_rate() if self._is_perpetual else None

    def next_funding_time_ms(self, now_ms: int) -> int:
        """The next funding settlement (00:00, 08:00 or 16:00 UTC) after ``now_ms``.

        Args:
            now_ms: The current time, epoch ms.

        Returns:
            The settlement time, epoch ms; 0 for delivery contracts (as Binance shows).

        Raises:
            ValueError: On a spot instrument.
        """
        self._require_futures()
        return self._next_funding(now_ms) if self._is_perpetual else 0

    def interest_rate(self) -> Decimal | None:
        """The interest rate of the funding formula (0.01 % per 8 h); ``None`` for delivery.

        Raises:
            ValueError: On a spot instrument.
        """
        self._require_futures()
        return _INTEREST_RATE if self._is_perpetual else None

    @_in_context
    def premium_index(self, now_ms: int) -> PremiumIndex:
        """Everything Binance's ``premiumIndex`` shows for this symbol.

        Args:
            now_ms: The current time, epoch ms.

        Returns:
            The premium index record.

        Raises:
            ValueError: On a spot instrument.
        """
        self._require_futures()
        self._observe(now_ms)
        index = self._index()
        return PremiumIndex(
            mark_price=self._mark(now_ms),
            index_price=index,
            estimated_settle_price=index,
            last_funding_rate=self._funding_rate() if self._is_perpetual else None,
            interest_rate=self.interest_rate(),
            next_funding_time_ms=self.next_funding_time_ms(now_ms),
            time_ms=now_ms,
        )

    def funding_history(
        self, start_ms: int | None = None, end_ms: int | None = None, limit: int = 100
    ) -> list[FundingRecord]:
        """Settled funding (Binance ``fundingRate``), one record per 8-hour settlement since the
        market opened.

        With ``start_ms``, the first ``limit`` records at or after it (and at or before
        ``end_ms``); otherwise the last ``limit`` (at or before ``end_ms``). Settlements are
        recorded as the market's clock passes them.

        Args:
            start_ms: Earliest funding time, inclusive.
            end_ms: Latest funding time, inclusive.
            limit: How many.

        Returns:
            Records in ascending time; none for delivery contracts.

        Raises:
            ValueError: On a spot instrument.
            MarketQueryError: -1130 for a limit below 1.
        """
        self._require_futures()
        self._check_limit(limit)
        selected = [
            record
            for record in self._funding
            if (start_ms is None or record.funding_time_ms >= start_ms)
            and (end_ms is None or record.funding_time_ms <= end_ms)
        ]
        return selected[:limit] if start_ms is not None else selected[-limit:]

    def open_interest(self) -> Decimal:
        """Open interest (base asset on USD-M, contracts on COIN-M); moves with trading.

        Raises:
            ValueError: On a spot instrument.
        """
        self._require_futures()
        return self._quantity(self._open_interest_steps)
