"""Turn market activity into Binance's stream events, at Binance's cadences.

Diff depth is aggregated per symbol and per speed: every change set the market makes carries
one update id, and a stream of speed ``s`` emits, every ``s`` ms in which something changed,
one event whose ``U``/``u`` span the ids it merged (for a price changed twice, the later
quantity wins) and, on futures, whose ``pu`` is the ``u`` of the previous event of that
stream. A REST snapshot's ``lastUpdateId`` is the market's id at that moment, so it lands
sometimes between two events and sometimes inside one, as on Binance.

Cadences (binance-protocol.md section 7.3): Spot ``@depth`` 1000 ms and ``@depth@100ms``;
futures ``@depth`` 250 ms, ``@500ms``, ``@100ms`` and the unthrottled ``@0ms``; partial
depth at the same speeds; klines every 2 s on Spot (1 s for ``1s``) and 250 ms on futures;
24 h tickers every 1 s (Spot) or 2 s (futures); mark price every 3 s or 1 s.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs
import trio

from scenarios.venue import payloads
from scenarios.venue.instruments import Instrument, Product
from scenarios.venue.market import BookUpdate, Kline, MarketState, Ticker24hr, Trade

if TYPE_CHECKING:
    from scenarios.venue.server import Venue

DEPTH_SPEEDS: dict[Product, dict[int, str]] = {
    Product.SPOT: {1000: "", 100: "@100ms"},
    Product.USDM: {250: "", 500: "@500ms", 100: "@100ms", 0: "@0ms"},
    Product.COINM: {250: "", 500: "@500ms", 100: "@100ms", 0: "@0ms"},
}
PARTIAL_LEVELS = (5, 10, 20)
KLINE_PERIOD_MS = {Product.SPOT: 2000, Product.USDM: 250, Product.COINM: 250}
TICKER_PERIOD_MS = {Product.SPOT: 1000, Product.USDM: 2000, Product.COINM: 2000}


def precision_of(instrument: Instrument) -> payloads.Precision:
    """How many decimals the instrument's payloads show."""
    if instrument.product is Product.SPOT:
        return payloads.SPOT_PRECISION
    notional = (
        instrument.quote_precision
        if instrument.product is Product.USDM
        else instrument.base_asset_precision
    )
    return payloads.Precision(
        price=instrument.price_precision,
        quantity=instrument.quantity_precision,
        notional=notional,
    )


def ticker_arguments(ticker: Ticker24hr) -> dict[str, Any]:
    """A market's 24 h statistics as the keyword arguments of the ticker payloads."""
    return {
        "open_price": ticker.open_price,
        "high_price": ticker.high_price,
        "low_price": ticker.low_price,
        "last_price": ticker.last_price,
        "last_quantity": ticker.last_quantity,
        "previous_close_price": ticker.prev_close_price,
        "bid_price": ticker.bid_price,
        "bid_quantity": ticker.bid_quantity,
        "ask_price": ticker.ask_price,
        "ask_quantity": ticker.ask_quantity,
        "volume": ticker.volume,
        "notional_volume": ticker.quote_volume,
        "weighted_average_price": ticker.weighted_avg_price,
        "open_time": ticker.open_time_ms,
        "close_time": ticker.close_time_ms,
        "first_trade_id": ticker.first_trade_id,
        "last_trade_id": ticker.last_trade_id,
        "trade_count": ticker.trade_count,
    }


def kline_arguments(kline: Kline) -> dict[str, Any]:
    """A candle as the keyword arguments the REST row and the stream event share."""
    return {
        "open_time": kline.open_time_ms,
        "close_time": kline.close_time_ms,
        "open_price": kline.open,
        "high_price": kline.high,
        "low_price": kline.low,
        "close_price": kline.close,
        "volume": kline.volume,
        "notional_volume": kline.quote_volume,
        "trade_count": kline.trade_count,
        "taker_buy_volume": kline.taker_buy_base_volume,
        "taker_buy_notional_volume": kline.taker_buy_quote_volume,
    }


@attrs.define
class _Window:
    """Changes since the last event of one depth speed."""

    first_id: int | None = None
    last_id: int = 0
    bids: dict[Decimal, Decimal] = attrs.field(factory=dict)
    asks: dict[Decimal, Decimal] = attrs.field(factory=dict)

    def add(self, update: BookUpdate) -> None:
        if self.first_id is None:
            self.first_id = update.update_id
        self.last_id = update.update_id
        for price, quantity in update.bids:
            self.bids[price] = quantity
        for price, quantity in update.asks:
            self.asks[price] = quantity


@attrs.define
class _SymbolFeed:
    market: MarketState
    precision: payloads.Precision
    windows: dict[int, _Window]
    previous_final: dict[int, int]
    held: dict[int, dict[str, Any]] = attrs.field(factory=dict)
    best: tuple[Decimal, Decimal, Decimal, Decimal] | None = None
    next_agg_id: int | None = None
    kline_open: dict[str, int] = attrs.field(factory=dict)


class Feeds:
    """Stream producers for every market of a venue."""

    def __init__(self, venue: Venue) -> None:
        self.venue = venue
        self.symbols: dict[tuple[Product, str], _SymbolFeed] = {}
        for (product, symbol), market in venue.markets.items():
            speeds = DEPTH_SPEEDS[product]
            self.symbols[(product, symbol)] = _SymbolFeed(
                market=market,
                precision=precision_of(market.instrument),
                windows={speed: _Window() for speed in speeds},
                previous_final={speed: market.update_id for speed in speeds},
            )

    # --- live events ----------------------------------------------------------------------

    def on_market(self, product: Product, symbol: str, events: Sequence[Any]) -> None:
        """Take one step's market events: aggregate depth, push trades and tops at once."""
        feed = self.symbols[(product, symbol)]
        hub = self.venue.hub
        name = symbol.lower()
        now = self.venue.clock.now_ms()
        for event in events:
            if isinstance(event, BookUpdate):
                for speed, window in feed.windows.items():
                    window.add(event)
                    if speed == 0:
                        self._flush_depth(product, symbol, feed, 0, now)
            elif isinstance(event, Trade) and product is Product.SPOT:
                stream = f"{name}@trade"
                if hub.wanted(product, stream):
                    hub.publish(
                        product,
                        stream,
                        payloads.trade_event(
                            product.value,
                            symbol=symbol,
                            event_time=now,
                            trade_id=event.trade_id,
                            price=event.price,
                            quantity=event.quantity,
                            trade_time=event.time_ms,
                            is_buyer_maker=event.buyer_is_maker,
                            precision=feed.precision,
                        ),
                    )
        self._push_agg_trades(product, symbol, feed, now)
        self._push_book_ticker(product, symbol, feed, now)

    def _push_agg_trades(self, product: Product, symbol: str, feed: _SymbolFeed, now: int) -> None:
        stream = f"{symbol.lower()}@aggTrade"
        if feed.next_agg_id is None:
            existing = feed.market.agg_trades(limit=1)
            feed.next_agg_id = existing[-1].agg_id + 1 if existing else 0
            return
        fresh = feed.market.agg_trades(from_id=feed.next_agg_id, limit=1000)
        if not fresh:
            return
        feed.next_agg_id = fresh[-1].agg_id + 1
        if not self.venue.hub.wanted(product, stream):
            return
        for aggregate in fresh:
            self.venue.hub.publish(
                product,
                stream,
                payloads.aggregate_trade_event(
                    product.value,
                    symbol=symbol,
                    event_time=now,
                    aggregate_id=aggregate.agg_id,
                    price=aggregate.price,
                    quantity=aggregate.quantity,
                    first_trade_id=aggregate.first_trade_id,
                    last_trade_id=aggregate.last_trade_id,
                    trade_time=aggregate.time_ms,
                    is_buyer_maker=aggregate.buyer_is_maker,
                    precision=feed.precision,
                ),
            )

    def _push_book_ticker(self, product: Product, symbol: str, feed: _SymbolFeed, now: int) -> None:
        top = feed.market.best_bid_ask()
        best = (top.bid_price, top.bid_quantity, top.ask_price, top.ask_quantity)
        if best == feed.best:
            return
        feed.best = best
        stream = f"{symbol.lower()}@bookTicker"
        if not self.venue.hub.wanted(product, stream):
            return
        self.venue.hub.publish(
            product,
            stream,
            payloads.book_ticker_event(
                product.value,
                symbol=symbol,
                update_id=top.update_id,
                event_time=now,
                transaction_time=now,
                bid_price=top.bid_price,
                bid_quantity=top.bid_quantity,
                ask_price=top.ask_price,
                ask_quantity=top.ask_quantity,
                precision=feed.precision,
                pair=feed.market.instrument.pair if product is not Product.SPOT else None,
            ),
        )

    # --- depth ----------------------------------------------------------------------------

    def _flush_depth(
        self, product: Product, symbol: str, feed: _SymbolFeed, speed: int, now: int
    ) -> None:
        window = feed.windows[speed]
        suffix = DEPTH_SPEEDS[product][speed]
        name = symbol.lower()
        hub = self.venue.hub
        pair = feed.market.instrument.pair if product is not Product.SPOT else None
        if window.first_id is not None:
            feed.windows[speed] = _Window()
            previous = feed.previous_final[speed]
            feed.previous_final[speed] = window.last_id
            stream = f"{name}@depth{suffix}"
            if hub.wanted(product, stream):
                event = payloads.depth_update_event(
                    product.value,
                    symbol=symbol,
                    event_time=now,
                    transaction_time=now,
                    first_update_id=window.first_id,
                    final_update_id=window.last_id,
                    previous_final_update_id=previous,
                    bids=sorted(window.bids.items(), reverse=True),
                    asks=sorted(window.asks.items()),
                    precision=feed.precision,
                    pair=pair,
                )
                self._send_depth(product, symbol, feed, speed, stream, event)
            if product is not Product.SPOT and speed != 0:
                self._partial(product, symbol, feed, suffix, now, window, previous, pair)
        if product is Product.SPOT:
            self._partial(product, symbol, feed, suffix, now, None, 0, None)

    def _partial(
        self,
        product: Product,
        symbol: str,
        feed: _SymbolFeed,
        suffix: str,
        now: int,
        window: _Window | None,
        previous: int,
        pair: str | None,
    ) -> None:
        hub = self.venue.hub
        for levels in PARTIAL_LEVELS:
            stream = f"{symbol.lower()}@depth{levels}{suffix}"
            if not hub.wanted(product, stream):
                continue
            last_id, bids, asks = feed.market.depth(levels)
            hub.publish(
                product,
                stream,
                payloads.partial_depth_event(
                    product.value,
                    symbol=symbol,
                    event_time=now,
                    transaction_time=now,
                    first_update_id=window.first_id if window and window.first_id else last_id,
                    final_update_id=window.last_id if window else last_id,
                    previous_final_update_id=previous,
                    bids=bids,
                    asks=asks,
                    precision=feed.precision,
                    pair=pair,
                ),
            )

    def _send_depth(
        self,
        product: Product,
        symbol: str,
        feed: _SymbolFeed,
        speed: int,
        stream: str,
        event: dict[str, Any],
    ) -> None:
        """Publish one diff event, applying any sequencing fault injected for the symbol."""
        hub = self.venue.hub
        fault = self.venue.faults.depth_fault(product.value, symbol)
        held = feed.held.pop(speed, None)
        if fault is not None and fault.skip > 0:
            fault.skip -= 1
        elif fault is not None and fault.reorder > 0 and held is None:
            fault.reorder -= 1
            feed.held[speed] = event
            return
        else:
            hub.publish(product, stream, event)
            if fault is not None and fault.repeat > 0:
                fault.repeat -= 1
                hub.publish(product, stream, event)
        if held is not None:
            hub.publish(product, stream, held)

    # --- periodic streams -----------------------------------------------------------------

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Run every periodic producer until cancelled."""
        async with trio.open_nursery() as nursery:
            speeds = sorted({s for table in DEPTH_SPEEDS.values() for s in table if s > 0})
            for speed in speeds:
                nursery.start_soon(self._every, speed, self._depth_tick, speed)
            for period in sorted(set(KLINE_PERIOD_MS.values())):
                nursery.start_soon(self._every, period, self._kline_tick, period)
            nursery.start_soon(self._every, 1000, self._kline_tick, 1000)
            for period in sorted(set(TICKER_PERIOD_MS.values())):
                nursery.start_soon(self._every, period, self._ticker_tick, period)
            nursery.start_soon(self._every, 3000, self._mark_tick, "")
            nursery.start_soon(self._every, 1000, self._mark_tick, "@1s")
            task_status.started()

    async def _every(self, period_ms: int, action: Any, argument: Any) -> None:
        period = period_ms / 1000
        next_time = trio.current_time()
        while True:
            next_time += period
            await trio.sleep_until(next_time)
            action(argument)

    def _depth_tick(self, speed: int) -> None:
        now = self.venue.clock.now_ms()
        for (product, symbol), feed in self.symbols.items():
            if speed in feed.windows:
                self._flush_depth(product, symbol, feed, speed, now)

    def _kline_tick(self, period_ms: int) -> None:
        hub = self.venue.hub
        now = self.venue.clock.now_ms()
        for (product, symbol), feed in self.symbols.items():
            for interval in feed.market.kline_intervals:
                due = 1000 if interval == "1s" else KLINE_PERIOD_MS[product]
                if due != period_ms:
                    continue
                stream = f"{symbol.lower()}@kline_{interval}"
                if not hub.wanted(product, stream):
                    continue
                recent = feed.market.klines(interval, limit=2, now_ms=now)
                if not recent:
                    continue
                current = recent[-1]
                sent_open = feed.kline_open.get(interval)
                if sent_open is not None and sent_open < current.open_time_ms and len(recent) > 1:
                    hub.publish(
                        product, stream, self._kline(symbol, feed, interval, recent[-2], True, now)
                    )
                feed.kline_open[interval] = current.open_time_ms
                hub.publish(
                    product, stream, self._kline(symbol, feed, interval, current, False, now)
                )

    @staticmethod
    def _kline(
        symbol: str, feed: _SymbolFeed, interval: str, kline: Kline, closed: bool, now: int
    ) -> dict[str, Any]:
        return payloads.kline_event(
            symbol=symbol,
            event_time=now,
            interval=interval,
            first_trade_id=kline.first_trade_id,
            last_trade_id=kline.last_trade_id,
            is_closed=closed,
            **kline_arguments(kline),
            precision=feed.precision,
        )

    def _ticker_tick(self, period_ms: int) -> None:
        hub = self.venue.hub
        now = self.venue.clock.now_ms()
        arrays: dict[tuple[Product, str], list[dict[str, Any]]] = {}
        for (product, symbol), feed in self.symbols.items():
            if TICKER_PERIOD_MS[product] != period_ms:
                continue
            name = symbol.lower()
            full, mini = f"{name}@ticker", f"{name}@miniTicker"
            all_full = hub.wanted(product, "!ticker@arr")
            all_mini = hub.wanted(product, "!miniTicker@arr")
            wants_full = all_full or hub.wanted(product, full)
            wants_mini = all_mini or hub.wanted(product, mini)
            if not (wants_full or wants_mini):
                continue
            ticker = feed.market.ticker_24hr(now)
            pair = feed.market.instrument.pair if product is Product.COINM else None
            if wants_full:
                event = payloads.ticker_24hr_event(
                    product.value,
                    symbol=symbol,
                    event_time=now,
                    **ticker_arguments(ticker),
                    precision=feed.precision,
                    pair=pair,
                )
                hub.publish(product, full, event)
                if all_full:
                    arrays.setdefault((product, "!ticker@arr"), []).append(event)
            if wants_mini:
                event = payloads.mini_ticker_event(
                    product.value,
                    symbol=symbol,
                    event_time=now,
                    open_price=ticker.open_price,
                    high_price=ticker.high_price,
                    low_price=ticker.low_price,
                    last_price=ticker.last_price,
                    volume=ticker.volume,
                    notional_volume=ticker.quote_volume,
                    precision=feed.precision,
                    pair=pair,
                )
                hub.publish(product, mini, event)
                if all_mini:
                    arrays.setdefault((product, "!miniTicker@arr"), []).append(event)
        for (product, stream), events in arrays.items():
            hub.publish(product, stream, events)

    def _mark_tick(self, suffix: str) -> None:
        hub = self.venue.hub
        now = self.venue.clock.now_ms()
        batches: dict[Product, list[dict[str, Any]]] = {}
        for (product, symbol), feed in self.symbols.items():
            if product is Product.SPOT:
                continue
            stream = f"{symbol.lower()}@markPrice{suffix}"
            everyone = f"!markPrice@arr{suffix}"
            if not (hub.wanted(product, stream) or hub.wanted(product, everyone)):
                continue
            index = feed.market.premium_index(now)
            event = payloads.mark_price_event(
                product.value,
                symbol=symbol,
                event_time=now,
                mark_price=index.mark_price,
                index_price=index.index_price,
                estimated_settle_price=index.estimated_settle_price,
                funding_rate=index.last_funding_rate,
                next_funding_time=index.next_funding_time_ms,
            )
            hub.publish(product, stream, event)
            batches.setdefault(product, []).append(event)
        for product, events in batches.items():
            hub.publish(product, f"!markPrice@arr{suffix}", events)
