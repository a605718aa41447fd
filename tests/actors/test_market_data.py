"""The market-data actor as a fold: subscriptions, stream frames and history pages in,
stream subscriptions, market events and history chunks out. No network.

Frames are built here as Binance sends them on a combined stream (``{"stream", "data"}``);
history pages are answered by a small model of Binance's ``klines`` and ``aggTrades``
endpoints (page limits, ``startTime``/``endTime``/``fromId``, the still-open kline).
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import actors.market_data as market_data_module
from actors.config import AccountType, ClientConfig
from actors.market_data import NAME, PAGE_LIMIT, MarketDataActor, symbol_of
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
    Bar,
    DataKind,
    FundingRate,
    HistoryChunk,
    HistoryDone,
    IndexPrice,
    MarkPrice,
    QuoteTick,
    RequestHistory,
    SubscribeMarketData,
    Ticker,
    TradeTick,
    UnsubscribeMarketData,
)

SPOT = ClientConfig(name="spot", account_type=AccountType.SPOT)
SPOT_AGG = ClientConfig(name="spot-agg", account_type=AccountType.SPOT, use_agg_trade_ticks=True)
USDM = ClientConfig(name="usdm", account_type=AccountType.USDT_FUTURES)
COINM = ClientConfig(name="coinm", account_type=AccountType.COIN_FUTURES)
SPOT_ID = "BTCUSDT.BINANCE"
PERP_ID = "BTCUSDT-PERP.BINANCE"
COIN_ID = "BTCUSD-PERP.BINANCE"
HOUR = 3_600_000
MINUTE = 60_000
T0 = 1_700_000_000_000 - 1_700_000_000_000 % HOUR  # an hour boundary


# ------------------------------------------------------------------------------ harness


def wrap(stream: str, data: Any) -> str:
    return orjson.dumps({"stream": stream, "data": data}).decode()


def of(kind: type, events: list[Event]) -> list[Any]:
    return [event for event in events if isinstance(event, kind)]


def tags(events: list[Event]) -> list[str]:
    return [event.TAG for event in events]


class Fold:
    """Feeds envelopes to the actor the way its runner does; ``now_ms`` is the bus clock."""

    def __init__(self, *clients: ClientConfig) -> None:
        self.actor = MarketDataActor(clients=clients or (SPOT, SPOT_AGG, USDM, COINM))
        self.seq = 0
        self.now_ms = T0 + 100 * 24 * HOUR

    def feed(self, event: Event) -> list[Event]:
        self.seq += 1
        envelope = Envelope(
            seq=self.seq, ts_ns=self.now_ms * 1_000_000, source="x", cause=None, event=event
        )
        return list(self.actor.handle(envelope))

    def subscribe(
        self,
        kind: DataKind,
        subscriber: str = "s1",
        instrument_id: str = SPOT_ID,
        client: str = "spot",
        interval: str | None = None,
    ) -> list[Event]:
        return self.feed(
            SubscribeMarketData(
                client=client,
                subscriber=subscriber,
                instrument_id=instrument_id,
                kind=kind,
                interval=interval,
            )
        )

    def unsubscribe(
        self,
        kind: DataKind,
        subscriber: str = "s1",
        instrument_id: str = SPOT_ID,
        client: str = "spot",
        interval: str | None = None,
    ) -> list[Event]:
        return self.feed(
            UnsubscribeMarketData(
                client=client,
                subscriber=subscriber,
                instrument_id=instrument_id,
                kind=kind,
                interval=interval,
            )
        )

    def frame(self, stream: str, data: Any, *, client: str = "spot") -> list[Event]:
        return self.text(wrap(stream, data), client=client)

    def text(self, text: str, *, client: str = "spot") -> list[Event]:
        return self.feed(StreamFrame(client=client, connection="c1", received_ns=0, text=text))

    def history(
        self,
        kind: DataKind,
        start_ms: int,
        end_ms: int,
        *,
        request_id: str = "h1",
        instrument_id: str = SPOT_ID,
        client: str = "spot",
        interval: str | None = None,
    ) -> list[Event]:
        return self.feed(
            RequestHistory(
                client=client,
                subscriber="s1",
                request_id=request_id,
                instrument_id=instrument_id,
                kind=kind,
                start_ms=start_ms,
                end_ms=end_ms,
                interval=interval,
            )
        )

    def answer(
        self, request: RestRequest, body: Any, *, outcome: str = "ok", message: str = ""
    ) -> list[Event]:
        return self.feed(
            RestResponse(
                client=request.client,
                call_id=request.call_id,
                method=request.method,
                path=request.path,
                outcome=outcome,
                status=200 if outcome == "ok" else 500,
                body=body if isinstance(body, str) else orjson.dumps(body).decode(),
                message=message,
            )
        )


def subscribed(stream: str, client: str = "spot") -> SubscribeStreams:
    return SubscribeStreams(client=client, subscriber=NAME, streams=(stream,))


def unsubscribed(stream: str, client: str = "spot") -> UnsubscribeStreams:
    return UnsubscribeStreams(client=client, subscriber=NAME, streams=(stream,))


def trade(trade_id: int = 7, *, symbol: str = "BTCUSDT") -> dict[str, Any]:
    return {
        "e": "trade",
        "E": T0 + 1,
        "s": symbol,
        "t": trade_id,
        "p": "100.50",
        "q": "0.00100000",
        "T": T0,
        "m": True,
        "M": True,
    }


def agg_trade(agg_id: int = 7, time_ms: int = T0, *, symbol: str = "BTCUSDT") -> dict[str, Any]:
    return {
        "e": "aggTrade",
        "E": time_ms + 1,
        "s": symbol,
        "a": agg_id,
        "p": "100.50",
        "q": "2.000",
        "f": agg_id * 10,
        "l": agg_id * 10 + 2,
        "T": time_ms,
        "m": False,
    }


def mark_price(*, rate: str = "0.00010000", next_funding: int = T0 + 8 * HOUR) -> dict[str, Any]:
    return {
        "e": "markPriceUpdate",
        "E": T0 + 5,
        "s": "BTCUSDT",
        "p": "100.10000000",
        "ap": "100.2",
        "P": "100.3",
        "i": "100.05000000",
        "r": rate,
        "T": next_funding,
    }


def kline(open_ms: int, *, closed: bool, interval: str = "1m") -> dict[str, Any]:
    return {
        "e": "kline",
        "E": open_ms + 30_000,
        "s": "BTCUSDT",
        "k": {
            "t": open_ms,
            "T": open_ms + MINUTE - 1,
            "s": "BTCUSDT",
            "i": interval,
            "f": 1,
            "L": 2,
            "o": "1.0",
            "c": "2.0",
            "h": "3.0",
            "l": "0.5",
            "v": "10",
            "n": 2,
            "x": closed,
            "q": "20",
            "V": "4",
            "Q": "8",
            "B": "0",
        },
    }


def kline_row(open_ms: int, interval_ms: int = MINUTE) -> list[Any]:
    return [
        open_ms,
        "1.0",
        "3.0",
        "0.5",
        "2.0",
        "10",
        open_ms + interval_ms - 1,
        "20",
        2,
        "4",
        "8",
        "0",
    ]


def agg_row(agg_id: int, time_ms: int) -> dict[str, Any]:
    return {
        "a": agg_id,
        "p": "100.0",
        "q": "1.5",
        "f": agg_id,
        "l": agg_id,
        "T": time_ms,
        "m": agg_id % 2 == 0,
    }


# ------------------------------------------------------------------------------ symbols


@pytest.mark.parametrize(
    ("instrument_id", "account_type", "symbol"),
    [
        ("BTCUSDT.BINANCE", AccountType.SPOT, "BTCUSDT"),
        ("BTCUSDT-PERP.BINANCE", AccountType.USDT_FUTURES, "BTCUSDT"),
        ("BTCUSDT_250926.BINANCE", AccountType.USDT_FUTURES, "BTCUSDT_250926"),
        ("BTCUSD-PERP.BINANCE", AccountType.COIN_FUTURES, "BTCUSD_PERP"),
        ("BTCUSD_250926.BINANCE", AccountType.COIN_FUTURES, "BTCUSD_250926"),
        ("1000SHIBUSDT-PERP.BINANCE", AccountType.USDT_FUTURES, "1000SHIBUSDT"),
    ],
)
def test_symbol_of(instrument_id: str, account_type: AccountType, symbol: str) -> None:
    assert symbol_of(instrument_id, account_type) == symbol


@pytest.mark.parametrize(
    ("instrument_id", "account_type", "complaint"),
    [
        ("BTCUSDT-PERP.BINANCE", AccountType.SPOT, "Spot has none"),
        ("BTCUSDT", AccountType.SPOT, "not a Binance instrument id"),
        ("BTCUSDT.BYBIT", AccountType.USDT_FUTURES, "not a Binance instrument id"),
        (".BINANCE", AccountType.SPOT, "not a Binance instrument id"),
        ("", AccountType.COIN_FUTURES, "not a Binance instrument id"),
        ("-PERP.BINANCE", AccountType.USDT_FUTURES, "no symbol"),
        ("-PERP.BINANCE", AccountType.COIN_FUTURES, "no symbol"),
    ],
)
def test_symbol_of_refuses_ids_that_are_not_binance_instruments(
    instrument_id: str, account_type: AccountType, complaint: str
) -> None:
    with pytest.raises(ValueError, match=complaint):
        symbol_of(instrument_id, account_type)


# ------------------------------------------------------------------------ subscriptions


@pytest.mark.parametrize("last", ["s1", "s2"])
def test_a_stream_is_subscribed_by_its_first_subscriber_and_released_by_its_last(
    last: str,
) -> None:
    fold = Fold()
    first = "s2" if last == "s1" else "s1"
    assert fold.subscribe(DataKind.QUOTES, "s1") == [subscribed("btcusdt@bookTicker")]
    assert fold.subscribe(DataKind.QUOTES, "s2") == []
    assert fold.subscribe(DataKind.QUOTES, "s2") == []  # idempotent
    assert fold.unsubscribe(DataKind.QUOTES, "s3") == []  # never subscribed
    assert fold.unsubscribe(DataKind.QUOTES, first) == []
    assert fold.unsubscribe(DataKind.QUOTES, first) == []  # already out
    assert fold.unsubscribe(DataKind.QUOTES, last) == [unsubscribed("btcusdt@bookTicker")]
    assert fold.unsubscribe(DataKind.QUOTES, last) == []
    assert fold.actor.streams == {}
    # And again from nothing.
    assert fold.subscribe(DataKind.QUOTES, last) == [subscribed("btcusdt@bookTicker")]


def test_streams_are_counted_per_client_instrument_kind_and_interval() -> None:
    fold = Fold()
    assert fold.subscribe(DataKind.BARS, interval="1m") == [subscribed("btcusdt@kline_1m")]
    assert fold.subscribe(DataKind.BARS, interval="5m") == [subscribed("btcusdt@kline_5m")]
    assert fold.subscribe(DataKind.TICKER) == [subscribed("btcusdt@ticker")]
    assert fold.subscribe(DataKind.TICKER, instrument_id="ETHUSDT.BINANCE") == [
        subscribed("ethusdt@ticker")
    ]
    assert fold.subscribe(DataKind.TICKER, instrument_id=PERP_ID, client="usdm") == [
        subscribed("btcusdt@ticker", "usdm")
    ]
    assert fold.unsubscribe(DataKind.BARS, interval="1m") == [unsubscribed("btcusdt@kline_1m")]
    assert fold.unsubscribe(DataKind.BARS, interval="15m") == []
    assert fold.unsubscribe(DataKind.TICKER, instrument_id=PERP_ID, client="spot") == []
    assert sorted(name for _, name in fold.actor.streams) == [
        "btcusdt@kline_5m",
        "btcusdt@ticker",
        "btcusdt@ticker",
        "ethusdt@ticker",
    ]


@pytest.mark.parametrize(
    ("client", "instrument_id", "stream", "aggregated"),
    [
        ("spot", SPOT_ID, "btcusdt@trade", False),
        ("spot-agg", SPOT_ID, "btcusdt@aggTrade", True),
        ("usdm", PERP_ID, "btcusdt@aggTrade", True),
        ("usdm", "BTCUSDT_250926.BINANCE", "btcusdt_250926@aggTrade", True),
        ("coinm", COIN_ID, "btcusd_perp@aggTrade", True),
    ],
)
def test_trades_use_trade_on_spot_and_agg_trade_when_asked_and_on_futures(
    client: str, instrument_id: str, stream: str, aggregated: bool
) -> None:
    fold = Fold()
    assert fold.subscribe(DataKind.TRADES, instrument_id=instrument_id, client=client) == [
        subscribed(stream, client)
    ]
    data = agg_trade(11) if aggregated else trade(11)
    (tick,) = fold.frame(stream, data, client=client)
    assert tick == TradeTick(
        client=client,
        instrument_id=instrument_id,
        price=Decimal("100.50"),
        size=Decimal("2.000") if aggregated else Decimal("0.00100000"),
        aggressor="BUY" if aggregated else "SELL",
        trade_id=11,
        aggregated=aggregated,
        ts_event_ms=T0,
    )
    assert fold.unsubscribe(DataKind.TRADES, instrument_id=instrument_id, client=client) == [
        unsubscribed(stream, client)
    ]
    assert fold.frame(stream, data, client=client) == []


def test_mark_index_and_funding_share_one_stream_and_go_out_only_while_wanted() -> None:
    fold = Fold()
    stream = "btcusdt@markPrice@1s"

    def sub(kind: DataKind, subscriber: str) -> list[Event]:
        return fold.subscribe(kind, subscriber, PERP_ID, "usdm")

    def unsub(kind: DataKind, subscriber: str) -> list[Event]:
        return fold.unsubscribe(kind, subscriber, PERP_ID, "usdm")

    def published() -> list[type]:
        return [type(event) for event in fold.frame(stream, mark_price(), client="usdm")]

    assert sub(DataKind.MARK_PRICE, "s1") == [subscribed(stream, "usdm")]
    assert published() == [MarkPrice]
    assert sub(DataKind.FUNDING_RATE, "s2") == []
    assert published() == [MarkPrice, FundingRate]
    assert sub(DataKind.INDEX_PRICE, "s3") == []
    mark, index, funding = fold.frame(stream, mark_price(), client="usdm")
    assert mark == MarkPrice(
        client="usdm", instrument_id=PERP_ID, price=Decimal("100.1"), ts_event_ms=T0 + 5
    )
    assert index == IndexPrice(
        client="usdm", instrument_id=PERP_ID, price=Decimal("100.05"), ts_event_ms=T0 + 5
    )
    assert funding == FundingRate(
        client="usdm",
        instrument_id=PERP_ID,
        rate=Decimal("0.0001"),
        next_funding_ms=T0 + 8 * HOUR,
        ts_event_ms=T0 + 5,
    )
    assert unsub(DataKind.INDEX_PRICE, "s1") == []  # s1 wants the mark price, not the index
    assert unsub(DataKind.MARK_PRICE, "s1") == []
    assert published() == [IndexPrice, FundingRate]
    assert unsub(DataKind.FUNDING_RATE, "s2") == []
    assert published() == [IndexPrice]
    # The same subscriber may want two kinds of the one stream; each is released alone.
    assert sub(DataKind.FUNDING_RATE, "s3") == []
    assert unsub(DataKind.INDEX_PRICE, "s3") == []
    assert published() == [FundingRate]
    # A delivery contract has no funding: nothing to publish then.
    assert fold.frame(stream, mark_price(rate="", next_funding=0), client="usdm") == []
    assert unsub(DataKind.FUNDING_RATE, "s3") == [unsubscribed(stream, "usdm")]
    assert published() == []


def test_other_quotes_tickers_and_bars_are_parsed_by_the_stream_they_came_on() -> None:
    fold = Fold()
    fold.subscribe(DataKind.QUOTES)
    ticker = {"u": 400900217, "s": "BTCUSDT", "b": "1.5", "B": "2", "a": "1.6", "A": "3"}
    (quote,) = fold.frame("btcusdt@bookTicker", ticker)
    assert quote == QuoteTick(
        client="spot",
        instrument_id=SPOT_ID,
        bid_price=Decimal("1.5"),
        bid_size=Decimal("2"),
        ask_price=Decimal("1.6"),
        ask_size=Decimal("3"),
        update_id=400900217,
        ts_event_ms=None,
    )
    # The instrument comes from the stream, not from parsing the symbol.
    assert of(QuoteTick, fold.frame("btcusdt@bookTicker", {**ticker, "s": "ETHUSDT"}))

    fold.subscribe(DataKind.TICKER, instrument_id=PERP_ID, client="usdm")
    data = {
        "e": "24hrTicker",
        "E": T0,
        "s": "BTCUSDT",
        **{key: "1.25" for key in ("p", "P", "w", "c", "Q", "o", "h", "l", "v", "q")},
        **{"O": T0 - 24 * HOUR, "C": T0, "F": 1, "L": 9, "n": 9},
    }
    (tick,) = fold.frame("btcusdt@ticker", data, client="usdm")
    assert isinstance(tick, Ticker)
    assert (tick.instrument_id, tick.last_price, tick.bid_price) == (PERP_ID, Decimal("1.25"), None)

    fold.subscribe(DataKind.BARS, interval="1m")
    assert fold.frame("btcusdt@kline_1m", kline(T0, closed=False)) == []
    (bar,) = fold.frame("btcusdt@kline_1m", kline(T0, closed=True))
    assert bar == Bar(
        client="spot",
        instrument_id=SPOT_ID,
        interval="1m",
        open_ms=T0,
        close_ms=T0 + MINUTE - 1,
        open=Decimal("1.0"),
        high=Decimal("3.0"),
        low=Decimal("0.5"),
        close=Decimal("2.0"),
        volume=Decimal("10"),
        quote_volume=Decimal("20"),
        trades=2,
        taker_buy_volume=Decimal("4"),
        taker_buy_quote_volume=Decimal("8"),
    )
    assert fold.actor.errors == 0


@pytest.mark.parametrize(
    ("client", "instrument_id", "kind", "interval", "logged"),
    [
        ("nobody", SPOT_ID, DataKind.TRADES, None, "unknown client 'nobody'"),
        ("spot", PERP_ID, DataKind.TRADES, None, "Spot has none"),
        ("spot", "BTCUSDT", DataKind.QUOTES, None, "not a Binance instrument id"),
        ("usdm", "-PERP.BINANCE", DataKind.QUOTES, None, "no symbol"),
        ("spot", SPOT_ID, DataKind.MARK_PRICE, None, "futures stream"),
        ("spot", SPOT_ID, DataKind.FUNDING_RATE, None, "futures stream"),
        ("spot", SPOT_ID, DataKind.BARS, None, "BARS need an interval"),
        ("usdm", PERP_ID, DataKind.BARS, "1s", "no '1s' klines"),
        ("spot", SPOT_ID, DataKind.TRADES, "1m", "takes no interval"),
    ],
)
def test_subscriptions_that_cannot_be_served_are_logged_and_refused(
    client: str,
    instrument_id: str,
    kind: DataKind,
    interval: str | None,
    logged: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fold = Fold()
    with caplog.at_level(logging.ERROR, logger="tern.market_data"):
        assert fold.subscribe(kind, "s1", instrument_id, client, interval) == []
    assert logged in caplog.text
    assert fold.unsubscribe(kind, "s1", instrument_id, client, interval) == []
    assert fold.actor.streams == {}


def test_book_subscriptions_belong_to_the_book_sync_actor() -> None:
    fold = Fold()
    assert fold.subscribe(DataKind.BOOK) == []
    assert fold.unsubscribe(DataKind.BOOK) == []
    assert fold.actor.streams == {}


def test_frames_of_streams_not_held_cost_nothing_and_publish_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fold = Fold()
    fold.subscribe(DataKind.TRADES)

    def never(*_: Any) -> Any:
        raise AssertionError("a frame of a stream not held was parsed")

    monkeypatch.setattr(market_data_module, "parse_frame", never)
    depth = {"e": "depthUpdate", "E": 1, "s": "BTCUSDT", "U": 1, "u": 2, "b": [], "a": []}
    assert fold.frame("btcusdt@depth@100ms", depth) == []  # the book-sync actor's
    assert fold.frame("btcusdt@aggTrade", agg_trade()) == []
    assert fold.frame("btcusdt@trade", trade(), client="usdm") == []  # another client's
    assert fold.actor.errors == 0


MALFORMED = [
    '{"stream":"btcusdt@trade","data":',
    '{"stream":"btcusdt@trade","data":"text"}',
    '{"stream":"btcusdt@trade"}',
    wrap("btcusdt@trade", {**trade(), "e": "aggTrade"}),
    wrap("btcusdt@trade", {key: value for key, value in trade().items() if key != "p"}),
    wrap("btcusdt@trade", {**trade(), "p": "abc"}),
    wrap("btcusdt@trade", {**trade(), "p": 100.5}),
    wrap("btcusdt@trade", {**trade(), "t": "7"}),
    wrap("btcusdt@trade", [trade()]),
    orjson.dumps(trade()).decode(),  # a raw /ws payload: no stream to tell the instrument
    "not json at all",
]


@pytest.mark.parametrize("text", MALFORMED)
def test_malformed_frames_are_logged_and_skipped(
    text: str, caplog: pytest.LogCaptureFixture
) -> None:
    fold = Fold()
    fold.subscribe(DataKind.TRADES)
    with caplog.at_level(logging.WARNING, logger="tern.market_data"):
        assert fold.text(text) == []
    assert "frame skipped" in caplog.text
    assert fold.actor.errors == 1
    assert of(TradeTick, fold.frame("btcusdt@trade", trade()))  # the stream goes on


# ------------------------------------------------------------------------- history


def test_history_bars_page_from_the_last_close_until_end_ms() -> None:
    fold = Fold()
    start, end = T0, T0 + 2500 * MINUTE - 1
    (request,) = fold.history(DataKind.BARS, start, end, interval="1m")
    assert request == RestRequest(
        client="spot",
        call_id=f"{NAME}:h:h1:1",
        method="GET",
        path="/api/v3/klines",
        params={
            "symbol": "BTCUSDT",
            "limit": "1000",
            "interval": "1m",
            "startTime": str(start),
            "endTime": str(start + 1000 * MINUTE - 1),  # one page's window
        },
    )
    rows = [kline_row(start + i * MINUTE) for i in range(1000)]
    chunk, request = fold.answer(request, rows)
    assert isinstance(chunk, HistoryChunk)
    assert len(chunk.bars) == 1000
    assert chunk.trades == ()
    assert chunk.through_ms == start + 1000 * MINUTE - 1
    assert [bar.open_ms for bar in chunk.bars] == [row[0] for row in rows]
    assert request.call_id == f"{NAME}:h:h1:2"
    assert request.params["startTime"] == str(start + 1000 * MINUTE)
    rows = [kline_row(start + i * MINUTE) for i in range(1000, 2000)]
    chunk, request = fold.answer(request, rows)
    assert request.params["startTime"] == str(start + 2000 * MINUTE)
    rows = [kline_row(start + i * MINUTE) for i in range(2000, 2500)]
    chunk, done = fold.answer(request, rows)
    assert len(chunk.bars) == 500
    assert chunk.through_ms == end
    assert done == HistoryDone(client="spot", request_id="h1", instrument_id=SPOT_ID, count=2500)
    assert fold.actor.history == {}
    assert fold.answer(request, rows) == []  # a late duplicate: the request is over


def test_history_bars_stop_at_end_ms_even_on_a_full_page() -> None:
    fold = Fold(USDM)
    end = T0 + 1000 * MINUTE - 1
    (request,) = fold.history(
        DataKind.BARS, T0, end, instrument_id=PERP_ID, client="usdm", interval="1m"
    )
    assert request.path == "/fapi/v1/klines"
    chunk, done = fold.answer(request, [kline_row(T0 + i * MINUTE) for i in range(1000)])
    assert chunk.through_ms == end
    assert (done.count, done.error) == (1000, "")


def test_history_bars_leave_out_the_still_open_kline() -> None:
    fold = Fold(COINM)
    fold.now_ms = T0 + 10 * MINUTE + 5  # the kline opened at T0 + 10 min is still open
    (request,) = fold.history(
        DataKind.BARS, T0, T0 + 50 * MINUTE, instrument_id=COIN_ID, client="coinm", interval="1m"
    )
    assert (request.path, request.params["symbol"]) == ("/dapi/v1/klines", "BTCUSD_PERP")
    chunk, done = fold.answer(request, [kline_row(T0 + i * MINUTE) for i in range(11)])
    assert [bar.open_ms for bar in chunk.bars] == [T0 + i * MINUTE for i in range(10)]
    assert chunk.through_ms == T0 + 10 * MINUTE - 1
    assert done.count == 10
    # A full page whose last kline is still open: nothing can follow it.
    fold.now_ms = T0 + 999 * MINUTE + 5
    options = {"request_id": "h2", "client": "coinm", "instrument_id": COIN_ID, "interval": "1m"}
    (request,) = fold.history(DataKind.BARS, T0, T0 + 5000 * MINUTE, **options)
    chunk, done = fold.answer(request, [kline_row(T0 + i * MINUTE) for i in range(1000)])
    assert len(chunk.bars) == 999
    assert done.count == 999


@pytest.mark.parametrize(
    ("local_now", "offset_ms", "bars"),
    [
        # The local clock a minute behind: the kline of T0 + 10 min closed on the server.
        (T0 + 10 * MINUTE + 5, 60_000, 11),
        # A minute ahead: the kline of T0 + 10 min is still open on the server.
        (T0 + 11 * MINUTE + 5, -60_000, 10),
        # No offset measured yet: the journal's clock.
        (T0 + 11 * MINUTE + 5, None, 11),
    ],
)
def test_history_bars_judge_the_open_kline_by_the_servers_clock(
    local_now: int, offset_ms: int | None, bars: int
) -> None:
    fold = Fold(COINM)
    if offset_ms is not None:
        fold.feed(ClockOffset(client="usdm", offset_ms=-offset_ms, rtt_ms=2, source="time"))
        fold.feed(ClockOffset(client="coinm", offset_ms=offset_ms, rtt_ms=2, source="time"))
    fold.now_ms = local_now
    (request,) = fold.history(
        DataKind.BARS, T0, T0 + 50 * MINUTE, instrument_id=COIN_ID, client="coinm", interval="1m"
    )
    chunk, done = fold.answer(request, [kline_row(T0 + i * MINUTE) for i in range(12)])
    assert [bar.open_ms for bar in chunk.bars] == [T0 + i * MINUTE for i in range(bars)]
    assert chunk.through_ms == T0 + bars * MINUTE - 1
    assert done.count == bars


def test_history_bars_of_an_empty_range() -> None:
    fold = Fold()
    (request,) = fold.history(DataKind.BARS, T0, T0 + HOUR, interval="1h")
    assert fold.answer(request, []) == [
        HistoryDone(client="spot", request_id="h1", instrument_id=SPOT_ID, count=0)
    ]


def test_history_trades_start_with_a_window_then_page_by_id() -> None:
    fold = Fold()
    start, end = T0 + 10, T0 + 5 * HOUR
    (request,) = fold.history(DataKind.TRADES, start, end)
    assert request.path == "/api/v3/aggTrades"
    assert request.params == {
        "symbol": "BTCUSDT",
        "limit": "1000",
        "startTime": str(start),
        "endTime": str(start + HOUR - 1),
    }
    page = [agg_row(100 + i, start + i) for i in range(1000)]
    chunk, request = fold.answer(request, page)
    assert [t.trade_id for t in chunk.trades] == list(range(100, 1100))
    assert all(t.aggregated for t in chunk.trades)
    assert chunk.through_ms == start + 999
    assert request.params == {"symbol": "BTCUSDT", "limit": "1000", "fromId": "1100"}
    # A short page by id: more may still come (the window said nothing of later hours).
    page = [agg_row(1100 + i, start + 2 * HOUR + i) for i in range(3)]
    chunk, request = fold.answer(request, page)
    assert len(chunk.trades) == 3
    assert request.params["fromId"] == "1103"
    # Past end_ms: the trades after it are dropped and the request ends.
    page = [agg_row(1103, end - 1), agg_row(1104, end), agg_row(1105, end + 1)]
    chunk, done = fold.answer(request, page)
    assert [t.trade_id for t in chunk.trades] == [1103, 1104]
    assert chunk.through_ms == end
    assert done == HistoryDone(client="spot", request_id="h1", instrument_id=SPOT_ID, count=1005)


def test_history_trades_move_the_window_past_empty_hours() -> None:
    fold = Fold(USDM)
    start, end = T0, T0 + 3 * HOUR + 30 * MINUTE
    (request,) = fold.history(DataKind.TRADES, start, end, instrument_id=PERP_ID, client="usdm")
    assert request.path == "/fapi/v1/aggTrades"
    for hour in (1, 2, 3):
        (request,) = fold.answer(request, [])
        assert request.call_id == f"{NAME}:h:h1:{hour + 1}"
        assert request.params == {
            "symbol": "BTCUSDT",
            "limit": "1000",
            "startTime": str(start + hour * HOUR),
            "endTime": str(min(end, start + (hour + 1) * HOUR - 1)),
        }
    chunk, request = fold.answer(request, [agg_row(5, end - 10)])
    assert chunk.through_ms == end - 10
    assert request.params == {"symbol": "BTCUSDT", "limit": "1000", "fromId": "6"}
    (done,) = fold.answer(request, [])  # no trade after it yet
    assert (done.count, done.error) == (1, "")


def test_history_trades_of_a_range_without_trades() -> None:
    fold = Fold()
    (request,) = fold.history(DataKind.TRADES, T0, T0 + 90 * MINUTE)
    (request,) = fold.answer(request, [])
    assert request.params["endTime"] == str(T0 + 90 * MINUTE)
    assert fold.answer(request, []) == [
        HistoryDone(client="spot", request_id="h1", instrument_id=SPOT_ID, count=0)
    ]
    # A range under an hour: one window.
    (request,) = fold.history(DataKind.TRADES, T0, T0 + 10, request_id="h2")
    assert request.params["endTime"] == str(T0 + 10)
    assert tags(fold.answer(request, [])) == ["market.history_done"]


@pytest.mark.parametrize(
    ("outcome", "body", "message", "error"),
    [
        ("failed", "", "connection refused", "page 2 failed: connection refused"),
        ("rejected", "", "", "page 2 failed: 500"),
        ("ok", "<html>busy</html>", "", "page 2 not understood"),
        ("ok", '{"code": -1121, "msg": "Invalid symbol."}', "", "page 2 not understood"),
        ("ok", '[{"a": 1}]', "", "page 2 not understood"),
    ],
)
def test_a_failed_page_ends_the_history_with_the_error(
    outcome: str, body: str, message: str, error: str
) -> None:
    fold = Fold()
    (request,) = fold.history(DataKind.TRADES, T0, T0 + 5 * HOUR)
    _, request = fold.answer(request, [agg_row(1, T0 + 1), agg_row(2, T0 + 2)])
    (done,) = fold.answer(request, body, outcome=outcome, message=message)
    assert done.count == 2
    assert done.error.startswith(error)
    assert fold.actor.history == {}
    assert fold.answer(request, [agg_row(3, T0 + 3)]) == []


def test_a_failed_bars_page_ends_the_history_with_the_error() -> None:
    fold = Fold()
    (request,) = fold.history(DataKind.BARS, T0, T0 + HOUR, interval="1m")
    (done,) = fold.answer(request, [[T0, "x"]])
    assert (done.count, done.request_id) == (0, "h1")
    assert "page 1 not understood" in done.error


def test_history_requests_that_cannot_be_served_are_refused() -> None:
    fold = Fold()

    def refused(**options: Any) -> str:
        arguments = {"kind": DataKind.BARS, "start_ms": T0, "end_ms": T0 + HOUR, "interval": "1m"}
        (done,) = fold.history(**(arguments | options))
        assert isinstance(done, HistoryDone)
        assert done.count == 0
        return done.error

    assert refused(client="nobody") == "unknown client 'nobody'"
    assert "not QUOTES" in refused(kind=DataKind.QUOTES, interval=None)
    assert "not BOOK" in refused(kind=DataKind.BOOK, interval=None)
    assert refused(end_ms=T0 - 1) == "end_ms is before start_ms"
    assert "BARS need an interval" in refused(interval=None)
    assert "no '7m' klines" in refused(interval="7m")
    assert "Spot has none" in refused(instrument_id=PERP_ID)
    assert "not a Binance instrument id" in refused(instrument_id="BTCUSDT", kind=DataKind.TRADES)
    perp = {"client": "usdm", "kind": DataKind.TRADES, "interval": None}
    assert "no symbol" in refused(instrument_id="-PERP.BINANCE", **perp)
    assert fold.actor.history == {}


def test_a_duplicate_request_id_is_refused_while_the_first_runs() -> None:
    fold = Fold()
    (request,) = fold.history(DataKind.BARS, T0, T0 + 10 * MINUTE - 1, interval="1m")
    (refusal,) = fold.history(DataKind.TRADES, T0, T0 + HOUR)
    assert refusal == HistoryDone(
        client="spot",
        request_id="h1",
        instrument_id=SPOT_ID,
        count=0,
        error="request id 'h1' is already running",
    )
    # The first goes on undisturbed, and once done its id may be used again.
    chunk, done = fold.answer(request, [kline_row(T0 + i * MINUTE) for i in range(10)])
    assert (len(chunk.bars), done.count, done.error) == (10, 10, "")
    assert tags(fold.history(DataKind.TRADES, T0, T0 + HOUR)) == ["rest.request"]


def test_answers_that_are_not_history_pages_are_ignored() -> None:
    fold = Fold()
    (request,) = fold.history(DataKind.BARS, T0, T0 + HOUR, interval="1m")
    rows = [kline_row(T0)]
    for call_id in ("book-sync:spot:BTCUSDT.BINANCE:1:1", f"{NAME}:h:other:1", "rate-limits"):
        stray = RestRequest(client="spot", call_id=call_id, method="GET", path="/")
        assert fold.answer(stray, rows) == []
    assert tags(fold.answer(request, rows)) == ["market.history_chunk", "market.history_done"]


# ------------------------------------------------------------------------------ property

KINDS = st.sampled_from(
    [
        (DataKind.TRADES, None),
        (DataKind.QUOTES, None),
        (DataKind.BARS, "1m"),
        (DataKind.BARS, "1h"),
        (DataKind.MARK_PRICE, None),
        (DataKind.INDEX_PRICE, None),
        (DataKind.FUNDING_RATE, None),
    ]
)
SUBSCRIPTIONS = st.lists(
    st.tuples(
        st.booleans(),
        st.sampled_from(["s1", "s2", "s3"]),
        st.sampled_from([PERP_ID, "ETHUSDT-PERP.BINANCE"]),
        KINDS,
    ),
    max_size=40,
)


@settings(max_examples=100, deadline=None)
@given(steps=SUBSCRIPTIONS)
def test_streams_are_held_exactly_while_someone_wants_them(
    steps: list[tuple[bool, str, str, tuple[DataKind, str | None]]],
) -> None:
    fold = Fold(USDM)
    wanted: set[tuple[str, str, DataKind, str | None]] = set()
    held: set[str] = set()
    for subscribe, subscriber, instrument_id, (kind, interval) in steps:
        if subscribe:
            out = fold.subscribe(kind, subscriber, instrument_id, "usdm", interval)
            wanted.add((subscriber, instrument_id, kind, interval))
        else:
            out = fold.unsubscribe(kind, subscriber, instrument_id, "usdm", interval)
            wanted.discard((subscriber, instrument_id, kind, interval))
        for event in out:
            (stream,) = event.streams
            if isinstance(event, SubscribeStreams):
                assert stream not in held
                held.add(stream)
            else:
                assert isinstance(event, UnsubscribeStreams)
                assert stream in held
                held.remove(stream)
        # Held: exactly the streams someone wants.
        expected = set()
        for _, instrument_id, kind, interval in wanted:
            symbol = instrument_id.split("-")[0].lower()
            expected.add(
                {
                    DataKind.TRADES: f"{symbol}@aggTrade",
                    DataKind.QUOTES: f"{symbol}@bookTicker",
                    DataKind.BARS: f"{symbol}@kline_{interval}",
                }.get(kind, f"{symbol}@markPrice@1s")
            )
        assert held == expected
        # A mark price frame publishes exactly the kinds someone wants of that instrument.
        published = {
            type(event) for event in fold.frame("btcusdt@markPrice@1s", mark_price(), client="usdm")
        }
        kinds = {kind for _, iid, kind, _ in wanted if iid == PERP_ID}
        assert published == {
            {DataKind.MARK_PRICE: MarkPrice, DataKind.INDEX_PRICE: IndexPrice}.get(k, FundingRate)
            for k in kinds & {DataKind.MARK_PRICE, DataKind.INDEX_PRICE, DataKind.FUNDING_RATE}
        }


class Venue:
    """Binance's ``klines`` and ``aggTrades`` over a fixed history, as far as paging goes."""

    def __init__(self, bar_opens: list[int], trades: list[tuple[int, int]], now_ms: int) -> None:
        self.bar_opens = bar_opens  # open times of 1m klines, ascending
        self.trades = trades  # (aggregate id, time), ascending in both
        self.now_ms = now_ms

    def answer(self, request: RestRequest) -> list[Any]:
        params = request.params
        limit = int(params["limit"])
        if request.path.endswith("/klines"):
            start, end = int(params["startTime"]), int(params["endTime"])
            opens = [t for t in self.bar_opens if start <= t <= end and t <= self.now_ms]
            return [kline_row(t) for t in opens[:limit]]
        if "fromId" in params:
            rows = [row for row in self.trades if row[0] >= int(params["fromId"])]
        else:
            start, end = int(params["startTime"]), int(params["endTime"])
            assert end - start < HOUR
            rows = [row for row in self.trades if start <= row[1] <= end]
        return [agg_row(*row) for row in rows[:limit]]


def run_history(fold: Fold, venue: Venue, request: RequestHistory) -> tuple[list[Any], Any]:
    items: list[Any] = []
    out = fold.feed(request)
    through = request.start_ms - 1
    for _ in range(100):
        (*chunks, last) = out
        for chunk in chunks:
            assert isinstance(chunk, HistoryChunk)
            assert chunk.through_ms >= through
            through = chunk.through_ms
            items.extend(chunk.bars or chunk.trades)
        if isinstance(last, HistoryDone):
            return items, last
        assert isinstance(last, RestRequest)
        out = fold.answer(last, venue.answer(last))
    raise AssertionError("the history never ended")


#: Sizes around the page limit, and anything else.
SIZES = st.one_of(st.integers(0, 2600), st.sampled_from([999, 1000, 1001, 1999, 2000, 2001]))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    bars=SIZES,
    start=st.one_of(st.integers(-5, 5), st.integers(0, 1200)),
    length=st.one_of(st.just(5000), SIZES),
    now=st.one_of(st.just(5000), SIZES),
)
def test_history_bars_are_every_closed_bar_in_the_range_once(
    bars: int, start: int, length: int, now: int
) -> None:
    opens = [T0 + i * MINUTE for i in range(bars)]
    now_ms = T0 + now * MINUTE + 7
    fold = Fold()
    fold.now_ms = now_ms
    start_ms = T0 + start * MINUTE + 1
    end_ms = start_ms + length * MINUTE
    request = RequestHistory(
        client="spot",
        subscriber="s1",
        request_id="h",
        instrument_id=SPOT_ID,
        kind=DataKind.BARS,
        start_ms=start_ms,
        end_ms=end_ms,
        interval="1m",
    )
    items, done = run_history(fold, Venue(opens, [], now_ms), request)
    expected = [t for t in opens if start_ms <= t <= end_ms and t + MINUTE - 1 < now_ms]
    assert [bar.open_ms for bar in items] == expected
    assert (done.count, done.error) == (len(expected), "")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    count=SIZES,
    step=st.integers(0, 10),
    jumps=st.lists(st.tuples(st.integers(0, 2600), st.integers(HOUR, 4 * HOUR)), max_size=3),
    start=st.one_of(st.integers(-2 * HOUR, 0), st.integers(-10, 10), st.integers(0, 13 * HOUR)),
    length=st.one_of(st.integers(0, MINUTE), st.integers(0, 14 * HOUR)),
)
def test_history_trades_are_every_trade_in_the_range_once(
    count: int, step: int, jumps: list[tuple[int, int]], start: int, length: int
) -> None:
    """Trades ``step`` ms apart, with hours-long silences after some of them."""
    trades = []
    time_ms = T0
    for agg_id in range(1, count + 1):
        time_ms += step + sum(gap for at, gap in jumps if at == agg_id)
        trades.append((agg_id, time_ms))
    fold = Fold()
    request = RequestHistory(
        client="spot",
        subscriber="s1",
        request_id="h",
        instrument_id=SPOT_ID,
        kind=DataKind.TRADES,
        start_ms=T0 + start,
        end_ms=T0 + start + length,
    )
    items, done = run_history(fold, Venue([], trades, fold.now_ms), request)
    expected = [agg_id for agg_id, t in trades if request.start_ms <= t <= request.end_ms]
    assert [tick.trade_id for tick in items] == expected
    assert (done.count, done.error) == (len(expected), "")
    assert PAGE_LIMIT == 1000


def _coinm_klines(start: int, end: int, limit: int = 1000) -> list:
    """What /dapi/v1/klines answers: the most recent ``limit`` klines up to endTime."""
    opens = list(range(start - start % MINUTE, end + 1, MINUTE))
    return [kline_row(o) for o in opens[-limit:]]


def test_coinm_bars_history_is_complete_although_coinm_answers_from_the_end() -> None:
    fold = Fold(COINM)
    fold.now_ms = T0 + 10_000 * MINUTE
    start, end = T0, T0 + 3000 * MINUTE - 1
    options = {"client": "coinm", "instrument_id": COIN_ID, "interval": "1m"}
    (request,) = fold.history(DataKind.BARS, start, end, **options)
    total, out = 0, []
    for _ in range(10):
        answer = _coinm_klines(int(request.params["startTime"]), int(request.params["endTime"]))
        out = fold.answer(request, answer)
        total += sum(len(chunk.bars) for chunk in of(HistoryChunk, out))
        following = of(RestRequest, out)
        if not following:
            break
        request = following[0]
    (done,) = of(HistoryDone, out)
    assert done.error == ""
    assert total == done.count == 3000


def test_coinm_bars_windows_stay_within_200_days() -> None:
    fold = Fold(COINM)
    fold.now_ms = T0 + 400 * 1440 * MINUTE
    start, end = T0, T0 + 300 * 1440 * MINUTE
    options = {"client": "coinm", "instrument_id": COIN_ID, "interval": "1d"}
    (request,) = fold.history(DataKind.BARS, start, end, **options)
    span = int(request.params["endTime"]) - int(request.params["startTime"])
    assert span < 200 * 1440 * MINUTE
