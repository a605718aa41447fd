"""The market-data actor: trades, quotes, bars, tickers, mark/index prices, funding, history.

A deterministic actor (:class:`~actors.base.FoldActor`). Strategies publish
``market.subscribe`` / ``market.unsubscribe`` (every kind but BOOK, which the book-sync actor
serves); this actor turns them into stream subscriptions of connectivity, reference-counted
per stream: the first subscriber subscribes the stream, the last one to leave unsubscribes
it. Mark price, index price and funding rate share one ``<symbol>@markPrice@1s`` stream (one
``markPriceUpdate`` carries all three), so subscribing to the three costs one stream.

Frames (``stream.frame`` inputs) of the streams it holds are parsed by
:mod:`actors.binance.market_data` into ``market.*`` events; which instrument a frame belongs to
comes from the stream it arrived on, not from parsing the symbol. A frame that cannot be
parsed is logged with the reason (the raw frame stays in the journal) and skipped: it never
stops the actor. Klines publish closed bars only.

History (``market.history_request``): bars (``klines``, asked in windows of at most one page
and 200 days, since COIN-M answers the bars nearest the window's end) or aggregated trades
(``aggTrades``) from ``start_ms`` to ``end_ms``, one page in flight at a time (so a long
range never floods the limiter; connectivity's limiter paces the pages by weight), each page
published as a ``market.history_chunk`` with how far it got, then one
``market.history_done`` (with the count, or the error that ended it). A kline still open on
the server when its page was answered is not a bar yet: "now" is the answer's journal time
plus the client's latest measured server clock offset (``clock.offset``, which connectivity
journals), so a local clock behind the server's does not drop the newest closed bar, and one
ahead does not publish an open one.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, ClassVar

import attrs

from actors.base import FoldActor
from actors.binance.market_data import (
    MarketDataError,
    StreamNameError,
    parse_agg_trade,
    parse_book_ticker,
    parse_frame,
    parse_kline,
    parse_mark_price,
    parse_rest_agg_trades,
    parse_rest_klines,
    parse_ticker,
    parse_trade,
    stream_name,
)
from actors.config import AccountType, ClientConfig
from events.base import Envelope, Event
from events.connectivity import (
    ClockOffset,
    RestRequest,
    RestResponse,
    StreamFrame,
    SubscribeStreams,
    UnsubscribeStreams,
)
from events.market import (
    VENUE_SUFFIX,
    DataKind,
    HistoryChunk,
    HistoryDone,
    RequestHistory,
    SubscribeMarketData,
    UnsubscribeMarketData,
)

__all__ = ["NAME", "MarketDataActor", "symbol_of"]

logger = logging.getLogger("tern.market_data")

#: The actor's name.
NAME = "market-data"
#: Rows per history page (Binance's maximum for klines on Spot and aggTrades everywhere).
PAGE_LIMIT = 1000
#: Binance refuses an aggTrades range longer than one hour when both ends are given.
_AGG_WINDOW_MS = 3_600_000
#: COIN-M refuses a klines range longer than 200 days.
_KLINE_SPAN_MS = 200 * 86_400_000
_MINUTE_MS = 60_000
_DAY_MS = 86_400_000
#: Kline intervals in ms; a month counts 28 days, so a window never holds more than a page.
_INTERVAL_MS = {
    "1s": 1000,
    "1m": _MINUTE_MS,
    "3m": 3 * _MINUTE_MS,
    "5m": 5 * _MINUTE_MS,
    "15m": 15 * _MINUTE_MS,
    "30m": 30 * _MINUTE_MS,
    "1h": 60 * _MINUTE_MS,
    "2h": 120 * _MINUTE_MS,
    "4h": 240 * _MINUTE_MS,
    "6h": 360 * _MINUTE_MS,
    "8h": 480 * _MINUTE_MS,
    "12h": 720 * _MINUTE_MS,
    "1d": 1440 * _MINUTE_MS,
    "3d": 3 * 1440 * _MINUTE_MS,
    "1w": 7 * 1440 * _MINUTE_MS,
    "1M": 28 * 1440 * _MINUTE_MS,
}
_MARK_KINDS = (DataKind.MARK_PRICE, DataKind.INDEX_PRICE, DataKind.FUNDING_RATE)
_PREFIX = '{"stream":"'
_REST = {
    AccountType.SPOT: "/api/v3",
    AccountType.USDT_FUTURES: "/fapi/v1",
    AccountType.COIN_FUTURES: "/dapi/v1",
}


def symbol_of(instrument_id: str, account_type: AccountType) -> str:
    """The Binance symbol of an instrument id (``BTCUSDT-PERP.BINANCE`` is ``BTCUSDT`` on
    USD-M and, as ``BTCUSD-PERP.BINANCE``, ``BTCUSD_PERP`` on COIN-M).

    Every futures instrument has exactly one id, so two ids never share a stream: a USD-M
    perpetual is only ``BTCUSDT-PERP.BINANCE`` (``BTCUSDT.BINANCE`` is refused there), a COIN-M
    perpetual only ``BTCUSD-PERP.BINANCE`` (not ``BTCUSD_PERP.BINANCE``), and a dated future
    keeps its ``_YYMMDD``.

    Raises:
        ValueError: not an instrument id of this venue, a perpetual id on Spot, or a futures
            id that is not the instrument's one id.
    """
    if not instrument_id.endswith(VENUE_SUFFIX) or len(instrument_id) == len(VENUE_SUFFIX):
        raise ValueError(f"{instrument_id!r} is not a Binance instrument id (SYMBOL.BINANCE)")
    name = instrument_id[: -len(VENUE_SUFFIX)]
    if name.endswith("-PERP"):
        base = name[: -len("-PERP")]
        if not base:
            raise ValueError(f"{instrument_id!r} names no symbol")
        if account_type is AccountType.SPOT:
            raise ValueError(f"{instrument_id!r} is a perpetual; Spot has none")
        return f"{base}_PERP" if account_type is AccountType.COIN_FUTURES else base
    if account_type is not AccountType.SPOT:
        if name.endswith("_PERP"):
            raise ValueError(
                f"{instrument_id!r}: a perpetual's id is {name[: -len('_PERP')]}-PERP.BINANCE"
            )
        if "_" not in name:
            raise ValueError(
                f"{instrument_id!r}: on futures {name} is a perpetual, named {name}-PERP.BINANCE "
                "(dated futures keep their _YYMMDD)"
            )
    return name


@attrs.define
class _Stream:
    """One stream this actor holds: who wants what from it."""

    client: str
    instrument_id: str
    kind: str  # "trade", "agg_trade", "quote", "bar", "ticker", "mark"
    #: (subscriber, DataKind, interval) of every subscription it serves.
    wanted: dict[tuple[str, DataKind, str | None], None] = attrs.field(factory=dict)


@attrs.define
class _History:
    request: RequestHistory
    client: ClientConfig
    symbol: str
    count: int = 0
    page: int = 0
    #: aggTrades: the next aggregate id to ask for (after the first page).
    next_id: int | None = None
    #: klines: the next open time to ask for, and the end of the window asked.
    next_ms: int = 0
    window_end: int = 0


class MarketDataActor(FoldActor):
    """See the module docstring. ``clients`` are the session's ``[[clients]]``."""

    SUBSCRIPTIONS: ClassVar[tuple[str, ...]] = (
        SubscribeMarketData.TAG,
        UnsubscribeMarketData.TAG,
        RequestHistory.TAG,
        StreamFrame.TAG,
        RestResponse.TAG,
        ClockOffset.TAG,
    )

    def __init__(
        self,
        name: str = NAME,
        *,
        seed: int | str = 0,
        clients: Sequence[ClientConfig] = (),
        params: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(name, seed=seed, params=params)
        self.clients = {config.name: config for config in clients}
        #: (client, stream name) -> what it serves.
        self.streams: dict[tuple[str, str], _Stream] = {}
        self.history: dict[str, _History] = {}
        self.errors = 0
        self._now_ms = 0
        #: Client -> the latest measured server clock offset (server - local, ms).
        self.offsets: dict[str, int] = {}

    def handle(self, envelope: Envelope) -> Sequence[Event]:
        event = envelope.event
        self._now_ms = envelope.ts_ns // 1_000_000
        if type(event) is StreamFrame:
            return self._frame(event)
        if isinstance(event, SubscribeMarketData):
            return self._subscribe(event) if event.kind is not DataKind.BOOK else ()
        if isinstance(event, UnsubscribeMarketData):
            return self._unsubscribe(event) if event.kind is not DataKind.BOOK else ()
        if isinstance(event, RequestHistory):
            return self._history_start(event)
        if isinstance(event, RestResponse) and event.call_id.startswith(f"{self.name}:h:"):
            return self._history_page(event)
        if isinstance(event, ClockOffset):
            self.offsets[event.client] = event.offset_ms
        return ()

    # -------------------------------------------------------------------- subscriptions

    def _stream_for(
        self, client: ClientConfig, instrument_id: str, kind: DataKind, interval: str | None
    ) -> tuple[str, str]:
        symbol = symbol_of(instrument_id, client.account_type)
        name = stream_name(
            kind,
            symbol,
            client.account_type,
            interval=interval,
            use_agg_trades=client.use_agg_trade_ticks,
        )
        if kind is DataKind.TRADES:
            family = "agg_trade" if "@aggTrade" in name else "trade"
        elif kind in _MARK_KINDS:
            family = "mark"
        else:
            family = {DataKind.QUOTES: "quote", DataKind.BARS: "bar", DataKind.TICKER: "ticker"}[
                kind
            ]
        return name, family

    def _subscribe(self, command: SubscribeMarketData) -> list[Event]:
        client = self.clients.get(command.client)
        if client is None:
            logger.error(
                "market.subscribe from %s names unknown client %r",
                command.subscriber,
                command.client,
            )
            return []
        try:
            name, family = self._stream_for(
                client, command.instrument_id, command.kind, command.interval
            )
        except (StreamNameError, ValueError) as exc:
            logger.error(
                "market.subscribe from %s for %s %s refused: %s",
                command.subscriber,
                command.instrument_id,
                command.kind.value,
                exc,
            )
            return []
        key = (client.name, name)
        stream = self.streams.get(key)
        new = stream is None
        if stream is None:
            stream = self.streams[key] = _Stream(client.name, command.instrument_id, family)
        stream.wanted[(command.subscriber, command.kind, command.interval)] = None
        if not new:
            return []
        return [SubscribeStreams(client=client.name, subscriber=self.name, streams=(name,))]

    def _unsubscribe(self, command: UnsubscribeMarketData) -> list[Event]:
        client = self.clients.get(command.client)
        if client is None:
            return []
        try:
            name, _ = self._stream_for(
                client, command.instrument_id, command.kind, command.interval
            )
        except (StreamNameError, ValueError):
            return []
        key = (client.name, name)
        stream = self.streams.get(key)
        if stream is None:
            return []
        stream.wanted.pop((command.subscriber, command.kind, command.interval), None)
        if stream.wanted:
            return []
        del self.streams[key]
        return [UnsubscribeStreams(client=client.name, subscriber=self.name, streams=(name,))]

    # --------------------------------------------------------------------------- frames

    def _frame(self, frame: StreamFrame) -> Sequence[Event]:
        text = frame.text
        # The stream name comes first in a combined-stream frame: find it without parsing
        # the frame, so frames of streams held by others cost almost nothing.
        if text.startswith(_PREFIX):
            end = text.find('"', len(_PREFIX))
            if (frame.client, text[len(_PREFIX) : end]) not in self.streams:
                return ()
        try:
            name, data = parse_frame(text)
            stream = self.streams.get((frame.client, name))
            if stream is None:
                return ()
            return self._parse(stream, data)
        except MarketDataError as exc:
            self.errors += 1
            logger.warning("client %s: frame skipped: %s", frame.client, exc)
            return ()

    def _parse(self, stream: _Stream, data: Any) -> Sequence[Event]:
        client, iid, family = stream.client, stream.instrument_id, stream.kind
        if family == "trade":
            return (parse_trade(data, client, iid),)
        if family == "agg_trade":
            return (parse_agg_trade(data, client, iid),)
        if family == "quote":
            return (parse_book_ticker(data, client, iid),)
        if family == "bar":
            bar = parse_kline(data, client, iid)
            return () if bar is None else (bar,)
        if family == "ticker":
            return (parse_ticker(data, client, iid),)
        mark, index, funding = parse_mark_price(data, client, iid)
        kinds = {kind for _, kind, _ in stream.wanted}
        out: list[Event] = []
        if DataKind.MARK_PRICE in kinds:
            out.append(mark)
        if DataKind.INDEX_PRICE in kinds:
            out.append(index)
        if DataKind.FUNDING_RATE in kinds and funding is not None:
            out.append(funding)
        return out

    # -------------------------------------------------------------------------- history

    def _history_start(self, request: RequestHistory) -> list[Event]:
        def done(error: str) -> list[Event]:
            return [
                HistoryDone(
                    client=request.client,
                    request_id=request.request_id,
                    instrument_id=request.instrument_id,
                    count=0,
                    error=error,
                )
            ]

        client = self.clients.get(request.client)
        if client is None:
            return done(f"unknown client {request.client!r}")
        if request.kind not in (DataKind.BARS, DataKind.TRADES):
            return done(f"history serves BARS and TRADES, not {request.kind.value}")
        if request.request_id in self.history:
            return done(f"request id {request.request_id!r} is already running")
        if request.end_ms < request.start_ms:
            return done("end_ms is before start_ms")
        try:
            symbol = symbol_of(request.instrument_id, client.account_type)
            if request.kind is DataKind.BARS:
                stream_name(DataKind.BARS, symbol, client.account_type, interval=request.interval)
        except (StreamNameError, ValueError) as exc:
            return done(str(exc))
        state = _History(request, client, symbol, next_ms=request.start_ms)
        self.history[request.request_id] = state
        return [self._next_page(state)]

    def _next_page(self, state: _History) -> RestRequest:
        request = state.request
        state.page += 1
        params = {"symbol": state.symbol, "limit": str(PAGE_LIMIT)}
        if request.kind is DataKind.BARS:
            assert request.interval is not None
            path = "klines"
            # One window of at most PAGE_LIMIT bars (and 200 days) per page: COIN-M answers
            # the most recent bars before endTime, so a wider window would lose its start.
            window = min(PAGE_LIMIT * _INTERVAL_MS[request.interval], _KLINE_SPAN_MS)
            state.window_end = min(request.end_ms, state.next_ms + window - 1)
            params.update(
                interval=request.interval,
                startTime=str(state.next_ms),
                endTime=str(state.window_end),
            )
        else:
            path = "aggTrades"
            if state.next_id is None:
                params.update(
                    startTime=str(request.start_ms),
                    endTime=str(min(request.end_ms, request.start_ms + _AGG_WINDOW_MS - 1)),
                )
            else:
                params["fromId"] = str(state.next_id)
        return RestRequest(
            client=state.client.name,
            call_id=f"{self.name}:h:{request.request_id}:{state.page}",
            method="GET",
            path=f"{_REST[state.client.account_type]}/{path}",
            params=params,
        )

    def _history_page(self, response: RestResponse) -> list[Event]:
        request_id = response.call_id[len(f"{self.name}:h:") :].rpartition(":")[0]
        state = self.history.get(request_id)
        if state is None:
            return []
        request = state.request
        if response.outcome != "ok":
            return self._history_end(
                state, f"page {state.page} failed: {response.message or response.status}"
            )
        try:
            if request.kind is DataKind.BARS:
                assert request.interval is not None
                # The kline still open on the server when it answered is not a bar yet.
                now_ms = self._now_ms + self.offsets.get(request.client, 0)
                bars = parse_rest_klines(
                    response.body,
                    request.client,
                    request.instrument_id,
                    request.interval,
                    now_ms=now_ms,
                )
                bars = tuple(
                    bar for bar in bars if state.next_ms <= bar.open_ms <= state.window_end
                )
                trades: tuple[Any, ...] = ()
                # Nothing after the kline still open at the answer's time can be a bar yet.
                step = _INTERVAL_MS[request.interval]
                open_now = now_ms - now_ms % step if step <= _DAY_MS else now_ms
                through = min(state.window_end, open_now - 1)
                state.next_ms = state.window_end + 1
                more = state.next_ms <= min(request.end_ms, open_now - 1)
            else:
                page = parse_rest_agg_trades(response.body, request.client, request.instrument_id)
                trades = tuple(
                    t for t in page if request.start_ms <= t.ts_event_ms <= request.end_ms
                )
                bars = ()
                last = page[-1] if page else None
                if last is None:
                    # An empty first hour says nothing about the next ones: move the window.
                    window_end = request.start_ms + _AGG_WINDOW_MS * state.page
                    more = state.next_id is None and window_end <= request.end_ms
                    through = min(window_end - 1, request.end_ms)
                else:
                    if state.next_id is not None and last.trade_id < state.next_id:
                        return self._history_end(
                            state, f"page {state.page} did not advance past trade {last.trade_id}"
                        )
                    state.next_id = last.trade_id + 1
                    more = last.ts_event_ms <= request.end_ms
                    through = min(last.ts_event_ms, request.end_ms)
        except MarketDataError as exc:
            return self._history_end(state, f"page {state.page} not understood: {exc}")
        out: list[Event] = []
        count = len(bars) + len(trades)
        state.count += count
        if count:
            out.append(
                HistoryChunk(
                    client=request.client,
                    request_id=request.request_id,
                    instrument_id=request.instrument_id,
                    bars=bars,
                    trades=trades,
                    through_ms=through,
                )
            )
        if more:
            if request.kind is DataKind.TRADES and state.next_id is None:
                out.append(self._next_window(state))
            else:
                out.append(self._next_page(state))
            return out
        return out + self._history_end(state, "")

    def _next_window(self, state: _History) -> RestRequest:
        """aggTrades before the first trade is found: the next one-hour window."""
        request = state.request
        start = request.start_ms + _AGG_WINDOW_MS * state.page
        state.page += 1
        return RestRequest(
            client=state.client.name,
            call_id=f"{self.name}:h:{request.request_id}:{state.page}",
            method="GET",
            path=f"{_REST[state.client.account_type]}/aggTrades",
            params={
                "symbol": state.symbol,
                "limit": str(PAGE_LIMIT),
                "startTime": str(start),
                "endTime": str(min(request.end_ms, start + _AGG_WINDOW_MS - 1)),
            },
        )

    def _history_end(self, state: _History, error: str) -> list[Event]:
        del self.history[state.request.request_id]
        return [
            HistoryDone(
                client=state.request.client,
                request_id=state.request.request_id,
                instrument_id=state.request.instrument_id,
                count=state.count,
                error=error,
            )
        ]
